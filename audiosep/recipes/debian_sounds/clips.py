"""Turning one decoded file into a kept clip: mono, 32 kHz, trimmed, checked, fingerprinted."""
from __future__ import annotations

import hashlib
import io
import re
import shutil
import subprocess
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from .dedupe import HygieneConfig, audio_hash, fingerprint, is_silent, trim_silence


@dataclass
class Clip:
    """A kept clip and where it came from (one row of ``attribution.csv``)."""

    id: str
    label: str
    package: str
    version: str
    origin: str
    group: str
    seconds: float
    file: str  # relative to the dataset folder
    hash: str
    print: np.ndarray = field(repr=False)
    split: str = ""


@dataclass
class Counts:
    """Why files were not kept."""

    reasons: Counter = field(default_factory=Counter)

    def add(self, reason: str, n: int = 1) -> None:
        self.reasons[reason] += n


class WavPackMissing(RuntimeError):
    """WavPack data met without the ``wvunpack`` program."""


def _unwavpack(data: bytes) -> bytes:
    """WAV bytes of WavPack ``data``, decoded by Debian's ``wvunpack`` through temporary files."""
    if shutil.which("wvunpack") is None:
        raise WavPackMissing("WavPack audio needs wvunpack: apt-get install wavpack")
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.wv", Path(tmp) / "out.wav"
        src.write_bytes(data)
        proc = subprocess.run(["wvunpack", "-q", "-y", str(src), "-o", str(dst)], capture_output=True, text=True)
        if proc.returncode != 0 or not dst.is_file():
            raise RuntimeError(f"wvunpack failed: {proc.stderr.strip()[-200:]}")
        return dst.read_bytes()


def decode(data: bytes) -> tuple[np.ndarray, int]:
    """Decode audio bytes (anything libsndfile reads, and WavPack) to ``float32[L]`` mono
    (channels averaged) and the sample rate."""
    if data[:4] == b"wvpk":
        data = _unwavpack(data)
    x, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    return x.mean(axis=1), sr


def to_rate(x: np.ndarray, sr: int, target: int) -> np.ndarray:
    """Resample ``float32[L]`` with soxr (high quality)."""
    if sr == target:
        return x
    import soxr

    return soxr.resample(x, sr, target, quality="HQ").astype(np.float32)


def clip_id(short: str, origin: str) -> str:
    """Stable id from the package tag and the path inside the package."""
    return f"{short}-{hashlib.sha1(origin.encode()).hexdigest()[:12]}"


def slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


class ClipWriter:
    """Checks decoded audio and writes kept clips to ``<out>/audio/<class>/<id>.flac``.

    Exact duplicates (same audio hash as an earlier clip) are counted and skipped here; near
    duplicates are found later over all clips.
    """

    def __init__(self, out: Path, sample_rate: int, max_seconds: float, hygiene: HygieneConfig):
        self.out, self.sr, self.max_seconds, self.hygiene = out, sample_rate, max_seconds, hygiene
        self.clips: list[Clip] = []
        self.counts = Counts()
        self._hashes: dict[str, str] = {}
        self.duplicates: list[tuple[str, str, str, str]] = []  # (package, origin, label, kept clip id)

    def add(self, x: np.ndarray, sr: int, *, label: str, package: str, short: str, version: str,
            origin: str, group: str) -> Clip | None:
        """Process ``x: float32[L]`` at ``sr``; return the kept clip or ``None`` (reason counted)."""
        x = np.nan_to_num(to_rate(x, sr, self.sr))
        x = trim_silence(x, self.sr, self.hygiene.edge_db)[: int(self.max_seconds * self.sr)]
        if len(x) < self.hygiene.min_seconds * self.sr:
            self.counts.add("too short or all silent")
            return None
        if is_silent(x, self.sr, self.hygiene):
            self.counts.add(f"quieter than {self.hygiene.min_rms_db:g} dBFS")
            return None
        digest = audio_hash(x)
        cid = clip_id(short, origin)
        if digest in self._hashes:
            self.counts.add("exact duplicate")
            self.duplicates.append((package, origin, label, self._hashes[digest]))
            return None
        self._hashes[digest] = cid
        rel = Path("audio") / slug(label) / f"{cid}.flac"
        (self.out / rel).parent.mkdir(parents=True, exist_ok=True)
        peak = float(np.max(np.abs(x)))
        sf.write(self.out / rel, x / peak if peak > 1.0 else x, self.sr, subtype="PCM_16")
        clip = Clip(cid, label, package, version, origin, group, len(x) / self.sr, rel.as_posix(), digest,
                    fingerprint(x, self.sr, self.hygiene.fingerprint_seconds))
        self.clips.append(clip)
        return clip
