"""Clip hygiene: silence and length checks, exact and near-duplicate detection, recording groups.

* **Silence**: a clip whose RMS over the whole clip is below ``min_rms_db`` dBFS (default -50) or
  that is shorter than ``min_seconds`` (default 0.3 s, measured after trimming silent edges)
  is dropped.
* **Exact duplicates**: SHA-1 of the decoded, resampled audio quantised to 16 bits.
* **Near duplicates**: the fingerprint is a coarse log-mel picture of the clip (32 mel bands,
  the clip's first ``fingerprint_seconds`` cut in 16 equal time slices and averaged per slice,
  in dB, floored 50 dB below the loudest cell so that low-level noise does not count),
  mean-removed and L2-normalised. Two clips whose fingerprints have cosine similarity >=
  ``near_threshold`` (default 0.97) and whose durations differ by less than ``duration_ratio``
  (shorter / longer >= 0.9) are near duplicates; only the first (in build order) is kept.
* **Recording groups**: clips of one class with similarity >= ``group_threshold`` (default 0.97,
  i.e. near duplicates of any length) are treated as variants of one recording and kept in the
  same train/val split, on top of the file-name rule in ``labels.recording_key``. Merging is
  limited to one class and to this high threshold because the coarse fingerprints of unrelated
  short sounds chain together at lower ones (at 0.95 most KLettres syllables of all languages
  fell into one group; at 0.90 kicks, toms, engines and basses of different classes did).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

N_MELS = 32
N_SLICES = 16


@dataclass(frozen=True)
class HygieneConfig:
    """Thresholds for :func:`trim_silence`, :func:`is_silent` and near-duplicate search."""

    min_rms_db: float = -50.0
    min_seconds: float = 0.3
    edge_db: float = -60.0
    near_threshold: float = 0.97
    duration_ratio: float = 0.9
    group_threshold: float = 0.97
    fingerprint_seconds: float = 10.0


def rms_db(x: np.ndarray) -> float:
    """RMS level in dBFS of ``x: float[L]`` (``-inf`` for digital silence)."""
    if x.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))
    return 20.0 * np.log10(rms) if rms > 0 else float("-inf")


def trim_silence(x: np.ndarray, sample_rate: int, edge_db: float = -60.0) -> np.ndarray:
    """Cut leading and trailing 10 ms frames whose RMS is below ``edge_db`` dBFS.

    Parameters
    ----------
    x : float[L]

    Returns
    -------
    float[L']
    """
    hop = max(1, sample_rate // 100)
    n = len(x) // hop
    if n == 0:
        return x[:0]
    frames = x[: n * hop].reshape(n, hop)
    level = 10.0 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-20)
    loud = np.nonzero(level >= edge_db)[0]
    if loud.size == 0:
        return x[:0]
    return x[loud[0] * hop: (loud[-1] + 1) * hop]


def is_silent(x: np.ndarray, sample_rate: int, cfg: HygieneConfig) -> bool:
    """True when ``x`` is too quiet or too short to keep (see the module docstring)."""
    return len(x) < cfg.min_seconds * sample_rate or rms_db(x) < cfg.min_rms_db


def audio_hash(x: np.ndarray) -> str:
    """SHA-1 of ``x`` quantised to 16-bit PCM: equal audio gives equal hashes."""
    q = np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2")
    return hashlib.sha1(q.tobytes()).hexdigest()


def _mel_matrix(sample_rate: int, n_fft: int) -> np.ndarray:
    def hz_to_mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    mels = np.linspace(hz_to_mel(30.0), hz_to_mel(sample_rate / 2), N_MELS + 2)
    edges = 700.0 * (10 ** (mels / 2595.0) - 1.0)
    freqs = np.linspace(0, sample_rate / 2, n_fft // 2 + 1)
    fb = np.zeros((N_MELS, freqs.size))
    for i in range(N_MELS):
        lo, mid, hi = edges[i: i + 3]
        up = (freqs - lo) / max(mid - lo, 1e-9)
        down = (hi - freqs) / max(hi - mid, 1e-9)
        fb[i] = np.clip(np.minimum(up, down), 0, None)
    return fb


def fingerprint(x: np.ndarray, sample_rate: int, seconds: float = 10.0) -> np.ndarray:
    """Coarse log-mel fingerprint, unit norm.

    Parameters
    ----------
    x : float[L]

    Returns
    -------
    float32[N_MELS * N_SLICES]
    """
    n_fft = 1024
    x = x[: int(seconds * sample_rate)]
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    hop = n_fft // 2
    n = 1 + (len(x) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n)[:, None]
    spec = np.abs(np.fft.rfft(x[idx] * np.hanning(n_fft), axis=1)) ** 2  # [frames, bins]
    mel = spec @ _mel_matrix(sample_rate, n_fft).T  # [frames, mels]
    slices = np.array_split(np.arange(n), min(N_SLICES, n))
    pooled = np.stack([mel[s].mean(axis=0) for s in slices])
    if pooled.shape[0] < N_SLICES:  # very short clips: repeat the last slice
        pooled = np.concatenate([pooled, np.repeat(pooled[-1:], N_SLICES - pooled.shape[0], 0)])
    db = 10.0 * np.log10(pooled + 1e-12)
    db = np.maximum(db, db.max() - 50.0)
    v = (db - db.mean()).ravel()
    norm = np.linalg.norm(v)
    return (v / norm if norm > 0 else v).astype(np.float32)


def similar_pairs(prints: np.ndarray, threshold: float, block: int = 2048) -> list[tuple[int, int]]:
    """Index pairs ``(i, j)``, ``i < j``, whose fingerprints have cosine similarity >= threshold.

    Parameters
    ----------
    prints : float32[N, D]
        Unit-norm fingerprints.
    """
    pairs: list[tuple[int, int]] = []
    for start in range(0, len(prints), block):
        sims = prints[start: start + block] @ prints.T  # [b, N]
        rows, cols = np.nonzero(sims >= threshold)
        for r, c in zip(rows.tolist(), cols.tolist()):
            i = start + r
            if i < c:
                pairs.append((i, c))
    return pairs


class UnionFind:
    """Disjoint sets over ``0..n-1``; used to merge clips into recording groups."""

    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        ri, rj = self.find(i), self.find(j)
        if ri != rj:
            self.parent[max(ri, rj)] = min(ri, rj)


def near_duplicates(
    prints: np.ndarray, threshold: float, seconds: np.ndarray | None = None, duration_ratio: float = 0.9
) -> dict[int, int]:
    """Clips to drop, each mapped to the earlier kept clip it duplicates.

    Parameters
    ----------
    prints : float32[N, D]
        Unit-norm fingerprints, in build order.
    threshold : float
        Cosine similarity at or above which two clips may be duplicates.
    seconds : float[N], optional
        Durations; when given, a pair is a duplicate only if shorter / longer >= ``duration_ratio``.

    Returns
    -------
    dict
        ``{dropped index: index of the kept clip it duplicates}``.
    """
    drop: dict[int, int] = {}
    for i, j in sorted(similar_pairs(prints, threshold)):
        if i in drop or j in drop:
            continue
        if seconds is not None and min(seconds[i], seconds[j]) < duration_ratio * max(seconds[i], seconds[j]):
            continue
        drop[j] = i
    return drop
