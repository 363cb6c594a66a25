"""``AudioSep``: a query encoder and a separation network, saved and loaded together."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from .checkpoint import NET_FILE, load_separation_net, save_separation_net
from .nn.resunet import ResUNet
from .query import QueryEncoder, build_query_encoder

MODEL_FORMAT = "audiosep"
MODEL_FORMAT_VERSION = 1
CONFIG_FILE = "config.json"


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

    def forward(self, mixture: Tensor, condition: Tensor) -> Tensor:
        """mixture: Tensor[B, 1, L] at ``sample_rate``; condition: Tensor[B, D] -> Tensor[B, 1, L]."""
        return self.separation_net(mixture, condition)

    # -- persistence ------------------------------------------------------------------------
    def save_pretrained(self, directory: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write ``config.json``, the network weights and the query encoder's files to a folder."""
        directory = Path(directory)
        if (directory / CONFIG_FILE).exists() and not overwrite:
            raise FileExistsError(f"{directory} already holds a model; pass overwrite=True to replace it")
        directory.mkdir(parents=True, exist_ok=True)
        from .files import atomic_path

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
    def from_directory(cls, directory: str | os.PathLike, *, device: str | torch.device | None = None) -> "AudioSep":
        """Load a folder written by :meth:`save_pretrained`."""
        directory = Path(directory)
        config_path = directory / CONFIG_FILE
        if not config_path.is_file():
            raise FileNotFoundError(f"{directory} has no {CONFIG_FILE}; is it a folder written by save_pretrained?")
        config = json.loads(config_path.read_text())
        if config.get("format") != MODEL_FORMAT:
            raise ValueError(f"{config_path} is not an audiosep model config (format={config.get('format')!r})")
        net = load_separation_net(directory / NET_FILE)
        encoder = build_query_encoder(config["query_encoder"], root=str(directory / "query_encoder"))
        model = cls(net, encoder, name=str(directory)).eval()
        return model.to(device) if device is not None else model

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | os.PathLike,
        *,
        device: str | torch.device | None = None,
        cache_dir: str | os.PathLike | None = None,
        **kwargs: Any,
    ) -> "AudioSep":
        """Load a named bundle (see :func:`audiosep.list_models`) or a saved folder.

        Parameters
        ----------
        name_or_path : str or path
            A bundle name such as ``"audiosep-base"``, or a folder written by
            :meth:`save_pretrained`.
        device : device, optional
        cache_dir : path, optional
            Where bundle files are downloaded; default ``$AUDIOSEP_CACHE`` or
            ``~/.cache/audiosep``.

        Raises
        ------
        audiosep.pretrained.UnknownModelError
            If ``name_or_path`` is neither a folder nor a known bundle name.
        audiosep.pretrained.WeightsUnavailableError
            If a bundle's files are not cached and cannot be downloaded (the message says which
            files, from where, and into which folder to put them).
        """
        from .pretrained import load_bundle

        path = Path(name_or_path)
        if path.is_dir():
            return cls.from_directory(path, device=device)
        if path.is_file():
            raise ValueError(
                f"{path} is a file; AudioSep.from_pretrained takes a bundle name or a folder written by "
                "save_pretrained. Load a bare checkpoint with audiosep.load_separation_net(path)"
            )
        return load_bundle(str(name_or_path), device=device, cache_dir=cache_dir, **kwargs)
