"""Entry point of the ``audiosep`` command: parse, dispatch, turn errors into one line + exit 2."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from . import separate_cmd

EXIT_ERROR = 2


class CLIError(Exception):
    """A user error the CLI reports as ``audiosep: error: <message>`` with exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audiosep", description="Separate the sound you describe from a recording."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    separate_cmd.add_parser(sub)
    models = sub.add_parser("models", help="list the pretrained models")
    models.add_argument("--files", metavar="NAME", help="list NAME's files: URL, sha256 and cache path")
    models.set_defaults(func=_models)
    return parser


def _models(args: argparse.Namespace) -> int:
    from ..pretrained import DEFAULT_MODEL, bundle_dir, get_bundle, list_models, shipped_files

    if args.files:
        bundle = get_bundle(args.files)
        shipped = shipped_files(bundle) or {}
        folder = bundle_dir(bundle.name)
        for f in bundle.files:
            url = f.url or "none: ships with audiosep (checkpoints/ in the source tree)"
            path = shipped.get(f.filename, folder / f.filename)
            print(f"{f.filename}\n  url    {url}\n  sha256 {f.sha256 or 'not pinned'}\n  path   {path}")
        return 0
    for name, description in list_models().items():
        print(f"{name}{' (default)' if name == DEFAULT_MODEL else ''}\t{description}")
    return 0


def _user_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [CLIError, ValueError, OSError]
    try:
        from ..pretrained import PretrainedError

        errors.append(PretrainedError)
    except ImportError:  # pragma: no cover - registry not installed
        pass
    return tuple(errors)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 success, 2 user error)."""
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse itself exits with 2 on bad arguments
    from ..nn.fused import keep_freed_memory

    keep_freed_memory()  # reuse freed activations instead of page-faulting new ones
    try:
        return int(args.func(args) or 0)
    except _user_errors() as err:
        one_line = getattr(err, "one_line", None)
        message = one_line() if callable(one_line) else (str(err) or type(err).__name__)
        message = " ".join(message.split())  # one line, whatever the exception text holds
        print(f"audiosep: error: {message}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("audiosep: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
