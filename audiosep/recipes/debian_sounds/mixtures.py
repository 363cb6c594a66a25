"""The recipe's benchmarks: seeded two-source mixtures of unseen clips at 0 dB SNR.

For mixture ``k`` two clips of two different classes are drawn, a ``seconds``-long segment is
cut from each (the loudest of a few seeded candidate offsets; shorter clips are zero-padded at a
seeded position), source ``b`` is scaled to the RMS of source ``a`` (0 dB SNR), and both are
scaled together so the mixture peaks at 0.9 at most. Written as custom benchmarks (columns
``mixture,source,query,other_source,class,group``; ``group`` repeats the class, and
``audiosep-bench run custom`` reports a per-class table from the ``class`` column), three lists
that measure three kinds of generalisation:

* ``benchmark_train_captions.csv`` -- ``count`` mixtures of validation clips (``val.json``),
  ``mixtures/<k>.wav``, ``sources/<k>_a.wav``, ``sources/<k>_b.wav``, two rows per mixture,
  each source queried with its class's primary training caption: unseen clips, known wording;
* ``benchmark_heldout_phrasings.csv`` -- the same rows queried with held-out phrasings (never a
  training caption; :func:`heldout_phrasings`): unseen wording;
* ``benchmark_heldout_packages.csv`` -- ``heldout_count`` mixtures whose source ``a`` is a clip
  of a held-out package (``heldout.json``, see ``split.hold_out_packages``) and whose source ``b``
  is a held-out clip of another class when there is one, else a validation clip;
  ``mixtures/heldout_<k>.wav`` and ``sources/heldout_<k>_{a,b}.wav``. Only held-out sources
  are queried (with the primary caption): recordings from sources training never saw. Left out,
  with a note, when the dataset has no held-out clips.

``benchmark.csv`` and ``benchmark_paraphrased.csv`` are copies of the first two lists (the names
earlier versions wrote). Paths in the CSVs are relative to the CSV's folder. Classes with less
than ``min_class_seconds`` of audio in a pool are left out of it (a 0.6 s clip reused in dozens
of mixtures would dominate the scores of its class).
"""
from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import soundfile as sf

from ...errors import UsageError
from ...files import atomic_path
from .labels import CLASS_BY_NAME
from .phrasings import heldout_phrasings

COLUMNS = ("mixture", "source", "query", "other_source", "class", "group")
TRAIN_CAPTIONS, HELDOUT_PHRASINGS, HELDOUT_PACKAGES = (
    "benchmark_train_captions.csv", "benchmark_heldout_phrasings.csv", "benchmark_heldout_packages.csv")
#: Names earlier versions wrote, kept as copies: (alias, the list it copies).
ALIASES = (("benchmark.csv", TRAIN_CAPTIONS), ("benchmark_paraphrased.csv", HELDOUT_PHRASINGS))


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
    heldout_count: int = 300
    overwrite: bool = False


def training_query(label: str) -> str:
    """The query of a class in the training-caption lists: its primary training caption."""
    return CLASS_BY_NAME[label].captions[0]


def _cycle(phrasings_of: Callable[[str], tuple[str, ...]]) -> Callable[[str, int], str]:
    """The query of mixture ``k`` for a class: its phrasings in turn (each class's list made once)."""
    made: dict[str, tuple[str, ...]] = {}

    def query(label: str, k: int) -> str:
        options = made.setdefault(label, phrasings_of(label))
        return options[k % len(options)]

    return query


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


def _load_split(data: Path, manifest: str, min_seconds: float) -> dict[str, list[Path]]:
    """Clips per class of one manifest (empty when the file is missing), for classes with at
    least ``min_seconds`` of audio."""
    path = data / manifest
    if not path.is_file():
        return {}
    by_class: dict[str, list[Path]] = {}
    for item in json.loads(path.read_text())["data"]:
        by_class.setdefault(item["labels"][0], []).append(data / item["wav"])
    return {c: paths for c, paths in by_class.items()
            if sum(sf.info(str(p)).duration for p in paths) >= min_seconds}


@dataclass(frozen=True)
class _Mixture:
    files: dict[str, str]  # "m", "a", "b" -> path relative to the benchmark folder
    classes: tuple[str, str]
    held_out: tuple[bool, bool]  # whether each source is a held-out-package clip


def _read_mono(path: Path) -> np.ndarray:
    return sf.read(path, dtype="float32", always_2d=True)[0].mean(axis=1)


def _mixtures(cfg: MixtureConfig, rng: np.random.Generator, prefix: str, count: int,
              draw: Callable[[np.random.Generator], tuple[str, Path, bool, str, Path, bool]]) -> list[_Mixture]:
    """``count`` mixtures written as ``mixtures/<prefix><k>.wav`` and ``sources/<prefix><k>_{a,b}.wav``;
    ``draw(rng)`` gives (class, path, held out?) of source a, then of source b."""
    length = int(round(cfg.seconds * cfg.sample_rate))
    out: list[_Mixture] = []
    while len(out) < count:
        ca, pa, ha, cb, pb, hb = draw(rng)
        a = _segment(_read_mono(pa), length, rng, cfg.candidates)
        b = _segment(_read_mono(pb), length, rng, cfg.candidates)
        if _rms(a) < 1e-4 or _rms(b) < 1e-4:
            continue  # a silent stretch; draw again
        m, a, b = mix_pair(a, b, cfg.peak)
        name = f"{prefix}{len(out):04d}"
        files = {"m": f"mixtures/{name}.wav", "a": f"sources/{name}_a.wav", "b": f"sources/{name}_b.wav"}
        for key, x in (("m", m), ("a", a), ("b", b)):
            sf.write(cfg.out / files[key], x, cfg.sample_rate, subtype="FLOAT")
        out.append(_Mixture(files, (ca, cb), (ha, hb)))
    return out


def _pick(pool: dict[str, list[Path]], classes: list[str], rng: np.random.Generator) -> tuple[str, Path]:
    label = classes[int(rng.integers(len(classes)))]
    return label, pool[label][int(rng.integers(len(pool[label])))]


def _rows(mixtures: list[_Mixture], query: Callable[[str, int], str], only_held_out: bool = False) -> list[list[str]]:
    rows = []
    for k, mix in enumerate(mixtures):
        for i, (src, other) in enumerate((("a", "b"), ("b", "a"))):
            if only_held_out and not mix.held_out[i]:
                continue
            label = mix.classes[i]
            rows.append([mix.files["m"], mix.files[src], query(label, k), mix.files[other], label, label])
    return rows


def _write_csv(path: Path, rows: list[list[str]]) -> None:
    with atomic_path(path) as tmp:
        with tmp.open("w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(COLUMNS)
            w.writerows(rows)


def build_benchmark(cfg: MixtureConfig) -> Path:
    """Write the benchmark lists into ``cfg.out``; return the path of the training-caption list.

    Raises
    ------
    ValueError
        If the validation split has fewer than two classes.
    UsageError
        If ``cfg.out`` already holds a benchmark and ``cfg.overwrite`` is not set.
    """
    first = cfg.out / TRAIN_CAPTIONS
    if first.exists() and not cfg.overwrite:
        raise UsageError(f"{cfg.out} already holds a benchmark ({TRAIN_CAPTIONS}); choose another --out "
                         "or pass --overwrite")
    val = _load_split(cfg.data, "val.json", cfg.min_class_seconds)
    classes = sorted(val)
    if len(classes) < 2:
        raise ValueError(
            f"{cfg.data}/val.json holds {len(classes)} class(es) with >= {cfg.min_class_seconds} s of audio; "
            "two-source mixtures need two (lower min_class_seconds or build with a larger val_fraction)")
    rng = np.random.default_rng(cfg.seed)
    (cfg.out / "mixtures").mkdir(parents=True, exist_ok=True)
    (cfg.out / "sources").mkdir(parents=True, exist_ok=True)

    def draw_val(rng):
        ia, ib = rng.choice(len(classes), size=2, replace=False)
        ca, cb = classes[int(ia)], classes[int(ib)]
        pa = val[ca][int(rng.integers(len(val[ca])))]
        pb = val[cb][int(rng.integers(len(val[cb])))]
        return ca, pa, False, cb, pb, False

    mixes = _mixtures(cfg, rng, "", cfg.count, draw_val)
    lists = {TRAIN_CAPTIONS: _rows(mixes, lambda label, k: training_query(label)),
             HELDOUT_PHRASINGS: _rows(mixes, _cycle(heldout_phrasings))}

    held = _load_split(cfg.data, "heldout.json", cfg.min_class_seconds)
    if held and cfg.heldout_count > 0:
        hrng = np.random.default_rng([cfg.seed, 1])  # its own stream: the val mixtures do not depend on it
        held_classes = sorted(held)

        def draw_held(rng):
            ca, pa = _pick(held, held_classes, rng)
            others = [c for c in held_classes if c != ca]
            if others:
                cb, pb = _pick(held, others, rng)
                return ca, pa, True, cb, pb, True
            cb, pb = _pick(val, [c for c in classes if c != ca], rng)
            return ca, pa, True, cb, pb, False

        lists[HELDOUT_PACKAGES] = _rows(_mixtures(cfg, hrng, "heldout_", cfg.heldout_count, draw_held),
                                        lambda label, k: training_query(label), only_held_out=True)
    else:
        print(f"no held-out clips in {cfg.data} (heldout.json missing or empty): "
              f"{HELDOUT_PACKAGES} is not written")
        (cfg.out / HELDOUT_PACKAGES).unlink(missing_ok=True)  # a stale list of an earlier build
    for fname, rows in lists.items():
        _write_csv(cfg.out / fname, rows)
    for alias, source in ALIASES:
        with atomic_path(cfg.out / alias) as tmp:
            shutil.copyfile(cfg.out / source, tmp)
    return first
