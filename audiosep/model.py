"""``AudioSep``: a query encoder and a separation network, saved and loaded together.

:meth:`AudioSep.from_pretrained` is the one place a model is built from a name or a folder. A model
folder holds ``config.json``, a JSON object with the keys

* ``format`` (``"audiosep"``), ``format_version`` (1) and ``sample_rate`` (Hz);
* ``separation_net``: the :class:`~audiosep.nn.ResUNetConfig` fields;
* ``query_encoder``: ``{"kind": ..., ...}`` for :func:`audiosep.query.build_query_encoder`;
* optionally ``separation_net_file`` (default ``separation_net.safetensors``): the network weights,
  any layout :func:`audiosep.load_separation_net` reads, relative to the folder; and
  ``query_encoder_dir`` (default ``query_encoder``): the folder the encoder's relative paths
  refer to, relative to the model folder.

A named bundle (:mod:`audiosep.pretrained`) is fetched to a folder and built the same way, from its
``config.json`` or, for releases without one, from the config the registry holds as data.
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn

from . import pretrained
from .checkpoint import NET_FILE, load_separation_net, save_separation_net
from .errors import AudiosepError, check_keys
from .files import atomic_path
from .nn.config import ResUNetConfig
from .nn.our_layout import LayoutError
from .nn.resunet import ResUNet
from .pretrained import CONFIG_FILE
from .query import QueryEncoder, build_query_encoder
from .weight_files import WeightFileError

__all__ = ["AudioSep", "ModelConfigError", "load_bundle", "read_config", "check_config"]

MODEL_FORMAT = "audiosep"
MODEL_FORMAT_VERSION = 1
# config.json keys and their JSON types; the optional ones have defaults (module docstring).
REQUIRED_KEYS = {"format": str, "format_version": int, "sample_rate": int, "separation_net": dict,
                 "query_encoder": dict}
OPTIONAL_KEYS = {"separation_net_file": str, "query_encoder_dir": str}
_JSON_TYPES = {dict: "an object", list: "an array", str: "a string", int: "an integer", float: "a number",
               bool: "a boolean", type(None): "null"}


class ModelConfigError(AudiosepError, ValueError):
    """A model's ``config.json`` (or a bundle's config) cannot be read or does not describe a model."""


class AudioSep(nn.Module):
    """Language-queried source separation model.

    Parameters
    ----------
    separation_net : ResUNet
        Maps ``(mixture Tensor[B, 1, L], condition Tensor[B, D])`` to ``Tensor[B, 1, L]``.
    query_encoder : QueryEncoder
        Frozen encoder whose ``embedding_dim`` equals the network's ``condition_dim``.
    name : str, optional
        Bundle name or path it was loaded from (for reports).
    """

    def __init__(self, separation_net: ResUNet, query_encoder: QueryEncoder, name: str | None = None) -> None:
        super().__init__()
        dim = separation_net.config.condition_dim
        if query_encoder.embedding_dim and query_encoder.embedding_dim != dim:
            raise ValueError(
                f"query encoder {query_encoder.kind!r} makes {query_encoder.embedding_dim}-d embeddings "
                f"but the separation network expects {dim}-d conditions"
            )
        self.separation_net = separation_net
        self.query_encoder = query_encoder
        self.name = name

    @property
    def sample_rate(self) -> int:
        return self.separation_net.config.sample_rate

    @property
    def device(self) -> torch.device:
        return next(self.separation_net.parameters()).device

    def embed(self, queries: str | Sequence[str] | Tensor) -> Tensor:
        """Conditions for ``queries``: text (str or list of str) or precomputed embeddings.

        Returns
        -------
        Tensor[N, D] on the model's device.
        """
        if isinstance(queries, Tensor):
            emb = queries if queries.dim() == 2 else queries[None]
            if emb.shape[-1] != self.separation_net.config.condition_dim:
                raise ValueError(
                    f"query embeddings must have {self.separation_net.config.condition_dim} features, "
                    f"got shape {tuple(queries.shape)}"
                )
            return emb.to(self.device, torch.float32)
        return self.query_encoder.encode_text(queries).to(self.device)

    def forward(self, mixture: Tensor, condition: Tensor, level_gain: Tensor | None = None) -> Tensor:
        """mixture: Tensor[B, 1, L] at ``sample_rate``; condition: Tensor[B, D] -> Tensor[B, 1, L].

        ``level_gain`` (Tensor[B], optional) is the input gain of a level-normalised network
        (see :meth:`audiosep.nn.ResUNet.forward`); :func:`audiosep.separate` passes the whole
        input's gain to every window, so chunked and single-pass outputs agree."""
        return self.separation_net(mixture, condition, level_gain=level_gain)

    # -- persistence ------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write ``config.json``, the network weights and the query encoder's files to a folder."""
        directory = Path(directory)
        if (directory / CONFIG_FILE).exists() and not overwrite:
            raise FileExistsError(f"{directory} already holds a model; pass overwrite=True to replace it")
        directory.mkdir(parents=True, exist_ok=True)

        encoder_cfg = self.query_encoder.save_pretrained(directory / "query_encoder")
        save_separation_net(self.separation_net, directory / NET_FILE)
        config = {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "sample_rate": self.sample_rate,
            "separation_net": self.separation_net.config.to_dict(),
            "query_encoder": encoder_cfg,
        }
        with atomic_path(directory / CONFIG_FILE) as tmp:
            tmp.write_text(json.dumps(config, indent=2) + "\n")
        return directory

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        *,
        device: str | torch.device | None = None,
        cache_dir: str | os.PathLike | None = None,
        offline: bool | None = None,
    ) -> "AudioSep":
        """Load a named bundle (see :func:`audiosep.list_models`) or a saved folder, in eval mode.

        Parameters
        ----------
        name_or_path : str or path
            A bundle name such as ``"audiosep-base"``, or a folder holding ``config.json`` (one
            written by :meth:`save_pretrained`; format in the module docstring).
        device : device, optional
            Where to put the model; default CPU.
        cache_dir : path, optional
            Where bundle files are downloaded; default ``$AUDIOSEP_CACHE`` or
            ``~/.cache/audiosep``.
        offline : bool, optional
            Never use the network (default: true when ``HF_HUB_OFFLINE`` is set).

        Returns
        -------
        AudioSep
            ``model(mixture: Tensor[B, 1, L], condition: Tensor[B, D]) -> Tensor[B, 1, L]``.

        Raises
        ------
        ModelConfigError
            If the folder's ``config.json`` is missing, not JSON, or lacks or mistypes a key (the
            message names the file and the problem).
        audiosep.pretrained.UnknownModelError
            If ``name_or_path`` is neither a folder nor a known bundle name.
        audiosep.pretrained.WeightsUnavailableError
            If a bundle's files are not cached and cannot be downloaded (the message says which
            files, from where, and into which folder to put them).
        """
        path = Path(name_or_path)
        if path.is_dir():
            config_path = path / CONFIG_FILE
            model = cls._build(path, read_config(config_path), str(config_path), name=str(path))
        elif path.is_file():
            raise ModelConfigError(
                f"{path} is a file; AudioSep.from_pretrained takes a bundle name or a folder written by "
                "save_pretrained. Load a bare checkpoint with audiosep.load_separation_net(path)"
            )
        else:
            model = cls._from_bundle(str(name_or_path), cache_dir=cache_dir, offline=offline)
        return model.to(device) if device is not None else model

    @classmethod
    def _from_bundle(cls, name: str, *, cache_dir: str | os.PathLike | None, offline: bool | None) -> "AudioSep":
        bundle = pretrained.get_bundle(name)
        folder = pretrained.fetch_bundle(name, cache_dir, offline=offline)
        if bundle.config is None:
            model = cls._build(folder, read_config(folder / CONFIG_FILE), str(folder / CONFIG_FILE), name=name)
        else:
            config = json.loads(json.dumps(dict(bundle.config)))  # a mutable deep copy
            check_config(config, f"the config of bundle {name!r}")
            model = cls._build(folder, config, f"the config of bundle {name!r}", name=name)
        if model.sample_rate != bundle.sample_rate:
            raise pretrained.PretrainedError(
                f"bundle {name!r} is registered at {bundle.sample_rate} Hz but its config says "
                f"{model.sample_rate} Hz; fix the registry entry in audiosep/pretrained.py")
        return model

    @classmethod
    def _build(cls, folder: Path, config: Mapping[str, Any], where: str, *, name: str) -> "AudioSep":
        """The model ``config`` (checked by :func:`check_config`) describes, with its files in
        ``folder``; ``where`` names the config in errors."""
        _check_net_types(config["separation_net"], where)
        try:
            net_config = ResUNetConfig.from_dict(config["separation_net"])
        except (TypeError, ValueError) as err:
            raise ModelConfigError(f"{where}: separation_net: {err}") from None
        if net_config.sample_rate != config["sample_rate"]:
            raise ModelConfigError(
                f"{where}: sample_rate {config['sample_rate']} differs from separation_net.sample_rate "
                f"{net_config.sample_rate}; make them equal")
        weights = folder / config.get("separation_net_file", NET_FILE)
        if not weights.is_file():
            raise ModelConfigError(f"{where}: the network weights {weights} do not exist; save the model "
                                   "again with save_pretrained or restore the file")
        try:
            net = load_separation_net(weights, config=net_config)
        except LayoutError as err:
            raise ModelConfigError(f"{where}: its separation_net does not fit {weights}: {err}") from None
        root = folder / config.get("query_encoder_dir", "query_encoder")
        try:
            encoder = build_query_encoder(config["query_encoder"], root=str(root))
            return cls(net, encoder, name=name).eval()
        except WeightFileError:
            raise  # a refused or broken weight file: its own message names that file
        except (TypeError, ValueError) as err:
            raise ModelConfigError(f"{where}: query_encoder: {err}") from None


def load_bundle(
    name: str,
    device: str | torch.device | None = None,
    cache_dir: str | os.PathLike | None = None,
    *,
    offline: bool | None = None,
) -> AudioSep:
    """The pretrained model ``name`` (see :func:`audiosep.list_models`), in eval mode: what
    :meth:`AudioSep.from_pretrained` returns for a name, without looking for a folder of that name."""
    model = AudioSep._from_bundle(name, cache_dir=cache_dir, offline=offline)
    return model.to(device) if device is not None else model


def _check_net_types(net: Mapping[str, Any], where: str) -> None:
    """Each ``separation_net`` value has the JSON type of its ResUNetConfig field's default."""
    for field in dataclasses.fields(ResUNetConfig):
        if field.name not in net:
            continue
        value, default = net[field.name], field.default
        if isinstance(default, tuple):
            ok, wanted = isinstance(value, list), "an array"
        elif isinstance(default, str):
            ok, wanted = isinstance(value, str), "a string"
        elif type(default) is int:
            ok, wanted = type(value) is int, "an integer"
        else:  # float fields; input_level_db may be null
            ok, wanted = type(value) in (int, float) or (value is None and default is None), "a number"
        if not ok:
            raise ModelConfigError(f"{where}: separation_net.{field.name} must be {wanted}, got {json.dumps(value)}")


def read_config(path: Path) -> dict[str, Any]:
    """The checked contents of a model's ``config.json`` at ``path``.

    Raises
    ------
    ModelConfigError
        Naming the file and the problem: missing, unreadable, not JSON, not an object, a key
        missing, unknown or of the wrong type, an unsupported format.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelConfigError(
            f"{path.parent} has no {CONFIG_FILE}: pass a folder written by AudioSep.save_pretrained or a "
            "model name (`audiosep models` lists them)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ModelConfigError(f"cannot read {path}: {err}") from None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise ModelConfigError(f"{path} is not valid JSON ({err}); restore it or save the model again "
                               "with save_pretrained") from None
    check_config(config, str(path))
    return config


def check_config(config: Any, where: str) -> None:
    """Raise :class:`ModelConfigError` (naming ``where``) unless ``config`` has the keys and JSON
    types of a model config (module docstring). The values are checked when the model is built."""
    if not isinstance(config, dict):
        raise ModelConfigError(f"{where} must hold a JSON object with the keys {', '.join(REQUIRED_KEYS)}; "
                               f"it holds {_JSON_TYPES.get(type(config), type(config).__name__)}")
    if "format" in config and config["format"] != MODEL_FORMAT:
        raise ModelConfigError(f"{where} is not an audiosep model config (format={config['format']!r}, "
                               f"expected {MODEL_FORMAT!r})")
    missing = [k for k in REQUIRED_KEYS if k not in config]
    if missing:
        raise ModelConfigError(f"{where} lacks the key(s) {', '.join(missing)}; a model config needs "
                               f"{', '.join(REQUIRED_KEYS)} (save the model with AudioSep.save_pretrained)")
    try:
        check_keys(config, [*REQUIRED_KEYS, *OPTIONAL_KEYS], error=ModelConfigError)
    except ModelConfigError as err:
        raise ModelConfigError(f"{where}: {err}") from None
    for key, kind in {**REQUIRED_KEYS, **OPTIONAL_KEYS}.items():
        value = config.get(key, kind())
        if type(value) is not kind:  # bool is not an integer here
            raise ModelConfigError(f"{where}: {key} must be {_JSON_TYPES[kind]}, got {json.dumps(value)}")
    if config["format_version"] > MODEL_FORMAT_VERSION:
        raise ModelConfigError(f"{where} has format_version {config['format_version']}, newer than this "
                               f"audiosep reads ({MODEL_FORMAT_VERSION}); upgrade audiosep")
    if not isinstance(config["query_encoder"].get("kind"), str):
        raise ModelConfigError(f"{where}: query_encoder must name its kind, e.g. {{\"kind\": \"minilm\"}}")
