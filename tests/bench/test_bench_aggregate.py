"""Aggregation rules against hand-computed values."""
import math

import pytest

from audiosep.bench.aggregate import aggregate, aggregate_values


def test_mean_over_items():
    assert aggregate_values([1.0, 2.0, 9.0, 4.0], [None] * 4, "mean") == pytest.approx(4.0)


def test_median_per_group_then_mean():
    # groups: a -> median(1, 2, 9) = 2; b -> median(4, 6) = 5; mean = 3.5 (plain mean would be 4.4)
    vals, groups = [1.0, 2.0, 9.0, 4.0, 6.0], ["a", "a", "a", "b", "b"]
    assert aggregate_values(vals, groups, "median-then-mean") == pytest.approx(3.5)
    assert aggregate_values(vals, groups, "mean-then-mean") == pytest.approx((4.0 + 5.0) / 2)


def test_nan_groups_are_ignored():
    # group c's median is NaN (one NaN item of one): ignored, as the reference's nan-aware mean does
    vals, groups = [1.0, 3.0, math.nan], ["a", "a", "c"]
    assert aggregate_values(vals, groups, "median-then-mean") == pytest.approx(2.0)
    assert math.isnan(aggregate_values([], [], "median-then-mean"))
    assert math.isnan(aggregate_values([math.nan], ["x"], "mean-then-mean"))


def test_aggregate_rows_skips_absent_metrics():
    rows = [{"group": "x", "sdri": 1.0, "si_sdr": 2.0, "pesq": None}, {"group": "y", "sdri": 3.0, "si_sdr": 4.0}]
    out = aggregate(rows, "mean-then-mean")
    assert out == {"sdri": pytest.approx(2.0), "si_sdr": pytest.approx(3.0)}
