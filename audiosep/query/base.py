"""The query-encoder interface: frozen text (and optionally audio) encoders."""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import Any, ClassVar, Sequence

import torch
from torch import Tensor, nn

from ..audio.resample import resample


class QueryEncoder(nn.Module):
    """A frozen encoder mapping text (or an audio example) to an L2-normalised embedding.

    An ordinary ``nn.Module``: a subclass builds (and loads) its model in ``__init__``, then
    calls :meth:`freeze`. It implements :meth:`_embed_text` and, if it supports audio queries,
    :meth:`_embed_audio`. Text embeddings are kept in an LRU cache.

    Attributes
    ----------
    kind : str
        Registry name ("clap", "clip", "minilm", "hashed").
    embedding_dim : int
        Size D of the embeddings.
    audio_sample_rate : int or None
        Sample rate audio examples are resampled to, or None if audio queries are unsupported.
    """

    kind: ClassVar[str] = ""
    audio_sample_rate: int | None = None

    def __init__(self, embedding_dim: int, cache_size: int = 4096) -> None:
        super().__init__()
        if int(embedding_dim) <= 0:
            raise ValueError(f"embedding_dim must be positive, got {embedding_dim}")
        self.embedding_dim = int(embedding_dim)
        self.cache_size = cache_size
        self._cache: OrderedDict[str, Tensor] = OrderedDict()
        self._lock = threading.Lock()

    # -- to implement -------------------------------------------------------------------
    def _embed_text(self, texts: list[str]) -> Tensor:
        """Unnormalised or normalised embeddings, Tensor[N, D], for non-empty texts."""
        raise NotImplementedError

    def _embed_audio(self, audio: Tensor) -> Tensor:
        """Embeddings, Tensor[N, D], of audio examples Tensor[N, L] at ``audio_sample_rate``."""
        raise NotImplementedError(f"the {self.kind!r} query encoder does not support audio queries")

    def config_dict(self) -> dict[str, Any]:
        """Plain description of this encoder (``{"kind": ..., ...}``), JSON-serialisable,
        enough to rebuild it with :func:`audiosep.query.build_query_encoder`."""
        raise NotImplementedError

    @classmethod
    def from_config(cls, config: dict[str, Any], root: str | None = None) -> "QueryEncoder":
        """Inverse of :meth:`config_dict` (without ``kind``); relative paths resolve against ``root``."""
        raise NotImplementedError

    def save_pretrained(self, directory: "os.PathLike | str") -> dict[str, Any]:
        """Write whatever files the encoder needs into ``directory`` (may write none, e.g. for
        an encoder shipped in a Python package) and return the config dict that rebuilds it
        from there, with paths relative to ``directory``."""
        raise NotImplementedError

    # -- public ---------------------------------------------------------------------------
    @property
    def supports_audio(self) -> bool:
        return self.audio_sample_rate is not None

    @property
    def device(self) -> torch.device:
        for t in self.parameters():
            return t.device
        for t in self.buffers():
            return t.device
        return torch.device("cpu")

    def freeze(self) -> "QueryEncoder":
        """No gradients, eval mode: what every encoder's ``__init__`` ends with."""
        self.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True) -> "QueryEncoder":
        return super().train(False)  # frozen: always in eval mode

    @torch.no_grad()
    def encode_text(self, texts: str | Sequence[str]) -> Tensor:
        """Embed text queries.

        Parameters
        ----------
        texts : str or sequence of str
            Non-empty descriptions.

        Returns
        -------
        Tensor[N, D]
            L2-normalised embeddings, on the encoder's device, float32.
        """
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        for t in texts:
            if not isinstance(t, str) or not t.strip():
                raise ValueError(f"empty query {t!r}: describe the sound to separate, e.g. 'a dog barking'")
        unique = list(dict.fromkeys(texts))
        with self._lock:  # snapshot the hits: a batch larger than the cache may evict them below
            found = {t: self._cache[t] for t in unique if t in self._cache}
            for t in found:
                self._cache.move_to_end(t)
        todo = [t for t in unique if t not in found]
        if todo:
            emb = nn.functional.normalize(self._embed_text(todo).float(), dim=-1)
            for t, e in zip(todo, emb):
                found[t] = e
                self._remember(t, e)
        device = self.device  # cached rows may predate a move to another device
        return torch.stack([found[t].to(device) for t in texts])

    @torch.no_grad()
    def encode_audio(self, audio: Tensor, sample_rate: int) -> Tensor:
        """Embed audio examples of the sound to separate.

        Parameters
        ----------
        audio : Tensor[N, L]
            Mono examples at ``sample_rate``.
        sample_rate : int

        Returns
        -------
        Tensor[N, D]
            L2-normalised embeddings, float32.
        """
        if not self.supports_audio:
            raise ValueError(
                f"the {self.kind!r} query encoder embeds text only; use a CLAP model for audio queries"
            )
        if audio.dim() != 2:
            raise ValueError(f"audio queries must be Tensor[N, L], got shape {tuple(audio.shape)}")
        audio = resample(audio.float(), sample_rate, self.audio_sample_rate).to(self.device)
        return nn.functional.normalize(self._embed_audio(audio).float(), dim=-1)

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()

    def _remember(self, text: str, emb: Tensor) -> None:
        with self._lock:
            self._cache[text] = emb
            self._cache.move_to_end(text)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)

