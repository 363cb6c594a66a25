"""The one error family of audiosep.

Every error a user can cause (a bad file, a bad argument, a missing model, a broken config)
derives from :class:`AudiosepError`. Its message names the problem and the fix; command-line
tools print :meth:`AudiosepError.one_line` and exit with :data:`EXIT_USAGE`. Subclasses also
derive from the built-in exception a caller would expect (``ValueError`` for bad values,
``FileNotFoundError`` for missing files), so ``except ValueError`` keeps working.
"""
from __future__ import annotations

import difflib
from typing import Any, Iterable

__all__ = ["AudiosepError", "UsageError", "EXIT_USAGE", "EXIT_INTERRUPTED", "one_line", "check_keys"]

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
        """The problem and the fix on one line (what the command-line tools print).

        An error re-raised by a DataLoader worker carries the worker's traceback in its text;
        its one line is the original message.
        """
        text = str(self)
        if "\nOriginal Traceback" in text:
            text = text.rstrip().rsplit("\n", 1)[-1].split(": ", 1)[-1]
        return one_line(text) or type(self).__name__


class UsageError(AudiosepError, ValueError):
    """A bad argument or option value (e.g. ``--chunk-seconds inf``)."""


def check_keys(given: Iterable[Any], known: Iterable[str], where: str = "", *,
               error: type[Exception] = UsageError) -> None:
    """Raise ``error`` when ``given`` (the keys of a config mapping) holds keys not in ``known``.

    The message names the unknown keys with their dotted path, the closest known key and every
    known key, e.g. ``unknown key optim.learnig_rate (did you mean 'lr'?); known keys of optim: ...``.

    Parameters
    ----------
    given, known : iterables of keys
    where : str
        The dotted section the keys belong to (``"optim"``); ``""`` for the top level.
    error : exception class
        Raised with the message (default :class:`UsageError`).
    """
    known = [str(k) for k in known]
    unknown = sorted({str(k) for k in given} - set(known))
    if not unknown:
        return
    names = ", ".join(f"{where}.{k}" if where else k for k in unknown)
    close = difflib.get_close_matches(unknown[0], known, n=1) if len(unknown) == 1 else []
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    scope = f"of {where}" if where else "at the top level"
    raise error(f"unknown key{'s' if len(unknown) > 1 else ''} {names}{hint}; "
                f"known keys {scope}: {', '.join(sorted(known))}")
