"""Entry point of the ``audiosep`` command: parse and dispatch (errors: :mod:`audiosep.cli.runner`)."""
from __future__ import annotations

import argparse
import contextlib
import signal
import threading
from typing import Iterator, Sequence

from ..pretrained import DEFAULT_MODEL, bundle_dir, get_bundle, list_models, shipped_files
from . import separate_cmd, separate_folder_cmd
from .runner import OneLineParser, run_command


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="audiosep", description="Separate the sound you describe from a recording."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    separate_cmd.add_parser(sub)
    separate_folder_cmd.add_parser(sub)
    models = sub.add_parser("models", help="list the pretrained models")
    models.add_argument("--files", metavar="NAME", help="list NAME's files: URL, sha256 and cache path")
    models.set_defaults(func=_models)
    return parser


def _models(args: argparse.Namespace) -> int:
    if args.files:
        bundle = get_bundle(args.files)
        shipped = shipped_files(bundle) or {}
        folder = bundle_dir(bundle.name)
        for f in bundle.files:
            url = f.url or "none: ships inside the audiosep package (audiosep/weights/)"
            path = shipped.get(f.filename, folder / f.filename)
            print(f"{f.filename}\n  url    {url}\n  sha256 {f.sha256 or 'not pinned'}\n  path   {path}")
        return 0
    for name, description in list_models().items():
        print(f"{name}{' (default)' if name == DEFAULT_MODEL else ''}\t{description}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 success, 2 user error, 130 interrupted by Ctrl-C
    or SIGTERM, after removing what the run had written; ``separate-folder`` also returns 1 when
    some files failed and 143 after SIGTERM, see :mod:`audiosep.cli.separate_folder_cmd`)."""
    args = build_parser().parse_args(argv)  # one line and exit 2 on bad arguments
    with _sigterm_as_interrupt():
        return run_command("audiosep", lambda: args.func(args))


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (``kill``, ``timeout``, ``docker stop``) unwinds like Ctrl-C, so the same clean-up
    runs; the previous handler is put back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
