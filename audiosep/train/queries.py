"""The batch's query embeddings: cached/precomputed text, optionally mixed with audio examples.

The query encoder is frozen; text embeddings come from its LRU cache or, with
``data.precompute_text``, from a table filled once for every caption of the manifests (and kept
on disk, see :mod:`~audiosep.train.text_cache`, so that it is filled once per run). With
``queries.audio_fraction > 0`` (encoders with ``supports_audio``, e.g. CLAP) that fraction of the
items is conditioned on the target clip itself, as the reference's audio-query mode does. Which
items get audio queries is drawn from an injected generator, so it is a function of the step.

Text augmentations (for a frozen text encoder to generalise to wordings it was not trained on;
each off by default, see :class:`~audiosep.train.config.QueryConfig`). Each item takes at most one
of the first three, drawn with the injected generator:

* label dropout: the caption is replaced by the item's bare label(s) (``", "``-joined; items
  without labels keep their caption);
* caption averaging: the renormalised mean embedding of ``k`` of the item's phrasings
  (:attr:`~audiosep.train.dataset.ClipBatch.phrasings`, drawn without replacement);
* embedding mixup: ``lam * e1 + (1 - lam) * e2`` of two of its phrasings, renormalised, with
  ``lam`` uniform in [0, 1];

and then, for every text item, embedding noise: Gaussian noise of std ``embedding_noise / sqrt(D)``
per feature (so its norm is about ``embedding_noise`` whatever the embedding size ``D``) is added
to the unit-norm embedding, which is renormalised (a cosine of about ``1 / sqrt(1 + s**2)`` to the
clean one for ``s = embedding_noise``). Items with fewer than two phrasings keep their
caption's embedding under averaging and mixup. With every option at 0 the conditions, and the
generator's draws, are exactly those without augmentation.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..query import ENCODERS, QueryEncoder, build_query_encoder
from .config import QueryConfig
from .distributed import DistInfo, barrier
from .text_cache import TextEmbeddingCache


def build_training_encoder(config: Mapping[str, Any]) -> QueryEncoder:
    """The query encoder a training config names."""
    kind = config.get("kind")
    if kind not in ENCODERS:
        raise ValueError(f"query_encoder.kind must be one of {sorted(ENCODERS)}, got {kind!r}")
    return build_query_encoder(config)


def unused_options(config: QueryConfig, records: Sequence) -> list[str]:
    """Messages naming the text augmentations of ``config`` that no training record can use (no
    record with two or more phrasings for averaging and mixup, none with labels for label dropout)."""
    out = []
    if (config.caption_average or config.embedding_mixup) and not any(len(r.captions) >= 2 for r in records):
        out.append("queries.caption_average / queries.embedding_mixup are on but no training record lists two or "
                   "more phrasings (a \"captions\" list in the manifest), so they change nothing")
    if config.label_dropout and not any(r.labels for r in records):
        out.append("queries.label_dropout is on but no training record has labels, so it changes nothing")
    return out


class BatchQueries:
    """Make ``Tensor[B, D]`` conditions for a batch.

    Parameters
    ----------
    encoder : QueryEncoder
        Frozen; already on ``device``.
    audio_fraction : float
        Probability that an item is conditioned on its own target audio.
    sample_rate : int
        Rate of the target audio handed to ``encoder.encode_audio``.
    device : torch.device
        Where the conditions are returned.
    config : QueryConfig, optional
        The text augmentations (see the module docstring); its ``audio_fraction`` is ignored in
        favour of the argument. Default: none.
    """

    def __init__(self, encoder: QueryEncoder, *, audio_fraction: float = 0.0, sample_rate: int = 32000,
                 device: torch.device | str = "cpu", config: QueryConfig | None = None) -> None:
        if audio_fraction > 0 and not encoder.supports_audio:
            raise ValueError(
                f"queries.audio_fraction is {audio_fraction} but the {encoder.kind!r} query encoder embeds "
                "text only; set queries.audio_fraction: 0 or use an encoder with audio support (clap)"
            )
        self.encoder = encoder
        self.audio_fraction = float(audio_fraction)
        self.config = config or QueryConfig()
        self.sample_rate = int(sample_rate)
        self.device = torch.device(device)
        self.table: dict[str, Tensor] = {}

    def precompute(self, captions: Sequence[str], chunk: int = 256, *, cache_dir: str | os.PathLike | None = None,
                   dist_info: DistInfo | None = None) -> int:
        """Embed every distinct caption once and keep it (on the CPU); returns the table's size.

        With ``cache_dir``, the embeddings also go to a :class:`~audiosep.train.text_cache.TextEmbeddingCache`
        there: global rank 0 reads it, embeds only the captions it lacks and rewrites it, while
        the other ranks wait (a barrier, so ``training.dist_timeout_s`` bounds the wait) and then
        read it; a rank that cannot see rank 0's file (no shared folder) embeds what it misses.
        A resumed or restarted run finds every caption there and does not embed any.
        """
        wanted = list(dict.fromkeys(captions))
        if cache_dir is None:
            self.table.update(self._embed([c for c in wanted if c not in self.table], chunk))
            return len(self.table)
        info = dist_info or DistInfo()
        cache = TextEmbeddingCache(cache_dir, self.encoder)
        if info.is_main:
            stored = cache.load()
            new = self._embed([c for c in wanted if c not in stored and c not in self.table], chunk)
            if new:
                cache.save({**stored, **new})
            self.table.update({c: stored[c] for c in wanted if c in stored})
            self.table.update(new)
        barrier(info)
        if not info.is_main:
            stored = cache.load()
            self.table.update({c: stored[c] for c in wanted if c in stored})
            self.table.update(self._embed([c for c in wanted if c not in self.table], chunk))
        return len(self.table)

    def _embed(self, texts: list[str], chunk: int) -> dict[str, Tensor]:
        """``{text: Tensor[D]}`` (CPU) from the encoder, ``chunk`` texts at a time."""
        out: dict[str, Tensor] = {}
        with tqdm(total=len(texts), desc="embedding captions", unit="caption", dynamic_ncols=True,
                  disable=True if len(texts) <= chunk else None, leave=False) as bar:
            for lo in range(0, len(texts), chunk):
                part = texts[lo: lo + chunk]
                out.update(zip(part, self.encoder.encode_text(part).cpu()))
                bar.update(len(part))
        return out

    def text(self, captions: Sequence[str]) -> Tensor:
        """Text conditions Tensor[B, D] (precomputed table first, then the encoder's cache)."""
        if self.table and all(c in self.table for c in captions):
            return torch.stack([self.table[c] for c in captions]).to(self.device)
        return self.encoder.encode_text(list(captions)).to(self.device, torch.float32)

    def __call__(self, captions: Sequence[str], target: Tensor, generator: torch.Generator, *,
                 labels: Sequence[Sequence[str]] | None = None,
                 phrasings: Sequence[Sequence[str]] | None = None) -> Tensor:
        """Conditions for the batch.

        Parameters
        ----------
        captions : sequence of str
            One per item.
        target : Tensor[B, 1, T]
            The items' target sources (used for audio queries).
        generator : torch.Generator
            CPU; draws the text augmentations and which items use audio queries (only for the
            options that are on).
        labels : sequence of sequence of str, optional
            Each item's class labels (for label dropout).
        phrasings : sequence of sequence of str, optional
            Each item's phrasings (for caption averaging and embedding mixup).

        Returns
        -------
        Tensor[B, D] float32 on ``device``.
        """
        cond = self.augmented_text(captions, generator, labels=labels, phrasings=phrasings)
        if self.audio_fraction <= 0:
            return cond
        use_audio = torch.rand(len(captions), generator=generator) < self.audio_fraction
        if bool(use_audio.any()):
            clips = target[use_audio.to(target.device), 0].detach().float()
            emb = self.encoder.encode_audio(clips, self.sample_rate).to(self.device, torch.float32)
            cond = cond.clone()
            cond[use_audio.to(self.device)] = emb
        return cond

    def augmented_text(self, captions: Sequence[str], generator: torch.Generator, *,
                       labels: Sequence[Sequence[str]] | None = None,
                       phrasings: Sequence[Sequence[str]] | None = None) -> Tensor:
        """Text conditions Tensor[B, D] with the configured augmentations (see the module docstring)."""
        cfg = self.config
        n = len(captions)
        if not cfg.augments_text:
            return self.text(captions)
        for name, seq in (("labels", labels), ("phrasings", phrasings)):
            if seq is not None and len(seq) not in (0, n):
                raise ValueError(f"{len(seq)} {name} for {n} captions; give one per item (or none)")
        labels = labels or None
        phrasings = phrasings or None
        # per item: the texts whose embeddings are combined, and their weights
        mixes: list[tuple[list[str], list[float]]] = [([c], [1.0]) for c in captions]
        if cfg.label_dropout or cfg.caption_average or cfg.embedding_mixup:
            u = torch.rand(n, generator=generator, dtype=torch.float64).tolist()
            for i in range(n):
                pool = list(dict.fromkeys(phrasings[i])) if phrasings is not None else []
                if u[i] < cfg.label_dropout:
                    if labels is not None and labels[i]:
                        mixes[i] = ([", ".join(labels[i])], [1.0])
                elif u[i] < cfg.label_dropout + cfg.caption_average:
                    if len(pool) >= 2:
                        k = min(cfg.caption_average_count, len(pool))
                        picks = torch.randperm(len(pool), generator=generator)[:k].tolist()
                        mixes[i] = ([pool[j] for j in picks], [1.0 / k] * k)
                elif u[i] < cfg.label_dropout + cfg.caption_average + cfg.embedding_mixup:
                    if len(pool) >= 2:
                        a, b = torch.randperm(len(pool), generator=generator)[:2].tolist()
                        lam = float(torch.rand((), generator=generator, dtype=torch.float64))
                        mixes[i] = ([pool[a], pool[b]], [lam, 1.0 - lam])
        texts = list(dict.fromkeys(t for ts, _ in mixes for t in ts))
        emb = self.text(texts)
        row = {t: j for j, t in enumerate(texts)}
        cond = torch.stack([
            emb[row[ts[0]]] if len(ts) == 1 else
            torch.nn.functional.normalize(sum(w * emb[row[t]] for t, w in zip(ts, ws)), dim=-1)
            for ts, ws in mixes
        ])
        if cfg.embedding_noise > 0:
            std = cfg.embedding_noise / cond.shape[-1] ** 0.5  # per feature: the noise's norm is ~embedding_noise
            noise = torch.randn(cond.shape, generator=generator, dtype=torch.float32).to(cond.device)
            cond = torch.nn.functional.normalize(torch.nn.functional.normalize(cond, dim=-1) + std * noise, dim=-1)
        return cond
