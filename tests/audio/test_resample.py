"""Resampling: the block-by-block stream equals the whole-signal resampler."""
from __future__ import annotations

import pytest
import torch

from audiosep.audio.resample import StreamResampler, resample


@pytest.mark.parametrize("rates", [(44100, 16000), (16000, 44100), (16000, 16000)])
def test_stream_in_uneven_blocks_equals_whole_signal(rates):
    x = torch.randn(2, 30001, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    whole = resample(x, *rates)
    stream = StreamResampler(*rates, channels=2)
    edges = [0, 1, 700, 4096, 4097, 20000, 30001]
    parts = [stream.process(x[:, a:b]) for a, b in zip(edges, edges[1:])]
    parts.append(stream.process(x[:, :0], last=True))
    torch.testing.assert_close(torch.cat(parts, dim=1), whole, rtol=0, atol=1e-12)
    assert whole.shape[1] == round(30001 * rates[1] / rates[0])


def test_bad_rates_are_refused():
    with pytest.raises(ValueError, match="positive"):
        StreamResampler(0, 16000, 1)
