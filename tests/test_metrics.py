"""Metrics against the reference evaluator's values on fixed signals."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from audiosep import metrics


@pytest.fixture(scope="module")
def official(fixtures_dir):
    root = fixtures_dir / "official_metrics"
    if not root.is_dir():
        pytest.skip(f"metric fixtures not found at {root}")
    return np.load(root / "signals.npz"), json.loads((root / "expected.json").read_text())


@pytest.mark.parametrize("i", range(8))
def test_scores_match_reference(official, i):
    signals, expected = official
    s, m, est = (torch.from_numpy(signals[f"{k}_{i}"]) for k in ("source", "mixture", "estimate"))
    got = metrics.score(est, s, m)
    want = expected[str(i)]
    assert got.sdr == pytest.approx(want["sdr"], abs=1e-4)
    assert got.sdr_mixture == pytest.approx(want["sdr_mixture"], abs=1e-4)
    assert got.sdri == pytest.approx(want["sdri"], abs=1e-4)
    assert got.si_sdr == pytest.approx(want["sisdr"], abs=1e-4)
    assert got.si_sdr_mixture == pytest.approx(want["sisdr_mixture"], abs=1e-4)


def test_sdr_is_plain_snr_with_floor():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(1000, generator=g)
    assert float(metrics.sdr(s + 0.1 * s, s)) == pytest.approx(20.0, abs=1e-5)
    # A perfect estimate hits the 1e-10 noise floor instead of dividing by zero.
    assert float(metrics.sdr(s, s)) == pytest.approx(10 * np.log10(float((s**2).mean()) / 1e-10), abs=1e-6)


def test_si_sdr_ignores_scale_but_not_offset():
    g = torch.Generator().manual_seed(1)
    s = torch.randn(2, 4000, generator=g)
    n = 0.05 * torch.randn(2, 4000, generator=g)
    base = metrics.si_sdr(s + n, s)
    assert torch.allclose(metrics.si_sdr(3.0 * (s + n), s), base, atol=1e-3)
    assert (metrics.si_sdr(s + n + 0.5, s) < base - 3).all()  # no mean removal


def test_shape_mismatch_message():
    with pytest.raises(ValueError, match="same shape"):
        metrics.sdr(torch.zeros(10), torch.zeros(11))
