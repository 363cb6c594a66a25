"""A model-free text "encoder" for tests, smoke runs and benchmarks.

Each distinct text gets a fixed random unit vector seeded from a hash of the text, so every
process, run and platform agrees. It knows nothing about meaning (paraphrases get unrelated
embeddings): never use it for a model meant to follow real descriptions.
"""
from __future__ import annotations

import hashlib
from typing import Any

import torch
from torch import Tensor

from ..errors import check_keys
from .base import QueryEncoder


def text_seed(text: str) -> int:
    """A 63-bit seed from ``text`` (stable across processes and platforms)."""
    digest = hashlib.blake2b(f"text:{text}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


class HashedTextEncoder(QueryEncoder):
    """Text -> fixed random unit vector of ``dim`` features."""

    kind = "hashed"
    audio_sample_rate = None

    def __init__(self, dim: int = 512, cache_size: int = 4096) -> None:
        super().__init__(int(dim), cache_size=cache_size)
        self.freeze()

    def _embed_text(self, texts: list[str]) -> Tensor:
        rows = [torch.randn(self.embedding_dim, generator=torch.Generator().manual_seed(text_seed(t)))
                for t in texts]
        return torch.stack(rows)

    def config_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "dim": self.embedding_dim}

    @classmethod
    def from_config(cls, config: dict[str, Any], root: str | None = None) -> "HashedTextEncoder":
        config = {k: v for k, v in config.items() if k != "kind"}
        check_keys(config, ("dim", "cache_size"), "query_encoder")
        return cls(**config)

    def save_pretrained(self, directory) -> dict[str, Any]:
        return self.config_dict()
