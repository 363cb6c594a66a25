"""benchmarks/bench_chunking.py: chunked vs one pass on a level step, printed per window length."""
from __future__ import annotations

import dataclasses
import re

import torch
from bench_helpers import load_benchmark_script, tiny_model


def test_snr_by_hand():
    script = load_benchmark_script("bench_chunking")
    ref = torch.tensor([1.0, -1.0, 1.0, -1.0])
    assert abs(script.snr_db(ref, ref * 0.9) - 20.0) < 1e-5  # error 0.1 of the signal: 20 dB


def test_level_step_input_is_twenty_db_quieter_after_the_step():
    x, rate, step = load_benchmark_script("bench_chunking").level_step_input(3.0)
    assert x.shape == (3 * rate,) and step == len(x) // 2
    before, after = x[:step].pow(2).mean(), x[step:].pow(2).mean()
    assert 15 < 10 * torch.log10(before / after) < 25  # the repeated example is not stationary


def test_chunked_tiny_level_normalised_model_stays_within_60_db(tmp_path, capsys):
    model = tiny_model()
    model.separation_net.config = dataclasses.replace(model.separation_net.config, input_level_db=-26.0)
    folder = model.save_pretrained(tmp_path / "model")
    load_benchmark_script("bench_chunking").main(["--seconds", "5", "--chunks", "2", "--model", str(folder)])
    out = capsys.readouterr().out
    overall, quiet, worst = map(float, re.search(r"2 s windows: +(\S+) dB overall, +(\S+) dB on the quiet part, "
                                                 r"+(\S+) dB in the worst second", out).groups())
    assert min(overall, quiet, worst) >= 60
