"""``audiosep separate MIX QUERY [QUERY ...] -o OUT``."""
from __future__ import annotations

import argparse
import math
import os
import sys
import warnings

from ..audio.io import check_audio_path
from ..devices import check_device
from ..errors import UsageError, one_line
from ..files import removed_on_error
from ..outputs import check_outputs, output_paths, residual_path
from ..pretrained import DEFAULT_MODEL
from ..separation import DEFAULT_CHUNK_SECONDS, DEFAULT_OVERLAP_SECONDS, separate

#: Shortest window ``--chunk-seconds`` accepts: twice the overlap neighbouring windows share.
MIN_CHUNK_SECONDS = 2 * DEFAULT_OVERLAP_SECONDS


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "separate",
        help="separate the described sound(s) from an audio file",
        description=(
            "Separate each QUERY from MIX. With a folder as OUT (an existing folder, or a path "
            "ending with '/' or without a suffix) files are named <mix>_<query>.wav; with "
            "one query OUT may be a file (.wav, .flac, .ogg)."
        ),
    )
    p.add_argument("mixture", metavar="MIX", help="audio file to separate (wav, flac, ogg, ...)")
    p.add_argument("queries", metavar="QUERY", nargs="+", help='description, e.g. "a dog barking"')
    p.add_argument("-o", "--output", metavar="OUT", required=True, help="output folder or file")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"bundle name or model folder (default {DEFAULT_MODEL})")
    p.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    p.add_argument(
        "--chunk-seconds", type=float, default=DEFAULT_CHUNK_SECONDS,
        help=f"window length for long files, at least {MIN_CHUNK_SECONDS:g} (default {DEFAULT_CHUNK_SECONDS:g})",
    )
    p.add_argument("--residual", action="store_true", help="also write the mixture minus each target")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    """Check every argument and output path (nothing heavy yet), then separate and write."""
    mix = check_audio_path(args.mixture)  # missing, a dangling link, a loop, a folder: one line each
    queries = list(args.queries)
    for q in queries:
        if not q.strip():
            raise UsageError(f"empty query {q!r}: describe the sound to separate, e.g. \"a dog barking\"")
    _check_chunk_seconds(args.chunk_seconds)
    if args.device is not None:
        check_device(args.device)
    outputs = output_paths(args.output, queries, stem=mix.stem)
    check_outputs(outputs, queries, args.residual, args.force, source=mix, force="--force")
    written = [f for p in outputs for f in ([p, residual_path(p)] if args.residual else [p])]
    with warnings.catch_warnings(record=True) as caught, removed_on_error(written):
        warnings.simplefilter("always")
        try:
            separate(
                mix,
                queries,
                model=args.model,
                device=args.device,
                residual=args.residual,
                chunk_seconds=args.chunk_seconds,
                output=outputs,
                overwrite=args.force,
                progress=not args.quiet and sys.stderr.isatty(),
            )
        finally:  # warnings (e.g. a truncated file) matter most when the run then fails
            for w in caught:
                print(f"audiosep: warning: {one_line(str(w.message))}", file=sys.stderr)
    for p in written:
        print(os.fspath(p))
    return 0


def _check_chunk_seconds(seconds: float) -> None:
    """A finite window of at least :data:`MIN_CHUNK_SECONDS` (inf, nan and 1e-9 are refused)."""
    if not (math.isfinite(seconds) and seconds >= MIN_CHUNK_SECONDS):
        raise UsageError(
            f"--chunk-seconds must be a finite number of seconds >= {MIN_CHUNK_SECONDS:g} (windows "
            f"overlap by {DEFAULT_OVERLAP_SECONDS:g} s), got {seconds:g}; e.g. --chunk-seconds 10"
        )
