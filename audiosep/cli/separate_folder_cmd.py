"""``audiosep separate-folder IN OUT QUERY [QUERY ...]``: every audio file of a folder, on one
process or many (``torchrun --nproc_per_node N -m audiosep separate-folder ...``).

Exit status: 0 when every file is done or skipped, :data:`EXIT_SOME_FAILED` (1) when some failed
(see ``OUT/manifest.jsonl``; under torchrun rank 0 alone exits 1, the other ranks 0), 2 for a
usage error, 130 after Ctrl-C and 143 after SIGTERM (files finished are kept; a rerun resumes).
The job itself is :mod:`audiosep.batch`.
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import signal
import sys
import threading
from pathlib import Path
from typing import Iterator

from ..batch import MANIFEST, check_folders, list_inputs, plan_tasks, run_job, summary_line
from ..errors import EXIT_INTERRUPTED, UsageError
from ..files import check_writable
from ..pretrained import DEFAULT_MODEL
from ..separation import DEFAULT_CHUNK_SECONDS
from .separate_cmd import MIN_CHUNK_SECONDS, _check_chunk_seconds

#: Exit status when some files failed (the others are done).
EXIT_SOME_FAILED = 1
#: Exit status after SIGTERM (128 + 15), as torchrun and shells report it.
EXIT_TERMINATED = 143


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "separate-folder",
        help="separate the described sound(s) from every audio file of a folder (resumable, torchrun-ready)",
        description=(
            "Separate each QUERY from every audio file under IN (recursively) or listed by --files-from. "
            "OUT mirrors IN: IN/a/b.wav gives OUT/a/b_<query>.wav. Files whose outputs exist are skipped, "
            "so a rerun resumes. OUT/manifest.jsonl records every file (done, skipped or failed, with the "
            "error). Under torchrun the files are split across the processes (file i to rank i % N). "
            "Exit status 1 if some file failed."
        ),
    )
    p.add_argument("input", metavar="IN", help="folder of audio files (the root of --files-from paths)")
    p.add_argument("output", metavar="OUT", help="output folder (created; not IN or a folder holding IN)")
    p.add_argument("queries", metavar="QUERY", nargs="+", help='description, e.g. "a dog barking"')
    p.add_argument("--files-from", metavar="LIST", default=None,
                   help="text file of input paths relative to IN, one a line (instead of every audio file under IN)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"bundle name or model folder (default {DEFAULT_MODEL})")
    p.add_argument("--device", default=None,
                   help="cuda, mps or cpu (default: the best available; under torchrun cuda:LOCAL_RANK)")
    p.add_argument(
        "--chunk-seconds", type=float, default=DEFAULT_CHUNK_SECONDS,
        help=f"window length for long files, at least {MIN_CHUNK_SECONDS:g} (default {DEFAULT_CHUNK_SECONDS:g})",
    )
    p.add_argument("--residual", action="store_true", help="also write the mixture minus each target")
    p.add_argument("--overwrite", "--force", dest="overwrite", action="store_true",
                   help="separate again files whose outputs exist, replacing them")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


class _Terminated(KeyboardInterrupt):
    """SIGTERM, unwinding like Ctrl-C but reported with its own exit status."""


@contextlib.contextmanager
def _sigterm_as_terminated() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum, frame):
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run(args: argparse.Namespace) -> int:
    """Check the arguments and list the files (nothing heavy yet), load the model, run the job."""
    from ..ranks import Ranks

    queries = list(args.queries)
    for q in queries:
        if not q.strip():
            raise UsageError(f"empty query {q!r}: describe the sound to separate, e.g. \"a dog barking\"")
    _check_chunk_seconds(args.chunk_seconds)
    ranks = Ranks.from_env()
    device = ranks.device(args.device)
    root, out = check_folders(args.input, args.output)
    check_writable(out / MANIFEST)
    rels = list_inputs(root, out=out, files_from=args.files_from)
    tasks = plan_tasks(root, rels, out, queries, args.residual)
    manifest = out / MANIFEST
    with _sigterm_as_terminated():
        try:
            from ..model import AudioSep
            from ..separation import separate

            model = AudioSep.from_pretrained(args.model, device=device).eval()
            ranks.join(device)
            one = functools.partial(separate, model=model, residual=args.residual, chunk_seconds=args.chunk_seconds,
                                    overwrite=True)
            counts = run_job(tasks, queries, one, out, ranks=ranks, overwrite=args.overwrite,
                             progress=not args.quiet and sys.stderr.isatty())
        except KeyboardInterrupt as stop:
            if ranks.is_main:
                what = "stopped by SIGTERM" if isinstance(stop, _Terminated) else "interrupted"
                records = Path(out, ".manifest.rank-*.jsonl") if ranks.distributed else manifest
                print(f"audiosep: {what}; finished files are kept (no partial outputs); rerun the same command "
                      f"to resume (records in {records})", file=sys.stderr)
            return EXIT_TERMINATED if isinstance(stop, _Terminated) else EXIT_INTERRUPTED
        finally:
            ranks.leave()
    if not ranks.is_main:
        return 0  # the job's status is rank 0's, so torchrun names one process, not each, when files failed
    print(summary_line(counts, manifest))
    return EXIT_SOME_FAILED if counts["failed"] else 0
