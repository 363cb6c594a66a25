"""A benchmark split across the processes of a ``torchrun`` job.

Item ``i`` of the item list is scored by rank ``i % world_size`` (:func:`audiosep.ranks.shard`).
Each rank writes its rows to its own results file ``items.rank-<r>.csv`` beside ``items.csv``
(flushed row by row, like ``items.csv``), and skips the items that ``items.csv`` or its own file
already hold. Rank 0 folds the rank files into ``items.csv`` (:func:`fold_rank_results`) before
the ranks start (what an interrupted run left, whatever its number of processes) and after they
all finish; the summary is then computed from ``items.csv`` in item-list order, exactly as one
process computes it.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterable

from .results import ResultsFile

RANK_PREFIX, RANK_SUFFIX = "items.rank-", ".csv"


def rank_results_path(out_dir: Path, rank: int) -> Path:
    """``out_dir/items.rank-<rank>.csv``."""
    return Path(out_dir) / f"{RANK_PREFIX}{rank}{RANK_SUFFIX}"


def fold_rank_results(out_dir: Path, items_file: str, columns: Iterable[str], required: Iterable[str] = ()) -> int:
    """Append the rows of every ``items.rank-*.csv`` in ``out_dir`` to ``out_dir/items_file`` and
    remove those files; returns the number of rows moved. Rank 0 only, while no rank writes.

    A row appended later replaces an earlier row of the same item when read back, so a row
    folded twice (a fold interrupted before the removal) changes nothing.
    """
    out_dir = Path(out_dir)
    parts = sorted(out_dir.glob(f"{RANK_PREFIX}*{RANK_SUFFIX}"))
    if not parts:
        return 0
    moved = 0
    columns, required = list(columns), tuple(required)
    with ResultsFile(out_dir / items_file, columns, required=required) as merged:
        for part in parts:
            with ResultsFile(part, columns, required=required) as rows:
                for row in rows.rows.values():
                    merged.write(row)
                    moved += 1
    for part in parts:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
    return moved
