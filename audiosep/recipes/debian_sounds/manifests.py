"""Writing the dataset's manifests, class table, attribution list and README."""
from __future__ import annotations

import csv
import hashlib
import json
from collections import defaultdict
from pathlib import Path

from .balance import balanced  # noqa: F401  (train_balanced.json; re-exported for old imports)
from .clips import Clip
from .labels import CLASS_BY_NAME
from .licences import licence_for, summary
from .phrasings import heldout_phrasings, training_phrasings


#: Classes whose training clips also go to ``ambience.json``: continuous backgrounds that real
#: recordings have under the sound a user asks for (``mixing.ambience_manifests``).
AMBIENCE_CLASSES = ("rain", "wind", "water", "insects", "crowd", "car", "fire", "bird")


def caption_for(clip: Clip) -> str:
    """One of the class's three captions of :mod:`.labels` (its first training phrasings), chosen
    by the clip id (deterministic): the query of validation and of readers that ignore ``captions``,
    the same as version 1 of the recipe wrote."""
    captions = CLASS_BY_NAME[clip.label].captions
    return captions[int(hashlib.sha1(clip.id.encode()).hexdigest(), 16) % len(captions)]


def write_manifest(path: Path, clips: list[Clip]) -> None:
    """``{"data": [{"wav": rel, "caption": text, "captions": [...], "labels": [class], "package": name}]}``
    (audiosep/train/manifest.py): ``captions`` holds every training phrasing of the class
    (:func:`.phrasings.training_phrasings`; training draws one per item), ``caption`` one of them
    (:func:`caption_for`), ``package`` the Debian package the clip comes from."""
    phrased = {name: list(training_phrasings(name)) for name in {c.label for c in clips}}
    data = [{"wav": c.file, "caption": caption_for(c), "captions": phrased[c.label], "labels": [c.label],
             "package": c.package} for c in clips]
    path.write_text(json.dumps({"data": data}, indent=1) + "\n")


def class_table(clips: list[Clip]) -> dict[str, dict]:
    """Per class: captions, held-out paraphrases, all training and held-out phrasings, minutes
    and clip counts per split."""
    table: dict[str, dict] = {}
    for name in sorted({c.label for c in clips}):
        spec = CLASS_BY_NAME[name]
        own = [c for c in clips if c.label == name]
        row = {"captions": list(spec.captions), "heldout_paraphrases": list(spec.heldout),
               "phrasings": list(training_phrasings(name)), "heldout_phrasings": list(heldout_phrasings(name))}
        for split in ("train", "val", "heldout"):
            part = [c for c in own if c.split == split]
            row[f"minutes_{split}"] = round(sum(c.seconds for c in part) / 60.0, 2)
            row[f"clips_{split}"] = len(part)
        row["packages"] = sorted({c.package for c in own})
        table[name] = row
    return table


def write_attribution(path: Path, clips: list[Clip], copyrights: dict[str, str]) -> None:
    """``attribution.csv``: one row per clip; ``copyrights`` maps a package to its copyright text."""
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "file", "class", "split", "group", "package", "version", "original_path", "licence",
                    "package_licences", "copyright_file"])
        for c in clips:
            w.writerow([c.id, c.file, c.label, c.split, c.group, c.package, c.version, c.origin,
                        licence_for(copyrights.get(c.package, ""), c.origin), summary(copyrights.get(c.package, "")),
                        f"usr/share/doc/{c.package}/copyright" if c.package != "procedural"
                        else "copyright/procedural"])


def write_duplicates(path: Path, exact: list[tuple[str, str, str, str]], near: list[tuple[Clip, Clip]]) -> None:
    """``duplicates.csv``: every file dropped as a duplicate and the kept clip it duplicates."""
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["kind", "package", "original_path", "class", "kept_id", "kept_original_path"])
        for package, origin, label, kept_id in exact:
            w.writerow(["exact", package, origin, label, kept_id, ""])
        for c, k in near:
            w.writerow(["near", c.package, c.origin, c.label, k.id, k.origin])


def write_readme(path: Path, table: dict[str, dict], stats: dict) -> None:
    lines = [
        "# debian_sounds", "",
        "Built by `python -m audiosep.recipes.debian_sounds build`. 32 kHz mono FLAC clips from Debian",
        "packages; `attribution.csv` names the package, version, original path and licence of every clip,",
        "and `copyright/<package>` holds each package's Debian copyright file.", "",
        f"Classes: {len(table)}. Clips: {stats['clips_train']} train, {stats['clips_val']} val. "
        f"Minutes: {stats['minutes_train']:.1f} train, {stats['minutes_val']:.1f} val.", "",
        f"Held out (`heldout.json`, never trained on): {stats.get('clips_heldout', 0)} clips, "
        f"{stats.get('minutes_heldout', 0.0):.1f} minutes, from the packages "
        f"{', '.join(stats.get('heldout_packages', [])) or '(none)'}.", "",
        "| class | train min | val min | train clips | val clips | packages |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name, row in table.items():
        lines.append(f"| {name} | {row['minutes_train']:.2f} | {row['minutes_val']:.2f} | {row['clips_train']} "
                     f"| {row['clips_val']} | {', '.join(row['packages'])} |")
    lines += ["", "## Dropped files", ""]
    lines += [f"- {reason}: {n}" for reason, n in sorted(stats["dropped"].items())]
    lines += ["", "## Packages", ""]
    lines += [f"- {name} {info}" for name, info in sorted(stats["packages"].items())]
    path.write_text("\n".join(lines) + "\n")


def write_all(out: Path, clips: list[Clip], copyrights: dict[str, str], stats: dict) -> dict[str, dict]:
    """Write ``train.json``, ``train_balanced.json`` (see :func:`balanced`), ``val.json``,
    ``heldout.json`` (the held-out packages' clips, see :func:`split.hold_out_packages`),
    ``ambience.json`` (the training clips of :data:`AMBIENCE_CLASSES`),
    ``classes.json``, ``attribution.csv``, ``stats.json`` and ``README.md`` into ``out``; return
    the class table. ``copyrights`` maps a package to the text
    of its Debian copyright file."""
    clips = sorted(clips, key=lambda c: (c.label, c.id))
    split = defaultdict(list)
    for c in clips:
        split[c.split].append(c)
    write_manifest(out / "train.json", split["train"])
    write_manifest(out / "train_balanced.json", balanced(split["train"]))
    write_manifest(out / "val.json", split["val"])
    write_manifest(out / "heldout.json", split["heldout"])  # held-out packages: never trained on
    write_manifest(out / "ambience.json", [c for c in split["train"] if c.label in AMBIENCE_CLASSES])
    table = class_table(clips)
    (out / "classes.json").write_text(json.dumps(table, indent=1) + "\n")
    write_attribution(out / "attribution.csv", clips, copyrights)
    stats = dict(stats)
    for s in ("train", "val", "heldout"):
        stats[f"clips_{s}"] = len(split[s])
        stats[f"minutes_{s}"] = round(sum(c.seconds for c in split[s]) / 60.0, 2)
    stats["classes"] = len(table)
    (out / "stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    write_readme(out / "README.md", table, stats)
    return table
