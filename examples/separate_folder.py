"""Separate the same query (or queries) from every audio file in a folder.

    python examples/separate_folder.py recordings/ "a dog barking" --out separated/ --recursive

``recordings/a/b.wav`` gives ``separated/a/b_a-dog-barking.wav`` (one file per query, plus
``b_a-dog-barking_residual.wav`` with ``--residual``): the output folder mirrors the input's.

* Files whose outputs all exist are skipped (so an interrupted batch picks up where it
  stopped); ``--force`` recomputes and overwrites them. A file with only some outputs (cut
  short) is recomputed and its outputs replaced.
* A file that cannot be read or separated is reported and counted; the batch goes on.
* The model is loaded once, before the first file, so a missing model fails at once.

The summary at the end counts files done, skipped and failed (with the reason of each failure);
the exit status is 1 if any file failed.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from audiosep import AudioSep, separate
from audiosep.outputs import output_paths, residual_path

#: Suffixes treated as audio (anything libsndfile reads; others are ignored, not failed).
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff", ".au", ".w64", ".opus")


@dataclass
class BatchSummary:
    """Outcome of a folder run: input files done / skipped, and failures with their reason."""

    done: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    failed: dict[Path, str] = field(default_factory=dict)
    written: list[Path] = field(default_factory=list)

    def format(self) -> str:
        lines = [f"{len(self.done)} done, {len(self.skipped)} skipped (outputs exist; --force redoes them), "
                 f"{len(self.failed)} failed"]
        lines += [f"  failed: {path}: {reason}" for path, reason in self.failed.items()]
        return "\n".join(lines)


def find_audio(folder: Path, recursive: bool, exclude: Path | None = None) -> list[Path]:
    """Audio files in ``folder`` (sorted), leaving out anything under ``exclude``."""
    pattern = "**/*" if recursive else "*"
    exclude = exclude.resolve() if exclude is not None else None
    files = []
    for p in sorted(folder.glob(pattern)):
        if not p.is_file() or p.suffix.lower() not in AUDIO_SUFFIXES:
            continue
        if exclude is not None and exclude in p.resolve().parents:
            continue  # our own outputs, when --out is inside the input folder
        files.append(p)
    return files


def planned_outputs(path: Path, folder: Path, out: Path, queries: list[str], residual: bool) -> list[Path]:
    """Every file separating ``path`` writes: ``out/<relative folder>/<stem>_<query>.wav`` (+ residuals)."""
    target_dir = os.path.join(out / path.parent.relative_to(folder), "")  # trailing "/": always a folder
    targets = output_paths(target_dir, queries, stem=path.stem)
    return targets + ([residual_path(p) for p in targets] if residual else [])


def main(argv: Sequence[str] | None = None) -> BatchSummary:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="folder of audio files")
    parser.add_argument("queries", nargs="+", help="descriptions of the sounds to separate")
    parser.add_argument("--out", default="separated", help="output folder (default: separated/)")
    parser.add_argument("--model", default=None, help="bundle name or saved model folder (default: the library's)")
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--recursive", action="store_true", help="also process sub-folders")
    parser.add_argument("--residual", action="store_true", help="also write mixture minus each target")
    parser.add_argument("--force", action="store_true", help="recompute files whose outputs exist")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    from tqdm.auto import tqdm

    from audiosep.devices import default_device
    from audiosep.pretrained import DEFAULT_MODEL

    folder, out = Path(args.folder), Path(args.out)
    if not folder.is_dir():
        raise SystemExit(f"{folder} is not a folder; pass the folder that holds your recordings")
    files = find_audio(folder, args.recursive, exclude=out)
    model = AudioSep.from_pretrained(args.model or DEFAULT_MODEL, device=args.device or default_device())
    queries = list(args.queries)

    summary = BatchSummary()
    for path in tqdm(files, desc="separating", unit="file", disable=args.quiet):
        targets = planned_outputs(path, folder, out, queries, args.residual)
        if not args.force and all(p.exists() for p in targets):
            summary.skipped.append(path)
            continue
        n = len(queries)
        try:  # one bad file must not stop the batch
            separate(path, queries, model=model, residual=args.residual, output=targets[:n], overwrite=True)
        except Exception as err:  # noqa: BLE001 - reported per file in the summary
            summary.failed[path] = f"{type(err).__name__}: {err}"
            continue
        summary.done.append(path)
        summary.written += targets
    print(summary.format())
    return summary


if __name__ == "__main__":
    sys.exit(1 if main().failed else 0)
