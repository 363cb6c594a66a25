"""Caption embeddings kept on disk, so a run embeds its captions once, not once per process and
again at every resume or restart.

A cache is one file, ``<folder>/text-<digest>.safetensors``, where the digest is that of the
query encoder's config (another encoder, or the same kind with other settings, never reads it).
It holds the tensor ``embeddings`` (``Tensor[N, D]`` float32, row ``i`` for caption ``i``) and,
as metadata, the captions (a JSON list), the encoder's config and digest, and a SHA-256 of the
captions and the tensor bytes, so a truncated or altered file is noticed (and rebuilt, with a
warning) instead of feeding wrong conditions to training. It is read with
:func:`audiosep.weight_files.read_safetensors` (no pickle) and written atomically.

The digest covers the encoder's config, not its weights: an encoder whose files change under the
same paths needs a fresh run folder (or the cache file deleted).
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Mapping

import torch
from torch import Tensor

from ..files import atomic_path
from ..query import QueryEncoder
from ..weight_files import WeightFileError, read_safetensors

FORMAT = "audiosep.text_embeddings"
FORMAT_VERSION = "1"
TENSOR = "embeddings"


def encoder_digest(encoder: QueryEncoder) -> str:
    """SHA-256 (hex) of the encoder's config and embedding size."""
    described = {"config": encoder.config_dict(), "embedding_dim": encoder.embedding_dim}
    return hashlib.sha256(json.dumps(described, sort_keys=True, default=str).encode()).hexdigest()


def _checksum(captions_json: str, embeddings: Tensor) -> str:
    h = hashlib.sha256(captions_json.encode())
    h.update(embeddings.contiguous().numpy().tobytes())
    return h.hexdigest()


class TextEmbeddingCache:
    """The cache file of one query encoder in ``folder``.

    Parameters
    ----------
    folder : path
        Where the file lives (created on the first save).
    encoder : QueryEncoder
        Only its config and embedding size matter here.
    """

    def __init__(self, folder: str | os.PathLike, encoder: QueryEncoder) -> None:
        self.digest = encoder_digest(encoder)
        self.encoder_config = encoder.config_dict()
        self.dim = encoder.embedding_dim
        self.path = Path(folder) / f"text-{self.digest[:16]}.safetensors"

    def load(self) -> dict[str, Tensor]:
        """``{caption: Tensor[D]}`` from the file; empty when there is none, or when it is
        unusable (truncated, altered, another encoder's), with a warning saying which."""
        if not self.path.is_file():
            return {}
        try:
            return self._read()
        except (WeightFileError, ValueError, KeyError) as err:
            warnings.warn(f"caption embedding cache {self.path} is unusable ({err}); embedding the captions "
                          "again and rewriting it", stacklevel=2)
            return {}

    def _read(self) -> dict[str, Tensor]:
        tensors, meta = read_safetensors(self.path)
        if meta.get("format") != FORMAT or meta.get("encoder_digest") != self.digest:
            raise ValueError("written for another query encoder or by another program")
        captions = json.loads(meta["captions"])
        emb = tensors[TENSOR]
        if emb.dtype != torch.float32 or tuple(emb.shape) != (len(captions), self.dim):
            raise ValueError(f"embeddings of shape {tuple(emb.shape)} {emb.dtype}, expected "
                             f"({len(captions)}, {self.dim}) float32")
        if _checksum(meta["captions"], emb) != meta.get("sha256"):
            raise ValueError("its checksum does not match: the file was altered or damaged")
        return dict(zip(captions, emb))

    def save(self, table: Mapping[str, Tensor]) -> Path:
        """Write ``{caption: Tensor[D]}`` as the cache file (atomically, replacing an older one)."""
        from safetensors.torch import save_file

        captions = list(table)
        emb = (torch.stack([table[c].detach().float().cpu() for c in captions]) if captions
               else torch.zeros(0, self.dim))
        captions_json = json.dumps(captions, ensure_ascii=False)
        meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "encoder_digest": self.digest,
                "encoder": json.dumps(self.encoder_config, sort_keys=True, default=str),
                "captions": captions_json, "sha256": _checksum(captions_json, emb)}
        with atomic_path(self.path) as tmp:
            save_file({TENSOR: emb.contiguous()}, str(tmp), metadata=meta)
        return self.path
