"""The one error family of audiosep.

Every error a user can cause (a bad file, a bad argument, a missing model, a broken config)
derives from :class:`AudiosepError`. Its message names the problem and the fix; command-line
tools print :meth:`AudiosepError.one_line` and exit with :data:`EXIT_USAGE`. Subclasses also
derive from the built-in exception a caller would expect (``ValueError`` for bad values,
``FileNotFoundError`` for missing files), so ``except ValueError`` keeps working.
"""
from __future__ import annotations

__all__ = ["AudiosepError", "UsageError", "EXIT_USAGE", "EXIT_INTERRUPTED", "one_line"]

#: Exit status of a command-line tool for a user error.
EXIT_USAGE = 2
#: Exit status after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines included) folded to one space."""
    return " ".join(str(text).split())


class AudiosepError(Exception):
    """Base class of every error audiosep raises for something the user can fix."""

    def one_line(self) -> str:
        """The problem and the fix on one line (what the command-line tools print)."""
        return one_line(str(self)) or type(self).__name__


class UsageError(AudiosepError, ValueError):
    """A bad argument or option value (e.g. ``--chunk-seconds inf``)."""
