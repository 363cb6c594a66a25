"""One runner for the ``audiosep``, ``audiosep-bench`` and ``audiosep-train`` commands.

Each command parses its arguments and hands a callable to :func:`run_command`, which turns
every user error into one line on stderr (``PROG: error: MESSAGE``) and an exit status:

* 0 on success, or the callable's own return value;
* :data:`~audiosep.errors.EXIT_USAGE` (2) for an :class:`~audiosep.errors.AudiosepError`, a
  ``ValueError`` or an ``OSError`` (a file that cannot be read or written): no traceback;
* :data:`~audiosep.errors.EXIT_INTERRUPTED` (130) after Ctrl-C, with what was kept.

Anything else is a bug and keeps its traceback. :class:`OneLineParser` gives argparse's own
errors (a missing argument, ``--chunk-seconds abc``) the same one-line form.
"""
from __future__ import annotations

import argparse
import sys
from typing import Callable, NoReturn

from ..errors import EXIT_INTERRUPTED, EXIT_USAGE, AudiosepError, one_line

USER_ERRORS: tuple[type[BaseException], ...] = (AudiosepError, ValueError, OSError)


def error_message(err: BaseException) -> str:
    """One line for ``err``: its ``one_line()`` when it has one, else its text or class name."""
    method = getattr(err, "one_line", None)
    text = method() if callable(method) else str(err)
    if isinstance(err, OSError) and not isinstance(err, AudiosepError) and err.filename and err.strerror:
        text = f"{err.strerror}: {err.filename}"
        text += "; check the path and its permissions" if isinstance(err, PermissionError) else ""
    return one_line(text) or type(err).__name__


def run_command(prog: str, action: Callable[[], int | None], *, interrupted: str = "interrupted") -> int:
    """Run ``action()`` and return the command's exit status (see the module docstring).

    ``interrupted`` is printed after Ctrl-C (e.g. "interrupted; rerun to resume").
    """
    from ..nn.fused import keep_freed_memory

    keep_freed_memory()  # reuse freed activations instead of page-faulting new ones
    try:
        return int(action() or 0)
    except USER_ERRORS as err:
        print(f"{prog}: error: {error_message(err)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(f"{prog}: {interrupted}", file=sys.stderr)
        return EXIT_INTERRUPTED


class OneLineParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are one line, ``PROG: error: MESSAGE; see 'PROG
    --help'``, exit :data:`~audiosep.errors.EXIT_USAGE` (argparse prints its usage block first).
    Sub-command parsers made with ``add_subparsers`` inherit it."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)}; see '{self.prog} --help'\n")
