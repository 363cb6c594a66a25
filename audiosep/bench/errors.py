"""Errors of the benchmark runner; each message names the problem and the fix."""
from __future__ import annotations

from ..errors import AudiosepError


class BenchmarkError(AudiosepError, RuntimeError):
    """A benchmark cannot run: unknown name, missing data or metadata, an incompatible output folder."""


class BenchmarkDataError(BenchmarkError, FileNotFoundError):
    """The benchmark's audio or item list is not where it should be."""


class MetadataError(BenchmarkError):
    """The item list (metadata CSV) cannot be found, downloaded or read."""
