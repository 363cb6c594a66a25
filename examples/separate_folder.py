"""Separate the same query (or queries) from every audio file in a folder, in a loop you can adapt.

    python examples/separate_folder.py recordings/ "a dog barking" --out separated/ --recursive

For real jobs use the command, which does the same over many processes or GPUs, resumes, and
records every file in ``separated/manifest.jsonl``::

    audiosep separate-folder recordings/ separated/ "a dog barking"
    torchrun --nproc_per_node 4 -m audiosep separate-folder recordings/ separated/ "a dog barking"

This example is built from the same pieces (:mod:`audiosep.batch`): ``recordings/a/b.wav`` gives
``separated/a/b_a-dog-barking.wav`` (one file per query, plus ``b_a-dog-barking_residual.wav`` with
``--residual``): the output folder mirrors the input's.

* Files whose outputs all exist are skipped (so an interrupted batch picks up where it
  stopped); ``--force`` recomputes and overwrites them. A file with only some outputs (cut
  short) gets the missing ones.
* A file that cannot be read or separated is reported and counted; the batch goes on.
* The model is loaded once, before the first file, so a missing model fails at once.

The summary at the end counts files done, skipped and failed (with the reason of each failure);
the exit status is 1 if any file failed.
"""
from __future__ import annotations

import argparse
import functools
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from audiosep import AudioSep, separate
from audiosep.batch import list_inputs, plan_tasks, separate_task
from audiosep.errors import UsageError


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
    try:
        rels = list_inputs(folder, out=out)  # sorted, recursive, leaving out the output folder
    except UsageError as err:
        raise SystemExit(str(err)) from None
    if not args.recursive:
        rels = [r for r in rels if "/" not in r]
    queries = list(args.queries)
    tasks = plan_tasks(folder, rels, out, queries, args.residual)
    model = AudioSep.from_pretrained(args.model or DEFAULT_MODEL, device=args.device or default_device())
    one = functools.partial(separate, model=model, residual=args.residual, overwrite=True)

    summary = BatchSummary()
    for task in tqdm(tasks, desc="separating", unit="file", disable=args.quiet):
        rec = separate_task(task, queries, one, overwrite=args.force, out=out)  # one bad file does not stop the batch
        if rec["status"] == "failed":
            summary.failed[task.input] = rec["error"]
        elif rec["status"] == "skipped":
            summary.skipped.append(task.input)
        else:
            summary.done.append(task.input)
            summary.written += task.outputs()
    print(summary.format())
    return summary


if __name__ == "__main__":
    sys.exit(1 if main().failed else 0)
