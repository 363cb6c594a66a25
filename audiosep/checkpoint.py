"""Loading and saving the separation network in every supported checkpoint layout.

Layouts read by :func:`load_separation_net`:

* the reference PyTorch Lightning ``.ckpt`` (``state_dict`` with ``ss_model.*`` keys), or that
  ``state_dict`` itself; ``query_encoder.*`` keys, STFT buffers and training state are ignored;
* the Hugging Face hub-mixin layout: a folder with ``model.safetensors`` or
  ``pytorch_model.bin`` holding the same ``ss_model.*`` keys;
* our own format: a ``.safetensors`` file whose metadata holds the network config (written by
  :func:`save_separation_net`), or a folder written by ``AudioSep.save_pretrained``;
* a state dict of :class:`~audiosep.nn.ResUNet` itself (``model.state_dict()``).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor

from .files import atomic_path
from .nn import reference_layout
from .nn.config import ResUNetConfig
from .nn.our_layout import infer_config as infer_our_config
from .nn.reference_layout import LayoutError
from .nn.resunet import ResUNet
from .weight_files import load_torch_file, read_safetensors

FORMAT = "audiosep.separation_net"
FORMAT_VERSION = "1"
NET_FILE = "separation_net.safetensors"
HUB_FILES = ("model.safetensors", "pytorch_model.bin")

__all__ = ["load_separation_net", "save_separation_net", "read_state", "LayoutError"]


def read_state(source: str | os.PathLike | Mapping[str, Any]) -> tuple[dict[str, Tensor], ResUNetConfig | None]:
    """Raw tensors of a checkpoint and, for our format, its stored network config."""
    if isinstance(source, Mapping):
        state = source.get("state_dict", source)
        if not isinstance(state, Mapping):
            raise LayoutError("checkpoint['state_dict'] is not a mapping of tensors")
        return dict(state), None
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if path.is_dir():
        for name in (NET_FILE,) + HUB_FILES:
            if (path / name).is_file():
                return read_state(path / name)
        raise LayoutError(
            f"{path} is a folder but holds none of {', '.join((NET_FILE,) + HUB_FILES)}; "
            "point to a checkpoint file or a folder written by save_pretrained"
        )
    if path.suffix == ".safetensors":
        state, meta = read_safetensors(path)
        config = None
        if meta.get("format") == FORMAT:
            config = ResUNetConfig.from_dict(json.loads(meta["config"]))
        return state, config
    obj = load_torch_file(path)
    if not isinstance(obj, Mapping):
        raise LayoutError(f"{path} does not hold a state dict (found {type(obj).__name__})")
    return read_state(obj)


def load_separation_net(
    source: str | os.PathLike | Mapping[str, Any],
    *,
    config: ResUNetConfig | None = None,
    map_location: str | torch.device = "cpu",
    **config_overrides: Any,
) -> ResUNet:
    """Build the separation network from a checkpoint, in eval mode.

    Parameters
    ----------
    source : path or mapping
        A checkpoint file or folder in any supported layout (see module docstring), or a state
        dict (optionally wrapped as ``{"state_dict": ...}``).
    config : ResUNetConfig, optional
        Network configuration. By default it is read from our format or inferred from tensor
        shapes (sample rate and hop follow from ``n_fft`` for the released models).
    map_location : device
        Device for the returned network.
    **config_overrides
        Fields that replace the inferred config's (e.g. ``sample_rate=16000, hop_length=160``).

    Returns
    -------
    ResUNet
        ``forward(mixture: Tensor[B, 1, L], condition: Tensor[B, D]) -> Tensor[B, 1, L]``.

    Raises
    ------
    LayoutError
        If the checkpoint's keys or shapes do not fit the network; the message lists the missing
        and unexpected keys.
    """
    state, stored = read_state(source)
    origin: dict[str, str] = {}
    if reference_layout.is_reference_layout(state):
        if config is None:
            config = reference_layout.infer_config(state, **config_overrides)
        for key, value in state.items():  # remember each key's name in the file, for errors
            for ours in reference_layout.from_reference({key: value}):
                origin[ours] = key
        state = reference_layout.from_reference(state)
    else:
        state = {k: v for k, v in state.items() if not k.startswith("query_encoder.")}
        if config is None:
            config = stored if stored is not None else infer_our_config(state, **config_overrides)
            if stored is not None and config_overrides:
                config = ResUNetConfig.from_dict({**stored.to_dict(), **config_overrides})
    net = ResUNet(config)
    _load_strict(net, state, origin)
    return net.to(map_location).eval()


def _load_strict(net: ResUNet, state: Mapping[str, Tensor], origin: Mapping[str, str] | None = None) -> None:
    """Load ``state`` into ``net`` after checking every key and shape.

    ``origin`` maps a key of ``state`` to its name in the checkpoint file (reference layout), so
    that errors name the keys the user can find in their file.
    """
    origin = origin or {}

    def shown(key: str) -> str:
        return f"{origin[key]} (-> {key})" if key in origin and origin[key] != key else key

    state = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    expected = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(shown(k) for k in set(state) - set(expected))
    wrong = sorted(
        f"{shown(k)}: checkpoint {tuple(state[k].shape)} vs network {tuple(expected[k].shape)}"
        for k in set(state) & set(expected)
        if tuple(state[k].shape) != tuple(expected[k].shape)
    )
    if missing or unexpected or wrong:
        lines = []
        for title, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
            if keys:
                shown = keys[:20] + ([f"... and {len(keys) - 20} more"] if len(keys) > 20 else [])
                lines.append(f"{title} keys ({len(keys)}):\n  " + "\n  ".join(shown))
        raise LayoutError(
            "the checkpoint does not match the separation network:\n" + "\n".join(lines)
        )
    net.load_state_dict(state, strict=False)


def save_separation_net(net: ResUNet, path: str | os.PathLike, *, layout: str = "audiosep") -> Path:
    """Write the network to ``path`` atomically.

    Parameters
    ----------
    layout : {"audiosep", "reference"}
        ``"audiosep"``: safetensors with the config in its metadata. ``"reference"``: a
        ``.ckpt`` holding ``{"state_dict": {"ss_model.*": ...}}`` as the reference trainer writes.
    """
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    with atomic_path(path) as tmp:
        if layout == "audiosep":
            from safetensors.torch import save_file

            meta = {"format": FORMAT, "format_version": FORMAT_VERSION,
                    "config": json.dumps(net.config.to_dict())}
            save_file(state, str(tmp), metadata=meta)
        elif layout == "reference":
            torch.save({"state_dict": reference_layout.to_reference(state, net.config)}, tmp)
        else:
            raise ValueError(f"layout must be 'audiosep' or 'reference', got {layout!r}")
    return path
