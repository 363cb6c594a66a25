"""Aggregating per-item scores exactly as the reference evaluation does.

* ``mean``: mean over items (VGGSound, AudioCaps, Clotho, ESC-50, custom).
* ``median-then-mean``: median over each group's items, then mean over groups, ignoring groups
  whose median is NaN or that have no items (AudioSet: 527 classes).
* ``mean-then-mean``: mean over each group's items, then mean over groups, NaN-aware the same
  way (MUSIC: 10 instruments).

Beside the protocol's scores, custom item lists get :func:`query_swap` (is the estimate closer to
its own source than to the mixture's other one?) and :func:`per_class` (means per class).
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


def _mean(values: Iterable[float | None]) -> float:
    vals = [float(v) for v in values if v is not None]
    return float(np.mean(np.asarray(vals, dtype=np.float64))) if vals else math.nan


def query_swap(rows: Iterable[Mapping[str, object]],
               mixture_of: Mapping[str, str] | None = None) -> dict[str, object] | None:
    """The query-swap check over the scored rows that carry ``own_closer``; None if none does.

    An item passes when its estimate is closer (SDR) to its own source than to the mixture's
    other source: ``sdr > sdr_other``.

    Parameters
    ----------
    rows : iterable of mapping
        Parsed rows (``key``, ``sdr``, ``sdr_other``, ``own_closer``).
    mixture_of : mapping, optional
        Item key -> mixture id; adds the share of mixtures all of whose queries pass.

    Returns
    -------
    dict or None
        ``own_closer`` (fraction of items passing), ``n``, mean ``sdr_other`` and mean ``margin``
        (``sdr - sdr_other``, dB); with ``mixture_of`` also ``mixtures`` (those queried at least
        twice) and ``mixtures_all_own_closer`` (fraction of them where every query passes).
    """
    rows = [r for r in rows if r.get("own_closer") is not None]
    if not rows:
        return None
    out: dict[str, object] = {
        "own_closer": float(np.mean([bool(r["own_closer"]) for r in rows])),
        "n": len(rows),
        "sdr_other": _mean(r.get("sdr_other") for r in rows),
        "margin": _mean(float(r["sdr"]) - float(r["sdr_other"]) for r in rows
                        if r.get("sdr") is not None and r.get("sdr_other") is not None),
    }
    if mixture_of is not None:
        per_mixture: dict[str, list[bool]] = defaultdict(list)
        for r in rows:
            per_mixture[mixture_of[str(r["key"])]].append(bool(r["own_closer"]))
        queried = [flags for flags in per_mixture.values() if len(flags) >= 2]
        out["mixtures"] = len(queried)
        out["mixtures_all_own_closer"] = float(np.mean([all(f) for f in queried])) if queried else math.nan
    return out


def per_class(rows: Iterable[Mapping[str, object]], class_of: Mapping[str, str | None]) -> list[dict[str, object]]:
    """Per-class means of the scored rows, sorted by class name (items without a class left out).

    Parameters
    ----------
    rows : iterable of mapping
        Parsed rows (``key``, ``sdri``, ``si_sdr`` and, when present, ``own_closer``).
    class_of : mapping
        Item key -> class name (or None).

    Returns
    -------
    list of dict
        ``{"class", "n", "sdri", "si_sdr", "si_sdri", "own_closer"}``: item count, mean SDRi,
        SI-SDR and SI-SDRi (dB),
        fraction of items passing the query-swap check (None when the rows do not carry it).
    """
    by_class: dict[str, list[Mapping[str, object]]] = defaultdict(list)
    for r in rows:
        label = class_of.get(str(r["key"]))
        if label:
            by_class[label].append(r)
    table = []
    for label in sorted(by_class):
        members = by_class[label]
        flags = [bool(r["own_closer"]) for r in members if r.get("own_closer") is not None]
        table.append({"class": label, "n": len(members), "sdri": _mean(r.get("sdri") for r in members),
                      "si_sdr": _mean(r.get("si_sdr") for r in members),
                      "si_sdri": _mean(r.get("si_sdri") for r in members),
                      "own_closer": float(np.mean(flags)) if flags else None})
    return table
