"""Random fixed-length mono training clips decoded from manifest records.

Every item is a deterministic function of ``(seed, epoch, index)``: a :class:`torch.Generator`
is seeded from those three numbers for each ``__getitem__`` call, so the crop does not depend on
which DataLoader worker or which rank loads the item, and the global RNG is never touched.

Cropping
    Training (``random_crop=True``) takes a uniformly random segment. Validation
    (``random_crop=False``) takes the segment that starts at the beginning of the file.

Short clips
    A clip shorter than the segment is zero-padded to it. With ``short_clips="random"`` (the
    default) it is placed at an offset drawn uniformly from the item's generator, in training and
    validation alike, so a one-shot sound (a drum hit, a bark) is seen anywhere in the segment, as
    it is in real mixtures. With ``short_clips="start"`` it sits at the start and is padded at the
    end: the network then learns that short sounds begin at the segment's start and misses them
    elsewhere (this is how the first two stages of the bundled model were trained).

Speed perturbation
    With ``speed_range=(low, high)`` (training only) each item draws a factor ``r`` uniformly
    from the range and the segment is read from ``r`` times as much audio, resampled so that it
    plays ``r`` times faster (and ``r`` times higher: pitch and tempo change together, as in
    speed-perturbed speech training). The factor is rounded so the resampling rate is a
    multiple of 10 Hz. More distinct training signals from the same recordings; validation
    items, and the loudest-segment fallback of the silence guard, are never perturbed.

Silence guard
    A segment whose RMS is below ``silence_db`` dBFS is rejected and another random offset is
    tried, up to ``max_retries`` times (for validation: no retries). If all tries are silent the
    whole file is read and its loudest segment is used; if even that is below ``silence_db`` the
    file counts as bad ("all silent").

Phrasings
    A record with ``captions`` (other phrasings of the same sound, see
    :mod:`~audiosep.train.manifest`) gets one of them, drawn uniformly with a generator seeded by
    ``("caption", seed, epoch, index)`` (:func:`draw_caption`), as the item's caption, unless the
    dataset was made with ``draw_captions=False`` (validation: always the record's ``caption``).
    That generator is separate from the crop's, so the crops are the same with and without
    phrasings. The item keeps the whole list (:attr:`Clip.phrasings`) for the query augmentations
    of :mod:`~audiosep.train.queries`.

Bad files
    Missing, unreadable, empty, NaN/Inf-holding or all-silent files are skipped: a warning naming
    the file and the reason is issued once per path per process, the path is listed in
    :attr:`Clip.bad_files`, and a replacement record is drawn from the item's generator (so the
    replacement is deterministic too). After ``max_bad_records`` bad records in a row a
    :class:`BadDataError` is raised.

With ``persistent_workers=True`` DataLoader workers keep their own copy of the dataset, so a later
:meth:`ClipDataset.set_epoch` in the main process does not reach them; use non-persistent workers
(the default) or re-create the loader each epoch.
"""
from __future__ import annotations

import hashlib
import io
import math
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import soundfile
import torch
from torch import Tensor

from ..audio.resample import resample
from ..errors import AudiosepError
from .config import DataConfig
from .manifest import ClipRecord

_WARNED: set[str] = set()  # paths already warned about in this process


class BadAudioFile(Exception):
    """A training file that must be skipped; ``str(err)`` is the reason."""


class BadDataError(AudiosepError, RuntimeError):
    """Too many bad audio files in a row: the manifests or the audio need fixing."""


@dataclass(frozen=True)
class Clip:
    """One training clip.

    Attributes
    ----------
    audio : Tensor[1, T]
        float32 mono at the dataset's sample rate; ``T`` = segment samples.
    caption : str
    labels : tuple of str
    index : int
        Index of the record actually used (differs from the requested one after a bad file).
    bad_files : tuple of str
        Paths that failed while producing this clip (and were skipped).
    phrasings : tuple of str
        Every phrasing of the clip's sound (its record's ``captions``; may be empty).
    """

    audio: Tensor
    caption: str
    labels: tuple[str, ...]
    index: int
    bad_files: tuple[str, ...] = ()
    phrasings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClipBatch:
    """A batch of clips.

    Attributes
    ----------
    audio : Tensor[B, 1, T]
    captions : list of str
    labels : list of tuple of str
    indices : list of int
    bad_files : tuple of str
        Every failed path of the batch, in order, without repeats.
    phrasings : list of tuple of str
        Every phrasing of each item's sound (possibly empty tuples).
    """

    audio: Tensor
    captions: list[str]
    labels: list[tuple[str, ...]]
    indices: list[int]
    bad_files: tuple[str, ...]
    phrasings: list[tuple[str, ...]] = field(default_factory=list)


def collate_clips(clips: Sequence[Clip]) -> ClipBatch:
    """Stack clips into a :class:`ClipBatch` (use as a DataLoader ``collate_fn``).

    Parameters
    ----------
    clips : sequence of Clip
        Each ``audio`` is ``Tensor[1, T]`` with the same ``T``.

    Returns
    -------
    ClipBatch
        ``audio`` is ``Tensor[B, 1, T]``.
    """
    if not clips:
        raise ValueError("cannot collate an empty list of clips; use a batch size of at least 1")
    bad = dict.fromkeys(p for c in clips for p in c.bad_files)
    return ClipBatch(
        audio=torch.stack([c.audio for c in clips]),
        captions=[c.caption for c in clips],
        labels=[c.labels for c in clips],
        indices=[c.index for c in clips],
        bad_files=tuple(bad),
        phrasings=[c.phrasings for c in clips],
    )


def item_seed(seed: int, epoch: int, index: int, stream: str = "") -> int:
    """A 63-bit seed mixed from ``(seed, epoch, index)`` (stable across processes and runs); a
    ``stream`` name gives an independent seed for another use of the same item."""
    key = f"{stream}:{seed}:{epoch}:{index}" if stream else f"{seed}:{epoch}:{index}"
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def draw_caption(caption: str, phrasings: Sequence[str], seed: int, epoch: int, index: int) -> str:
    """The training query of item ``index``: one of ``phrasings`` drawn uniformly with a generator
    seeded by ``("caption", seed, epoch, index)``, or ``caption`` when there are none."""
    if not phrasings:
        return caption
    gen = torch.Generator().manual_seed(item_seed(seed, epoch, index, "caption"))
    return phrasings[int(torch.randint(len(phrasings), (1,), generator=gen))]


def rms_db(audio: Tensor) -> float:
    """RMS level in dBFS of ``Tensor[..., T]`` (floored at -200 dB)."""
    power = float(audio.double().pow(2).mean()) if audio.numel() else 0.0
    return 10.0 * math.log10(max(power, 1e-20))


class SegmentReader:
    """Cuts fixed-length mono segments out of audio files or encoded file bytes (the decoding
    half of :class:`ClipDataset`, shared with the shard reader :mod:`audiosep.train.shard_data`).

    Parameters
    ----------
    config : DataConfig
        ``sample_rate``, ``segment_seconds``, ``random_crop``, ``silence_db``, ``max_retries``,
        ``speed_range`` and ``short_clips`` are used (see the module docstring).
    """

    def __init__(self, config: DataConfig) -> None:
        self.config = config
        self.sample_rate = config.sample_rate
        self.segment = config.segment_samples

    def _read(self, file: soundfile.SoundFile, start: int, frames: int, sr: int, rate: int | None = None) -> Tensor:
        """Read ``frames`` frames from ``start`` of an open file, downmix and resample to ``rate``
        (default: the dataset's rate): Tensor[1, T']."""
        try:
            file.seek(start)
            data = file.read(frames, dtype="float32", always_2d=True)
        except (RuntimeError, TypeError, ValueError, soundfile.SoundFileError) as err:
            raise BadAudioFile(f"cannot decode ({err})") from None
        if data.shape[0] == 0:
            raise BadAudioFile("no samples could be read")
        if not np.isfinite(data).all():
            raise BadAudioFile("contains NaN or Inf samples")
        mono = torch.from_numpy(np.ascontiguousarray(data.mean(axis=1, dtype=np.float32)))[None]
        return resample(mono, sr, rate or self.sample_rate)

    def _rate(self, gen: torch.Generator) -> int:
        """The resampling rate for this item: the dataset's rate divided by its speed factor."""
        if self.config.speed_range is None or not self.config.random_crop:
            return self.sample_rate
        low, high = self.config.speed_range
        factor = low + (high - low) * float(torch.rand((), generator=gen, dtype=torch.float64))
        return max(10, int(round(self.sample_rate / factor / 10.0)) * 10)

    def _fit(self, audio: Tensor, gen: torch.Generator) -> Tensor:
        """Crop ``Tensor[1, L]`` to ``Tensor[1, T]``, or zero-pad it, placed as ``short_clips`` says."""
        spare = self.segment - audio.shape[-1]
        if spare <= 0:
            return audio[:, : self.segment].contiguous()
        before = int(torch.randint(spare + 1, (1,), generator=gen)) if self.config.short_clips == "random" else 0
        return torch.nn.functional.pad(audio, (before, spare - before))

    def segment_of(self, source: str | bytes, gen: torch.Generator) -> Tensor:
        """One segment (crop, padding, silence guard, speed as configured) of an audio file given
        by its path or by its encoded bytes (e.g. read from a shard): Tensor[1, T].

        Raises :class:`BadAudioFile` when the audio cannot be used."""
        try:  # opened once per item (bytes are read through Python callbacks: each open costs)
            file = soundfile.SoundFile(io.BytesIO(source) if isinstance(source, bytes) else source)
        except (RuntimeError, TypeError, ValueError, soundfile.SoundFileError) as err:
            raise BadAudioFile(f"cannot decode ({err})") from None
        with file:
            return self._segment_in(file, gen)

    def _segment_in(self, source: soundfile.SoundFile, gen: torch.Generator) -> Tensor:
        sr, total = int(source.samplerate), int(source.frames)
        if total <= 0:
            raise BadAudioFile("empty (zero frames)")
        rate = self._rate(gen)
        need = math.ceil(self.segment * sr / rate)  # source frames for one segment
        if total <= need:  # short clip: the whole file, padded
            audio = self._fit(self._read(source, 0, total, sr, rate), gen)
            if rms_db(audio) < self.config.silence_db:
                raise BadAudioFile(f"all silent (below {self.config.silence_db:g} dBFS)")
            return audio
        tries = 1 + (self.config.max_retries if self.config.random_crop else 0)
        for _ in range(tries):
            start = int(torch.randint(total - need + 1, (1,), generator=gen)) if self.config.random_crop else 0
            audio = self._fit(self._read(source, start, need, sr, rate), gen)
            if rms_db(audio) >= self.config.silence_db:
                return audio
        return self._loudest(source, total, sr, gen)

    def _loudest(self, source: soundfile.SoundFile, total: int, sr: int, gen: torch.Generator) -> Tensor:
        """The loudest segment of the whole file (first of equals): Tensor[1, T]."""
        audio = self._read(source, 0, total, sr)
        power = torch.cat([torch.zeros(1, dtype=torch.float64), audio[0].double().pow(2).cumsum(0)])
        windows = power[self.segment :] - power[: -self.segment]
        start = int(torch.argmax(windows)) if windows.numel() else 0
        best = self._fit(audio[:, start:], gen)
        if rms_db(best) < self.config.silence_db:
            raise BadAudioFile(f"all silent (no segment above {self.config.silence_db:g} dBFS)")
        return best


class ClipDataset(SegmentReader, torch.utils.data.Dataset):
    """Fixed-length mono segments of the records' audio files.

    Parameters
    ----------
    records : sequence of ClipRecord
    config : DataConfig
        What is read and how (checked by the config itself): ``sample_rate`` (files are resampled
        with soxr), ``segment_seconds`` (``T = round(segment_seconds * sample_rate)``),
        ``random_crop`` (True for training: a random segment; False for validation: the segment
        at the file start), ``silence_db`` and ``max_retries`` (the silence guard),
        ``speed_range`` (training only) and ``short_clips`` (see the module docstring). The
        batch and manifest fields are not used here.
    seed : int
    max_bad_records : int
        Bad records in a row after which ``__getitem__`` raises :class:`BadDataError`.
    draw_captions : bool
        Draw each item's caption from its record's phrasings (training); False: always the
        record's ``caption`` (validation).
    """

    def __init__(self, records: Sequence[ClipRecord], config: DataConfig, *, seed: int = 0,
                 max_bad_records: int = 20, draw_captions: bool = True) -> None:
        if len(records) == 0:
            raise ValueError("ClipDataset needs at least one record; check the manifests")
        if max_bad_records < 1:
            raise ValueError(f"max_bad_records must be >= 1, got {max_bad_records!r}")
        super().__init__(config)
        self.records = list(records)
        self.seed = int(seed)
        self.max_bad_records = int(max_bad_records)
        self.draw_captions = bool(draw_captions)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose crops (and replacement draws) ``__getitem__`` returns."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> Clip:
        n = len(self.records)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for a dataset of {n} records")
        i %= n
        gen = torch.Generator().manual_seed(item_seed(self.seed, self.epoch, i))
        bad: list[str] = []
        index = i
        while True:
            record = self.records[index]
            try:
                audio = self._segment(record, gen)
            except BadAudioFile as err:
                path = str(record.path)
                bad.append(path)
                if path not in _WARNED:
                    _WARNED.add(path)
                    warnings.warn(f"skipping training file {path}: {err}", RuntimeWarning, stacklevel=2)
                if len(bad) >= self.max_bad_records:
                    raise BadDataError(
                        f"{len(bad)} bad audio files in a row while loading item {i} (last: {path}: {err}); "
                        "check the manifests and the audio files (see the warnings above)"
                    ) from None
                if n > 1:  # another record, drawn uniformly from the others
                    other = int(torch.randint(n - 1, (1,), generator=gen))
                    index = other + (other >= index)
                continue
            caption = (draw_caption(record.caption, record.captions, self.seed, self.epoch, i) if self.draw_captions
                       else record.caption)
            return Clip(audio=audio, caption=caption, labels=record.labels, index=index, bad_files=tuple(bad),
                        phrasings=record.captions)

    def _segment(self, record: ClipRecord, gen: torch.Generator) -> Tensor:
        if not record.path.is_file():
            raise BadAudioFile("file not found")
        return self.segment_of(str(record.path), gen)
