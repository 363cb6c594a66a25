"""Checks of the runner's arguments, made before any model is loaded or any item scored.

Each failed check is one :class:`~audiosep.bench.errors.BenchmarkError` naming the value and the fix.
"""
from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any

from ..files import existing_folder
from .errors import BenchmarkError


def positive_int(value: Any, what: str, fix: str) -> int:
    """``value`` as an int when it is a whole number >= 1 (``True`` and ``2.5`` are not).

    Parameters
    ----------
    value : any
    what : str
        The value's name in the message, e.g. ``"--batch-size"``.
    fix : str
        What to pass instead, e.g. ``"pass 1 or more items per forward pass"``.
    """
    whole = isinstance(value, numbers.Integral) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not whole or value < 1:
        raise BenchmarkError(f"{what} must be a whole number >= 1, got {value!r}; {fix}")
    return int(value)


def sample_rate_of(model: Any) -> int:
    """The model's ``sample_rate``, checked to be a whole number of Hz >= 1."""
    return positive_int(getattr(model, "sample_rate", None), f"the sample rate of {type(model).__name__}",
                        "give the model an integer sample_rate in Hz (e.g. 16000)")


def check_out_dir(path: str | os.PathLike) -> Path:
    """``path`` when a results folder can be made or reused there; else a :class:`BenchmarkError`
    naming the regular file in the way or the folder that cannot be written."""
    path = Path(path)
    parent = existing_folder(path)  # the nearest existing folder (or file)
    if parent.exists() and not parent.is_dir():
        where = "" if parent == path else f" (in the way of {path})"
        raise BenchmarkError(f"results folder {parent} is a file{where}; pass a folder with --out")
    if parent.is_dir() and not os.access(parent, os.W_OK | os.X_OK):
        raise BenchmarkError(f"cannot write results into {parent} (permission denied); pass another --out folder")
    return path
