"""``audiosep-bench``: the reference evaluation protocols over one runner.

>>> from audiosep.bench import BENCHMARKS, run_benchmark
>>> sorted(BENCHMARKS)[:3]
['audiocaps', 'audiocaps-labels', 'audioset']
"""
from __future__ import annotations

from .errors import BenchmarkDataError, BenchmarkError, MetadataError
from .report import markdown_table, report
from .runner import BenchmarkPlan, default_data_root, prepare_benchmark, run_benchmark
from .specs import BENCHMARKS, BenchmarkSpec, get_spec

__all__ = [
    "BENCHMARKS",
    "BenchmarkPlan",
    "BenchmarkSpec",
    "BenchmarkError",
    "BenchmarkDataError",
    "MetadataError",
    "default_data_root",
    "get_spec",
    "markdown_table",
    "prepare_benchmark",
    "report",
    "run_benchmark",
]
