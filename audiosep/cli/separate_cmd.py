"""``audiosep separate MIX QUERY [QUERY ...] -o OUT``."""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

from ..errors import UsageError


def add_parser(sub) -> argparse.ArgumentParser:
    from ..pretrained import DEFAULT_MODEL
    from ..separation import DEFAULT_CHUNK_SECONDS

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
        help=f"window length for long files (default {DEFAULT_CHUNK_SECONDS})",
    )
    p.add_argument("--residual", action="store_true", help="also write the mixture minus each target")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    from ..outputs import output_paths, residual_path
    from ..separation import separate

    mix = Path(args.mixture)
    if not mix.exists():
        raise UsageError(f"audio file not found: {mix}; check the path")
    for q in args.queries:
        if not q.strip():
            raise UsageError(f"empty query {q!r}: describe the sound to separate, e.g. \"a dog barking\"")
    if args.chunk_seconds is not None and args.chunk_seconds <= 0:
        raise UsageError(f"--chunk-seconds must be positive, got {args.chunk_seconds}")
    try:
        outputs = output_paths(args.output, args.queries, stem=mix.stem)
    except ValueError as err:
        raise UsageError(str(err)) from None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = separate(
            mix,
            list(args.queries),
            model=args.model,
            device=args.device,
            residual=args.residual,
            chunk_seconds=args.chunk_seconds,
            output=outputs,
            overwrite=args.force,
            progress=not args.quiet and sys.stderr.isatty(),
        )
    for w in caught:
        print(f"audiosep: warning: {w.message}", file=sys.stderr)
    for p in outputs:
        print(os.fspath(p))
        if args.residual:
            print(os.fspath(residual_path(p)))
    del result
    return 0
