"""Windowing with cross-fade: exactness on an identity, weights, one call per window."""
from __future__ import annotations

import pytest
import torch

from audiosep.chunking import aligned_sizes, apply_chunked, plan_windows, window_weights


@pytest.mark.parametrize(
    "length,window,overlap,fade",
    [(1000, 100, 20, None), (1000, 100, 20, 0), (1000, 100, 20, 20), (1001, 100, 21, 7), (1000, 100, 0, 0), (101, 100, 30, 30)],
)
def test_identity_is_reproduced_and_weights_sum_to_one(length, window, overlap, fade):
    x = torch.randn(2, 3, length, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = apply_chunked(lambda s: s.clone(), x, window, overlap, fade)
    torch.testing.assert_close(y, x, rtol=0, atol=1e-12)
    total = torch.zeros(length, dtype=torch.float64)
    for w in plan_windows(length, window, overlap, fade):
        weights = window_weights(w, torch.float64)
        assert weights.min() >= 0 and weights.max() <= 1
        total[w.start : w.stop] += weights
    torch.testing.assert_close(total, torch.ones(length, dtype=torch.float64), rtol=0, atol=1e-12)


def test_each_window_runs_once_and_work_is_length_plus_overlaps():
    calls = []

    def fn(seg):
        calls.append(seg.shape[-1])
        return seg

    length, window, overlap = 10_000, 1000, 100
    apply_chunked(fn, torch.zeros(length), window, overlap)
    plan = plan_windows(length, window, overlap)
    assert len(calls) == len(plan)
    assert max(calls) == window
    assert sum(calls) == length + (len(plan) - 1) * overlap


def test_short_input_is_one_call():
    calls = []
    x = torch.randn(50)
    y = apply_chunked(lambda s: calls.append(1) or 2 * s, x, 100, 20)
    assert calls == [1]
    torch.testing.assert_close(y, 2 * x)


def test_fn_may_add_leading_dimensions():
    x = torch.randn(2, 777)
    gains = torch.tensor([1.0, -0.5, 3.0])[:, None, None]
    y = apply_chunked(lambda s: gains * s[None], x, 200, 40)  # [C, l] -> [Q, C, l]
    torch.testing.assert_close(y, gains * x[None])


def test_position_dependent_fn_only_matters_near_edges():
    # fn that corrupts the first and last `edge` samples of every window: a fade inside the
    # overlap, away from the edges, must hide the corruption completely.
    edge = 10

    def fn(seg):
        out = seg.clone()
        out[..., :edge] = 99.0
        out[..., -edge:] = 99.0
        return out

    x = torch.randn(5000)
    y = apply_chunked(fn, x, 500, 4 * edge, fade=2 * edge)
    torch.testing.assert_close(y[edge:-edge], x[edge:-edge])


def test_aligned_sizes():
    align, hop = 10240, 320
    window, overlap = aligned_sizes(320_000, 16_000, align, hop)
    stride = window - overlap
    assert stride % align == 0 and overlap >= 16_000
    assert (window // hop + 1) % (align // hop) == 0  # whole pooling blocks of STFT frames
    assert aligned_sizes(100, 10) == (100, 10)


@pytest.mark.parametrize("window,overlap,fade", [(0, 0, None), (100, 100, None), (100, -1, None), (100, 20, 30)])
def test_bad_sizes_raise(window, overlap, fade):
    with pytest.raises(ValueError):
        plan_windows(1000, window, overlap, fade)


def test_stream_in_blocks_equals_apply_chunked_and_holds_about_a_window():
    from audiosep.chunking import ChunkedStream

    x = torch.randn(2, 5000, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    seen = []

    def fn(seg):  # position-dependent near the edges, so the cross-fade matters
        seen.append(seg.shape[-1])
        out = torch.stack([seg, -seg])
        out[..., :5] = 0
        return out

    whole = apply_chunked(fn, x, 700, 100)
    stream = ChunkedStream(fn, 5000, 700, 100)
    outs = [stream.push(x[:, i : i + 333]) for i in range(0, 5000, 333)]
    y = torch.cat([o for o in outs if o is not None], dim=-1)
    torch.testing.assert_close(y, whole, rtol=0, atol=1e-12)
    assert max(seen) == 700 and max(o.shape[-1] for o in outs if o is not None) <= 700 + 333
    assert sum(o is None for o in outs) >= len(outs) // 3  # output comes out window by window
    with pytest.raises(ValueError, match="more than the 5000 samples"):
        stream.push(x[:, :1])
