"""Aggregating per-item scores exactly as the reference evaluation does.

* ``mean``: mean over items (VGGSound, AudioCaps, Clotho, ESC-50, custom).
* ``median-then-mean``: median over each group's items, then mean over groups, ignoring groups
  whose median is NaN or that have no items (AudioSet: 527 classes).
* ``mean-then-mean``: mean over each group's items, then mean over groups, NaN-aware the same
  way (MUSIC: 10 instruments).
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Iterable, Mapping, Sequence

import numpy as np

METRICS = ("sdr", "sdri", "si_sdr", "si_sdri", "pesq", "stoi")


def aggregate_values(values: Sequence[float], groups: Sequence[str | None], rule: str) -> float:
    """One number from per-item ``values`` under ``rule``; NaN if there is nothing to aggregate.

    Parameters
    ----------
    values : sequence of float
    groups : sequence of str or None
        Group of each value (ignored by ``"mean"``).
    rule : {"mean", "median-then-mean", "mean-then-mean"}
    """
    if len(values) != len(groups):
        raise ValueError("values and groups must have the same length")
    if not len(values):
        return math.nan
    if rule == "mean":
        return float(np.mean(np.asarray(values, dtype=np.float64)))
    per_group: dict[str | None, list[float]] = defaultdict(list)
    for v, g in zip(values, groups):
        per_group[g].append(v)
    reduce = np.median if rule == "median-then-mean" else np.mean
    stats = np.array([reduce(np.asarray(v, dtype=np.float64)) for _, v in sorted(per_group.items(), key=lambda kv: str(kv[0]))])
    stats = stats[~np.isnan(stats)]
    return float(stats.mean()) if stats.size else math.nan


def aggregate(rows: Iterable[Mapping[str, object]], rule: str, metrics: Iterable[str] = METRICS) -> dict[str, float]:
    """Aggregate the scored rows (dicts with a ``group`` entry and one entry per metric).

    Metrics absent from every row are left out of the result.
    """
    rows = list(rows)
    groups = [r.get("group") for r in rows]
    out = {}
    for m in metrics:
        present = [(float(r[m]), g) for r, g in zip(rows, groups) if r.get(m) not in (None, "")]
        if present:
            vals, grps = zip(*present)
            out[m] = aggregate_values(list(vals), list(grps), rule)
    return out


def group_count(rows: Iterable[Mapping[str, object]]) -> int:
    """Number of distinct groups among ``rows``."""
    return len({r.get("group") for r in rows})
