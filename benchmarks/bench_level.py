"""Benchmark scores of a model when its input is louder or quieter than the benchmark's files.

For each gain ``g`` (dB) every mixture is multiplied by ``10 ** (g / 20)`` before separation and
the estimate divided by it afterwards, so the scores compare with the unscaled run (gain 0). A
model whose output follows its input's gain (``model.input_level_db``) scores the same at every
gain; one that does not shows how much level mismatch costs it. One ``audiosep-bench`` results
folder per gain is written under ``--out`` (a rerun resumes them), then a table is printed.

Usage::

    python benchmarks/bench_level.py --metadata data/debian_sounds_bench/benchmark.csv \\
        --model audiosep/weights/audiosep-offline-small --gains -12 -6 0 6 12 --out runs/level
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
from torch import Tensor, nn

from audiosep.pretrained import DEFAULT_MODEL


class GainedModel(nn.Module):
    """``model`` run on ``mixture * gain``, its output divided by ``gain``."""

    def __init__(self, model: nn.Module, gain_db: float) -> None:
        super().__init__()
        self.model, self.gain = model, 10.0 ** (gain_db / 20.0)
        self.sample_rate = model.sample_rate
        self.name = f"{getattr(model, 'name', None) or type(model).__name__} at {gain_db:+g} dB"

    @property
    def separation_net(self) -> nn.Module:  # the results folder is keyed by the model's digest:
        return self.model.separation_net  # network and query encoder, as for the model itself

    @property
    def query_encoder(self) -> nn.Module:
        return self.model.query_encoder

    @property
    def device(self) -> torch.device:
        return self.model.device

    def embed(self, queries: list[str]) -> Tensor:
        return self.model.embed(queries)

    def forward(self, mixture: Tensor, condition: Tensor) -> Tensor:
        """mixture: Tensor[B, 1, L]; condition: Tensor[B, D] -> Tensor[B, 1, L]."""
        return self.model(mixture * self.gain, condition) / self.gain


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--metadata", required=True, help="a custom benchmark CSV (audiosep-bench run custom)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"bundle name or save_pretrained folder (default {DEFAULT_MODEL})")
    p.add_argument("--gains", type=float, nargs="+", default=[-12.0, -6.0, 0.0, 6.0, 12.0], help="input gains in dB")
    p.add_argument("--out", required=True, type=Path, help="results folder (one subfolder per gain)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    return p.parse_args(argv)


def main(argv=None) -> None:
    from audiosep.bench import run_benchmark
    from audiosep.model import AudioSep

    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    model = AudioSep.from_pretrained(args.model).eval()
    rows = []
    for gain in args.gains:
        s = run_benchmark("custom", GainedModel(model, gain), out_dir=args.out / f"gain{gain:+g}dB",
                          metadata=args.metadata)
        rows.append((gain, s["scores"]["sdri"], s["scores"]["si_sdr"], s.get("query_swap", {}).get("own_closer")))
    net_config = model.separation_net.config
    print(f"\n{model.name}: input_level_db {net_config.input_level_db}, "
          f"mask_exponent {net_config.mask_exponent:g}, {args.metadata}")
    print(f"{'gain (dB)':>9} {'SDRi (dB)':>10} {'SI-SDR (dB)':>12} {'own closer':>11}")
    for gain, sdri, si_sdr, own in rows:
        own_text = "-" if own is None else f"{100 * own:.1f} %"
        print(f"{gain:>+9g} {sdri:>10.2f} {si_sdr:>12.2f} {own_text:>11}")


if __name__ == "__main__":
    main()
