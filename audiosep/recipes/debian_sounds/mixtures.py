"""The validation benchmark: seeded two-source mixtures of held-out clips at 0 dB SNR.

For mixture ``k`` two validation clips of two different classes are drawn, a ``seconds``-long
segment is cut from each (the loudest of a few seeded candidate offsets; shorter clips are
zero-padded at a seeded position), source ``b`` is scaled to the RMS of source ``a`` (0 dB SNR),
and both are scaled together so the mixture peaks at 0.9 at most. Written as a custom benchmark:
``mixtures/<k>.wav``, ``sources/<k>_a.wav``, ``sources/<k>_b.wav``, and

* ``benchmark.csv`` -- columns ``mixture,source,query,other_source,class,group``, two rows per
  mixture, each source queried with its class's primary caption (``group`` repeats the class:
  ``audiosep-bench run custom`` reports a per-class table from the ``class`` column);
* ``benchmark_paraphrased.csv`` -- the same rows queried with held-out paraphrases.

Paths in the CSVs are relative to the CSV's folder. Classes with less than
``min_class_seconds`` of validation audio are left out (a 0.6 s clip reused in dozens of
mixtures would dominate the scores of its class).
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .labels import CLASS_BY_NAME

COLUMNS = ("mixture", "source", "query", "other_source", "class", "group")


@dataclass(frozen=True)
class MixtureConfig:
    """Options of ``python -m audiosep.recipes.debian_sounds benchmark``."""

    data: Path
    out: Path
    count: int = 300
    seconds: float = 5.0
    sample_rate: int = 32000
    seed: int = 0
    candidates: int = 8
    peak: float = 0.9
    min_class_seconds: float = 5.0


def _segment(x: np.ndarray, length: int, rng: np.random.Generator, candidates: int) -> np.ndarray:
    """A ``length``-sample piece of ``x: float[L]``: the loudest of a few random windows, or
    ``x`` zero-padded at a random offset when it is shorter."""
    if len(x) <= length:
        out = np.zeros(length, dtype=np.float32)
        start = int(rng.integers(0, length - len(x) + 1))
        out[start: start + len(x)] = x
        return out
    starts = rng.integers(0, len(x) - length + 1, size=candidates)
    energies = [float(np.sum(x[s: s + length] ** 2)) for s in starts]
    s = int(starts[int(np.argmax(energies))])
    return x[s: s + length].astype(np.float32)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def mix_pair(a: np.ndarray, b: np.ndarray, peak: float = 0.9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale ``b`` to the RMS of ``a`` (0 dB SNR) and both so the mixture peaks at ``peak`` at most.

    Parameters
    ----------
    a, b : float32[L]

    Returns
    -------
    mixture, a, b : float32[L]
        ``mixture == a + b``.
    """
    ra, rb = _rms(a), _rms(b)
    if ra == 0 or rb == 0:
        raise ValueError("cannot energy-match a silent source; pick non-silent segments")
    b = b * (ra / rb)
    m = a + b
    g = min(1.0, peak / max(float(np.max(np.abs(m))), 1e-9))
    return (m * g).astype(np.float32), (a * g).astype(np.float32), (b * g).astype(np.float32)


def _load_val(data: Path, min_seconds: float) -> dict[str, list[Path]]:
    """Validation clips per class, for classes with at least ``min_seconds`` of audio."""
    doc = json.loads((data / "val.json").read_text())
    by_class: dict[str, list[Path]] = {}
    for item in doc["data"]:
        by_class.setdefault(item["labels"][0], []).append(data / item["wav"])
    return {c: paths for c, paths in by_class.items()
            if sum(sf.info(str(p)).duration for p in paths) >= min_seconds}


def build_benchmark(cfg: MixtureConfig) -> Path:
    """Write the benchmark into ``cfg.out``; return the path of ``benchmark.csv``.

    Raises
    ------
    ValueError
        If the validation split has fewer than two classes.
    """
    by_class = _load_val(cfg.data, cfg.min_class_seconds)
    classes = sorted(by_class)
    if len(classes) < 2:
        raise ValueError(
            f"{cfg.data}/val.json holds {len(classes)} class(es) with >= {cfg.min_class_seconds} s of audio; "
            "two-source mixtures need two (lower min_class_seconds or build with a larger val_fraction)")
    rng = np.random.default_rng(cfg.seed)
    length = int(round(cfg.seconds * cfg.sample_rate))
    (cfg.out / "mixtures").mkdir(parents=True, exist_ok=True)
    (cfg.out / "sources").mkdir(parents=True, exist_ok=True)
    rows, para_rows = [], []
    k = 0
    while k < cfg.count:
        ca, cb = rng.choice(len(classes), size=2, replace=False)
        ca, cb = classes[int(ca)], classes[int(cb)]
        pa = by_class[ca][int(rng.integers(len(by_class[ca])))]
        pb = by_class[cb][int(rng.integers(len(by_class[cb])))]
        xa = sf.read(pa, dtype="float32", always_2d=True)[0].mean(axis=1)
        xb = sf.read(pb, dtype="float32", always_2d=True)[0].mean(axis=1)
        a, b = _segment(xa, length, rng, cfg.candidates), _segment(xb, length, rng, cfg.candidates)
        if _rms(a) < 1e-4 or _rms(b) < 1e-4:
            continue  # a silent stretch; draw again
        m, a, b = mix_pair(a, b, cfg.peak)
        name = f"{k:04d}"
        files = {"m": f"mixtures/{name}.wav", "a": f"sources/{name}_a.wav", "b": f"sources/{name}_b.wav"}
        sf.write(cfg.out / files["m"], m, cfg.sample_rate, subtype="FLOAT")
        sf.write(cfg.out / files["a"], a, cfg.sample_rate, subtype="FLOAT")
        sf.write(cfg.out / files["b"], b, cfg.sample_rate, subtype="FLOAT")
        for src, other, label in (("a", "b", ca), ("b", "a", cb)):
            spec = CLASS_BY_NAME[label]
            rows.append([files["m"], files[src], spec.captions[0], files[other], label, label])
            para = spec.heldout[k % len(spec.heldout)]
            para_rows.append([files["m"], files[src], para, files[other], label, label])
        k += 1
    for fname, data in (("benchmark.csv", rows), ("benchmark_paraphrased.csv", para_rows)):
        with (cfg.out / fname).open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(COLUMNS)
            w.writerows(data)
    return cfg.out / "benchmark.csv"
