"""The demo mixture shipped in ``examples/audio/``: two training-pool clips mixed at 0 dB.

``python -m audiosep.recipes.debian_sounds example --data DATA --out examples/audio`` picks the
longest training clip of each of two classes, cuts the loudest ``seconds``-long stretch of each
(seeded, as the validation benchmark does), mixes them at 0 dB SNR and writes

* ``mixture.wav`` -- 16-bit PCM at the dataset's rate;
* ``source_<class>.flac`` -- each source as it is in the mixture (so that a test can score a
  separation of the shipped mixture);
* ``ATTRIBUTION.md`` -- package, version, original path and licence of both clips, from the
  dataset's ``attribution.csv``.

The clips come from the *training* pool on purpose: the shipped demo must not leak validation
recordings, and it shows what the bundled model does on sounds of the kind it was trained on.
"""
from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from .labels import CLASS_BY_NAME
from .mixtures import _segment, mix_pair


@dataclass(frozen=True)
class ExampleConfig:
    """Options of ``python -m audiosep.recipes.debian_sounds example``."""

    data: Path
    out: Path
    classes: tuple[str, str] = ("piano", "rain")
    seconds: float = 6.0
    seed: int = 0
    overwrite: bool = False


def _slug(name: str) -> str:
    return name.replace(" ", "_")


def _longest_clip(data: Path, label: str) -> dict:
    items = [x for x in json.loads((data / "train.json").read_text())["data"] if x["labels"][0] == label]
    if not items:
        known = sorted(CLASS_BY_NAME)
        raise ValueError(f"{data}/train.json has no clip of class {label!r}; pick one of {known}")
    return max(items, key=lambda x: (sf.info(str(data / x["wav"])).duration, x["wav"]))


def _attribution(data: Path, wavs: list[str]) -> list[dict[str, str]]:
    with (data / "attribution.csv").open(newline="", encoding="utf-8") as f:
        rows = {r["file"]: r for r in csv.DictReader(f)}
    missing = [w for w in wavs if w not in rows]
    if missing:
        raise ValueError(f"{data}/attribution.csv lists no licence for {missing}; rebuild the dataset")
    return [rows[w] for w in wavs]


def build_example(cfg: ExampleConfig) -> Path:
    """Write the demo mixture, its sources and their attribution; return the mixture's path.

    Raises
    ------
    FileExistsError
        If ``cfg.out`` already holds a ``mixture.wav`` and ``overwrite`` is false.
    ValueError
        If a class has no training clip, or the two classes are the same.
    """
    a_label, b_label = cfg.classes
    if a_label == b_label:
        raise ValueError(f"the two classes must differ, got {a_label!r} twice")
    mixture_path = cfg.out / "mixture.wav"
    if mixture_path.exists() and not cfg.overwrite:
        raise FileExistsError(f"{mixture_path} exists; pass --overwrite to replace it")
    clips = [_longest_clip(cfg.data, a_label), _longest_clip(cfg.data, b_label)]
    sr = sf.info(str(cfg.data / clips[0]["wav"])).samplerate
    rng = np.random.default_rng(cfg.seed)
    length = int(round(cfg.seconds * sr))
    pieces = []
    for clip in clips:
        x = sf.read(str(cfg.data / clip["wav"]), dtype="float32", always_2d=True)[0].mean(axis=1)
        pieces.append(_segment(x, length, rng, candidates=8))
    mixture, a, b = mix_pair(pieces[0], pieces[1])
    cfg.out.mkdir(parents=True, exist_ok=True)
    sf.write(mixture_path, mixture, sr, subtype="PCM_16")
    for label, audio in ((a_label, a), (b_label, b)):
        sf.write(cfg.out / f"source_{_slug(label)}.flac", audio, sr, subtype="PCM_24")
    rows = _attribution(cfg.data, [c["wav"] for c in clips])
    lines = [
        "# Attribution of the example mixture",
        "",
        f"`mixture.wav` is {cfg.seconds:g} s of two clips of the Debian sounds training pool mixed at 0 dB SNR",
        f"(`python -m audiosep.recipes.debian_sounds example --data DATA --out examples/audio "
        f"--classes {' '.join(repr(c) if ' ' in c else c for c in cfg.classes)} --seconds {cfg.seconds:g} "
        f"--seed {cfg.seed}`). `source_*.flac` are the two sources as they are in the mixture.",
        "",
        "| source | query | Debian package | original file | licence | copyright file |",
        "|---|---|---|---|---|---|",
    ]
    for label, row in zip((a_label, b_label), rows):
        query = CLASS_BY_NAME[label].captions[0]
        lines.append(f"| `source_{_slug(label)}.flac` | \"{query}\" | {row['package']} {row['version']} | "
                     f"{row['original_path']} | {row['licence']} | {row['copyright_file']} |")
    lines += ["", "The files here are redistributed under the licences above; a file made from a share-alike "
              "(CC-BY-SA) clip, the mixture included, is under that licence too. The copyright files are in the "
              "Debian packages named above (`apt-get download PACKAGE`, then `dpkg-deb -x`).", ""]
    (cfg.out / "ATTRIBUTION.md").write_text("\n".join(lines), encoding="utf-8")
    return mixture_path
