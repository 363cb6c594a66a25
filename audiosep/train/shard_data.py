"""Training clips streamed from tar shards (``data.train_shards``), split across ranks and
DataLoader workers with no clip seen twice in an epoch.

Which shards, and how many clips each
    ``data.train_shards`` is either one local shard folder (or its ``index.json``), or a list of
    tar files, brace patterns (``shards/train-{000000..000099}.tar``) and URLs webdataset opens
    (``https://...``, ``pipe:aws s3 cp s3://bucket/train-000000.tar -``). A list needs
    ``data.shard_index``: a local ``index.json`` whose shard names match the listed files' names.
    Only the index (a few bytes per shard) is read at start-up, never the manifests.

One epoch
    The shards are put in a random order seeded by ``(seed, epoch)`` and read as one stream of
    ``total`` clips. ``steps_per_epoch = total // (batch_size * world_size)`` (as with
    manifests); the last ``total - steps * batch_size * world_size`` clips of the epoch's stream
    are left out (a different few each epoch). Rank ``r`` takes the ``r``-th contiguous piece of
    ``steps * batch_size`` clips. Its batches ``0 .. steps-1`` are dealt to ``N`` loader workers
    (``N = max(1, data.num_workers)``) by ``batch % N``; the batches of one residue are a
    contiguous part of the rank's piece, so a worker opens only the shards that overlap its part
    (a part starting inside a shard reads and discards the clips before it). Every clip of the
    epoch is therefore read by exactly one (rank, worker), and every rank yields the same number
    of batches. The DataLoader takes batches from its workers in turn, so they arrive in batch
    order.

Shuffling and crops
    Within its part a worker shuffles the clips through a buffer of ``data.shuffle_buffer`` clips
    (memory: that many encoded clips per worker) whose generator is seeded by ``(seed, epoch, rank,
    residue)``. Each clip is cut by :class:`~audiosep.train.dataset.SegmentReader` with a generator
    seeded by ``(seed, epoch, key)`` (``key``: the clip's number in the shard folder), exactly
    as :class:`~audiosep.train.dataset.ClipDataset` cuts record ``key`` of the same manifests;
    a clip with phrasings (``"captions"`` in its json) gets the caption ClipDataset would draw
    for record ``key`` (:func:`~audiosep.train.dataset.draw_caption`).

Resuming mid-epoch (exact)
    :meth:`ShardClips.set_epoch` takes the first step to yield; each worker replays its shuffled
    part without decoding and drops the clips of the batches already trained, so the resumed run
    sees the same batches as an uninterrupted one (the cost: re-reading the skipped part's bytes).
    The order depends on ``world_size``, ``batch_size`` and ``num_workers``: resume with the same.

Bad clips
    A clip that cannot be decoded (or is all silent) is replaced by the next good clip of the
    worker's stream (or the previous one at its end), cut with the bad clip's generator, and its
    original path is reported in :attr:`Clip.bad_files`; ``max_bad_records`` bad clips in a row
    raise :class:`~audiosep.train.dataset.BadDataError`.
"""
from __future__ import annotations

import itertools
import json
import os
import re
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from .config import DataConfig
from .dataset import BadAudioFile, BadDataError, Clip, SegmentReader, draw_caption, item_seed
from .distributed import generator_for
from .shards import INDEX_FILE, INDEX_FORMAT, ShardError

_WARNED: set[str] = set()  # clips already warned about in this process
MISSING_WEBDATASET = ("training from tar shards (data.train_shards) needs the webdataset package; "
                      "install it with: pip install 'audiosep[train]' (or pip install webdataset)")


def _webdataset():
    try:
        import webdataset
    except ImportError:
        raise ShardError(MISSING_WEBDATASET) from None
    return webdataset


@dataclass(frozen=True)
class ShardIndex:
    """The shards to read and their clip counts.

    Attributes
    ----------
    urls : tuple of str
        Local paths, URLs or ``pipe:`` commands, one per shard.
    counts : tuple of int
        Clips per shard.
    """

    urls: tuple[str, ...]
    counts: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.counts)


def _is_local(spec: str) -> bool:
    return not (spec.startswith("pipe:") or "://" in spec)


def read_index(path: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``index.json`` of a shard folder (a folder is read as its ``index.json``)."""
    path = Path(path)
    if path.is_dir():
        path = path / INDEX_FILE
    if not path.is_file():
        raise ShardError(f"shard index not found: {path}; write shards with 'audiosep-train shard MANIFEST --out DIR' "
                         "and give DIR (or DIR/index.json)")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ShardError(f"{path} is not a shard index (invalid JSON: {err})") from None
    ok = (isinstance(index, dict) and index.get("format") == INDEX_FORMAT and isinstance(index.get("shards"), list)
          and all(isinstance(s, dict) and isinstance(s.get("name"), str) and isinstance(s.get("count"), int)
                  and s["count"] >= 0 for s in index["shards"]))
    if not ok:
        raise ShardError(f"{path} is not a shard index written by 'audiosep-train shard' (format {INDEX_FORMAT!r})")
    index["_path"] = path
    return index


def _name_of(spec: str) -> str:
    """The file name a shard spec refers to (the last ``*.tar`` word of a URL or pipe command)."""
    names = re.findall(r"[^/\s'\"]+\.tar\b", spec)
    return names[-1] if names else os.path.basename(spec)


def load_shard_index(train_shards: Sequence[str], shard_index: str | None = None) -> ShardIndex:
    """The shards of ``data.train_shards`` and their counts (see the module docstring).

    Raises
    ------
    ShardError
        Missing webdataset, a missing or foreign index, or listed shards the index does not know.
    """
    wds = _webdataset()
    specs = list(train_shards)
    single = len(specs) == 1 and _is_local(specs[0]) and (Path(specs[0]).is_dir() or specs[0].endswith(".json"))
    if single and shard_index is None:
        index = read_index(specs[0])
        base = index["_path"].parent
        urls = [n if not _is_local(n) or os.path.isabs(n) else str(base / n) for n in (s["name"] for s in index["shards"])]
        counts = [s["count"] for s in index["shards"]]
    else:
        if shard_index is None:
            raise ShardError("data.train_shards lists tar files; set data.shard_index to the index.json written "
                             "with them (it holds their clip counts), or give the shard folder itself")
        index = read_index(shard_index)
        known = {s["name"]: s["count"] for s in index["shards"]}
        urls = [u for spec in specs for u in wds.shardlists.expand_urls(spec)]
        unknown = [u for u in urls if _name_of(u) not in known]
        if unknown:
            raise ShardError(f"data.shard_index {index['_path']} does not list {len(unknown)} of the data.train_shards "
                             f"(e.g. {_name_of(unknown[0])!r}); give the index written with those shards")
        counts = [known[_name_of(u)] for u in urls]
    twice = [u for u, n in Counter(_name_of(u) for u in urls).items() if n > 1]
    if twice:
        raise ShardError(f"data.train_shards lists {twice[0]!r} more than once; each shard must be read once per epoch")
    missing = [u for u in urls if _is_local(u) and not os.path.isfile(u)]
    if missing:
        raise ShardError(f"{len(missing)} shard file(s) of data.train_shards do not exist (e.g. {missing[0]}); "
                         "check the paths")
    if not urls or sum(counts) == 0:
        raise ShardError("data.train_shards holds no clips; write shards with 'audiosep-train shard'")
    return ShardIndex(tuple(urls), tuple(counts))


def _members(stream, url: str) -> Iterator[tuple[str, bytes]]:
    """``(name, data)`` of the regular files of a tar stream. A small reader of the ustar
    headers ``audiosep-train shard`` writes (about 5x faster than :mod:`tarfile`'s stream mode,
    which was a third of the decoding time); entries of other types are skipped."""
    while True:
        header = stream.read(512)
        if len(header) < 512 or header == bytes(512):
            return
        if header[257:262] != b"ustar":
            raise ShardError(f"{url} is not a tar file written by 'audiosep-train shard' (no ustar header)")
        try:
            size = int(header[124:136].rstrip(b"\0 ") or b"0", 8)
        except ValueError:
            raise ShardError(f"{url}: a damaged tar header; write the shards again") from None
        data = stream.read(size)
        if len(data) < size:
            raise ShardError(f"{url} ends inside a clip (truncated); copy or write the shard again")
        stream.read(-size % 512)
        if header[156:157] in (b"0", b"\0"):
            prefix, name = header[345:500].rstrip(b"\0"), header[:100].rstrip(b"\0")
            yield (prefix + b"/" + name if prefix else name).decode(), data


def iter_shard(url: str) -> Iterator[tuple[int, dict[str, Any], bytes]]:
    """``(key, metadata, audio bytes)`` of each clip of one shard, in order."""
    stream = open(url, "rb") if _is_local(url) else _webdataset().gopen(url, "rb")
    with stream:
        key, meta, audio = None, None, None
        for name, data in _members(stream, url):
            stem, _, ext = name.partition(".")
            if stem != key:
                key, meta, audio = stem, None, None
            if ext == "json":
                meta = json.loads(data)
            else:
                audio = data
            if meta is not None and audio is not None:
                yield int(key), meta, audio
                key = None


def shuffled(items: Iterator[Any], size: int, gen: torch.Generator) -> Iterator[Any]:
    """``items`` reordered through a buffer of ``size`` (1: unchanged); the same generator state
    gives the same order, and every item comes out exactly once."""
    buf: list[Any] = []
    for item in items:
        if len(buf) < size:
            buf.append(item)
            continue
        j = int(torch.randint(size, (1,), generator=gen))
        yield buf[j]
        buf[j] = item
    for j in torch.randperm(len(buf), generator=gen).tolist():
        yield buf[j]


def worker_part(total: int, batch_size: int, world_size: int, rank: int, residue: int,
                workers: int) -> tuple[int, int, int]:
    """``(first clip, clips, batches)`` of the epoch stream that the batches ``b`` of ``rank``
    with ``b % workers == residue`` take (see the module docstring)."""
    steps = total // (batch_size * world_size)
    before = sum(len(range(c, steps, workers)) for c in range(residue))
    batches = len(range(residue, steps, workers))
    return (rank * steps + before) * batch_size, batches * batch_size, batches


class ShardClips(torch.utils.data.IterableDataset):
    """This rank's clips of one epoch, read from tar shards (use with a DataLoader whose
    ``batch_size`` is ``batch_size`` and ``collate_fn`` :func:`~audiosep.train.dataset.collate_clips`).

    Parameters
    ----------
    index : ShardIndex
    config : DataConfig
        Cutting settings (see :class:`~audiosep.train.dataset.SegmentReader`), ``batch_size``,
        ``num_workers`` and ``shuffle_buffer``.
    seed : int
    rank, world_size : int
    max_bad_records : int
    """

    def __init__(self, index: ShardIndex, config: DataConfig, *, seed: int = 0, rank: int = 0,
                 world_size: int = 1, max_bad_records: int = 20) -> None:
        self.index, self.config = index, config
        self.reader = SegmentReader(config)
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.batch_size = config.batch_size
        self.max_bad_records = int(max_bad_records)
        self.epoch, self.start_step = 0, 0
        if self.steps_per_epoch < 1:
            raise ShardError(f"{index.total} training clips in data.train_shards are fewer than one global batch "
                             f"({self.batch_size} x {world_size} processes); add clips or lower data.batch_size")

    @property
    def steps_per_epoch(self) -> int:
        return self.index.total // (self.batch_size * self.world_size)

    def set_epoch(self, epoch: int, start_step: int = 0) -> None:
        """Select the epoch and its first step to yield (for resuming mid-epoch)."""
        self.epoch, self.start_step = int(epoch), int(start_step)

    def __len__(self) -> int:
        """Clips this rank yields from :attr:`start_step` on."""
        return (self.steps_per_epoch - self.start_step) * self.batch_size

    def __iter__(self) -> Iterator[Clip]:
        info = torch.utils.data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        residue = (worker + self.start_step) % workers
        yield from self.part(residue, workers)

    def part(self, residue: int, workers: int) -> Iterator[Clip]:
        """The clips of this rank's batches ``b >= start_step`` with ``b % workers == residue``, in order."""
        first, count, _ = worker_part(self.index.total, self.batch_size, self.world_size, self.rank, residue, workers)
        done = len(range(residue, self.start_step, workers)) * self.batch_size
        raw = shuffled(self._stream(first, count), self.config.shuffle_buffer,
                       generator_for("shuffle", self.seed, self.epoch, self.rank, residue))
        yield from self._clips(itertools.islice(raw, done, None))  # the skipped clips are not decoded

    def _gen(self, key: int) -> torch.Generator:
        return torch.Generator().manual_seed(item_seed(self.seed, self.epoch, key))

    def _clips(self, samples: Iterator[tuple[int, dict[str, Any], bytes]]) -> Iterator[Clip]:
        """Decoded clips; a bad one is replaced by the next good one (the previous at the end)."""
        pending: list[tuple[int, str]] = []  # (key, path) of bad clips awaiting a replacement
        good = None
        for key, meta, audio in samples:
            try:
                cut = self.reader.segment_of(audio, self._gen(key))
            except BadAudioFile as err:
                path = str(meta.get("path", key))
                if path not in _WARNED:
                    _WARNED.add(path)
                    warnings.warn(f"skipping training clip {path} (shard key {key}): {err}", RuntimeWarning,
                                  stacklevel=2)
                pending.append((key, path))
                if len(pending) >= self.max_bad_records:
                    raise BadDataError(f"{len(pending)} bad clips in a row in data.train_shards (last: {path}: "
                                       f"{err}); check the audio files the shards were written from") from None
                continue
            good = (key, meta, audio)
            for bad_key, bad_path in pending:
                yield self._replacement(bad_key, bad_path, good, cut)
            pending = []
            yield self._clip(cut, meta, key, key)
        if pending and good is None:
            raise BadDataError(f"all {len(pending)} clips of a worker's part of data.train_shards are bad "
                               f"(e.g. {pending[0][1]}); check the audio files the shards were written from")
        for bad_key, bad_path in pending:
            yield self._replacement(bad_key, bad_path, good, None)

    def _replacement(self, bad_key: int, bad_path: str, good: tuple[int, dict[str, Any], bytes],
                     cut: torch.Tensor | None) -> Clip:
        """The good clip cut with the bad clip's generator (its own cut if that fails)."""
        key, meta, audio = good
        try:
            cut = self.reader.segment_of(audio, self._gen(bad_key))
        except BadAudioFile:
            cut = cut if cut is not None else self.reader.segment_of(audio, self._gen(key))
        return self._clip(cut, meta, key, bad_key, (bad_path,))

    def _clip(self, cut: torch.Tensor, meta: dict[str, Any], key: int, drawn_for: int,
              bad_files: tuple[str, ...] = ()) -> Clip:
        """The clip of shard key ``key`` cut as ``cut``, its caption drawn as item ``drawn_for``'s."""
        phrasings = tuple(meta.get("captions") or ())
        caption = draw_caption(meta["caption"], phrasings, self.seed, self.epoch, drawn_for)
        return Clip(audio=cut, caption=caption, labels=tuple(meta["labels"]), index=key, bad_files=bad_files,
                    phrasings=phrasings)

    def _stream(self, first: int, count: int) -> Iterator[tuple[int, dict[str, Any], bytes]]:
        """Clips ``first .. first + count - 1`` of the epoch's shard stream (encoded)."""
        order = torch.randperm(len(self.index.urls), generator=generator_for("shards", self.seed, self.epoch)).tolist()
        pos, end = 0, first + count
        for s in order:
            url, n = self.index.urls[s], self.index.counts[s]
            if pos + n <= first:
                pos += n
                continue
            if pos >= end:
                return
            seen = 0
            for sample in iter_shard(url):
                if pos + seen >= end:
                    return
                if pos + seen >= first:
                    yield sample
                seen += 1
            if seen < n:
                raise ShardError(f"shard {url} holds {seen} clips but its index says {n}; "
                                 "the index is stale: write the shards again")
            pos += n
