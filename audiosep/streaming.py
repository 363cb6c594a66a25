"""Separation block by block: memory bounded by one window, whatever the input's length.

The input (a file or an array) is read in blocks, resampled to the model's rate as a stream, cut
into windows by :class:`audiosep.chunking.ChunkedStream`, and the separated blocks are resampled
back and handed to a sink (files written as they grow, or arrays at the input's rate) together
with the matching input samples (for the residual).

Level-normalised networks (``input_level_db``) get the gain of the whole input, measured in a
first pass at the model's rate, so every window is scaled alike and the windowed result equals
the single pass.
"""
from __future__ import annotations

import contextlib
import itertools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch import Tensor

from .audio.io import BLOCK_FRAMES, open_audio, open_writer
from .audio.resample import StreamResampler
from .chunking import ChunkedStream
from .nn.resunet import gain_for_rms


@dataclass
class Source:
    """Audio to separate, readable block by block (more than once).

    ``blocks()`` yields ``Tensor[channels, n]`` float32 CPU blocks, ``length`` frames in all.
    """

    blocks: Callable[[], Iterator[Tensor]]
    channels: int
    length: int
    sample_rate: int
    name: str  # for messages: the file, or "the audio"


def file_source(path: str | os.PathLike) -> Source:
    reader = open_audio(path)
    return Source(reader.blocks, reader.channels, reader.frames, reader.sample_rate, str(path))


def array_source(x: np.ndarray | Tensor, sample_rate: int, as_float: Callable) -> Source:
    """``x: [C, T]`` (not copied: each block is converted by ``as_float`` as it is read)."""

    def blocks() -> Iterator[Tensor]:
        for i in range(0, x.shape[-1], BLOCK_FRAMES):
            yield as_float(x[:, i : i + BLOCK_FRAMES])

    return Source(blocks, x.shape[0], x.shape[-1], sample_rate, "the audio")


@dataclass
class Scan:
    peak: float


def scan(source: Source) -> Scan:
    """Check every sample is finite; measure the peak (0 means silence)."""
    peak = 0.0
    for block in source.blocks():
        if not torch.isfinite(block).all():
            raise ValueError(
                f"{source.name} contains NaN or Inf samples; clean it (e.g. numpy.nan_to_num) first"
            )
        if block.numel():
            peak = max(peak, float(block.abs().max()))
    return Scan(peak)


def model_rate_blocks(source: Source, rate: int, min_length: int) -> tuple[int, Iterator[Tensor]]:
    """The input at ``rate`` as float32 ``Tensor[C, n]`` blocks, zero-padded at the input rate to at
    least ``min_length`` frames. Returns (total frames at ``rate``, blocks)."""
    padded = max(source.length, min_length)
    total = padded if rate == source.sample_rate else round(padded * rate / source.sample_rate)  # soxr's count

    def blocks() -> Iterator[Tensor]:
        down = StreamResampler(source.sample_rate, rate, source.channels)
        done = 0
        tail = [torch.zeros(source.channels, padded - source.length)] if padded > source.length else []
        for block in itertools.chain(source.blocks(), tail, [None]):
            y = down.process(block if block is not None else torch.zeros(source.channels, 0), last=block is None)
            y = y[:, : total - done].float()
            if block is None and done + y.shape[1] < total:
                y = torch.nn.functional.pad(y, (0, total - done - y.shape[1]))
            done += y.shape[1]
            if y.shape[1]:
                yield y

    return total, blocks()


def level_gains(source: Source, rate: int, min_length: int, level_db: float) -> Tensor:
    """Tensor[C]: per channel, the gain that brings the whole input (at ``rate``) to ``level_db``."""
    total, blocks = model_rate_blocks(source, rate, min_length)
    power = torch.zeros(source.channels, dtype=torch.float64)
    for block in blocks:
        power += block.double().pow(2).sum(dim=1)
    return gain_for_rms((power / total).sqrt(), level_db).float()


def run_stream(
    source: Source,
    rate: int,
    min_length: int,
    fn: Callable[[Tensor], Tensor],
    window: int | None,
    overlap: int,
    fade: int,
    sink: "Sink",
    progress: bool = False,
) -> None:
    """Separate ``source`` into ``sink``: ``fn`` maps a model-rate window ``Tensor[C, l]`` to
    ``Tensor[Q, C, l]``; ``window=None`` runs one window over the whole input. Sizes in samples at
    ``rate``, see :func:`audiosep.chunking.plan_windows`."""
    total, blocks = model_rate_blocks(source, rate, min_length)
    chunks = ChunkedStream(fn, total, window or total, overlap if window else 0, fade if window else 0, progress)
    up = None
    mixture = source.blocks()
    try:
        for block in blocks:
            y = chunks.push(block)
            if y is not None:
                up = up or StreamResampler(rate, source.sample_rate, y.shape[0] * y.shape[1])
                sink.feed(_up(up, y, False), mixture)
        if up is not None:
            sink.feed(_up(up, torch.zeros(sink.queries, source.channels, 0), True), mixture)
        sink.finish(mixture)
    finally:
        chunks.close()


def _up(up: StreamResampler, y: Tensor, last: bool) -> Tensor:
    q, c = y.shape[:2]
    return up.process(y.reshape(q * c, -1).cpu(), last=last).float().reshape(q, c, -1)


class Sink:
    """Receives the separated audio ``Tensor[Q, C, n]`` at the input rate, in order, and pairs it
    with the input's samples for the residual. Subclasses store or write it."""

    def __init__(self, queries: int, channels: int, length: int, residual: bool, source: Source) -> None:
        self.queries, self.channels, self.length, self.residual = queries, channels, length, residual
        self._done = 0
        self._mix: Tensor = torch.zeros(channels, 0)
        self._name = source.name

    def feed(self, est: Tensor, mixture: Iterator[Tensor]) -> None:
        est = est[..., : self.length - self._done]
        if not est.shape[-1]:
            return
        if not torch.isfinite(est).all():
            raise ValueError(
                f"separating {self._name} gave non-finite values: its samples are far beyond full scale "
                "(1.0) and overflow this model; scale the audio into [-1, 1] first"
            )
        res = None
        if self.residual:
            while self._mix.shape[-1] < est.shape[-1]:
                self._mix = torch.cat([self._mix, next(mixture)], dim=-1)
            res = self._mix[:, : est.shape[-1]] - est
            self._mix = self._mix[:, est.shape[-1] :]
        self.store(self._done, est, res)
        self._done += est.shape[-1]

    def finish(self, mixture: Iterator[Tensor]) -> None:
        if self._done < self.length:  # the resampler came up short: silence to the input's length
            self.feed(torch.zeros(self.queries, self.channels, self.length - self._done), mixture)

    def store(self, start: int, est: Tensor, res: Tensor | None) -> None:
        raise NotImplementedError


class ArraySink(Sink):
    """Keeps the output (and residual) as ``Tensor[Q, C, T]``, at the input rate."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.audio = torch.empty(self.queries, self.channels, self.length)
        self.res = torch.empty_like(self.audio) if self.residual else None

    def store(self, start: int, est: Tensor, res: Tensor | None) -> None:
        self.audio[..., start : start + est.shape[-1]] = est
        if res is not None:
            self.res[..., start : start + res.shape[-1]] = res


class FileSink(Sink):
    """Writes one file per query (and residual) as the output grows; use as a context manager:
    the files appear only when the ``with`` block completes."""

    def __init__(self, paths: list[Path], residual_paths: list[Path] | None, sample_rate: int,
                 overwrite: bool, *args) -> None:
        super().__init__(*args)
        self._stack = contextlib.ExitStack()
        self._targets = (paths, residual_paths, sample_rate, overwrite)

    def __enter__(self) -> "FileSink":
        paths, residual_paths, sr, overwrite = self._targets
        with self._stack as stack:
            self._est = [stack.enter_context(open_writer(p, sr, self.channels, overwrite=overwrite)) for p in paths]
            self._res = [stack.enter_context(open_writer(p, sr, self.channels, overwrite=overwrite))
                         for p in residual_paths or []]
            self._stack = stack.pop_all()
        return self

    def __exit__(self, *exc) -> bool:
        return self._stack.__exit__(*exc)

    def store(self, start: int, est: Tensor, res: Tensor | None) -> None:
        for q, write in enumerate(self._est):
            write(est[q])
        for q, write in enumerate(self._res if res is not None else []):
            write(res[q])


def silent_blocks(source: Source, queries: int) -> Iterator[Tensor]:
    """Zeros ``Tensor[Q, C, n]`` in the input's blocks (the separation of silence)."""
    for block in source.blocks():
        yield block.new_zeros(queries, *block.shape)
