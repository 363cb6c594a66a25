"""How far chunked separation is from one pass over the whole input.

Takes the README's example mixture, repeats it to ``--seconds`` long, makes it 20 dB quieter
from the middle on (a level step, the hard case for level-normalised models), separates it once
in a single pass and once per window length, and prints the SNR of each chunked result against
the single pass: overall, on the quiet part, and the worst second.

Usage::

    python benchmarks/bench_chunking.py [--seconds 25] [--chunks 10 20] [--model NAME] [--query TEXT]
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from audiosep import separate
from audiosep.audio.io import load_audio
from audiosep.pretrained import DEFAULT_MODEL

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "audio" / "mixture.wav"


def snr_db(ref: torch.Tensor, est: torch.Tensor) -> float:
    ref, est = ref.double(), est.double()
    return float(10 * torch.log10(ref.pow(2).sum() / (est - ref).pow(2).sum().clamp_min(1e-30)))


def level_step_input(seconds: float) -> tuple[torch.Tensor, int, int]:
    """Tensor[T] mono, its rate, and the sample where it turns 20 dB quieter."""
    audio, rate = load_audio(EXAMPLE)
    mono = audio.mean(0)
    n = int(seconds * rate)
    x = mono.repeat(-(-n // mono.numel()))[:n].clone()
    step = n // 2
    x[step:] *= 0.1
    return x, rate, step


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=25.0)
    p.add_argument("--chunks", type=float, nargs="+", default=[10.0, 20.0])
    p.add_argument("--model", default=DEFAULT_MODEL)
    p.add_argument("--query", default="rain falling")
    args = p.parse_args(argv)
    x, rate, step = level_step_input(args.seconds)
    one = separate(x, args.query, sample_rate=rate, model=args.model, chunk_seconds=None).audio
    print(f"{args.model}, {args.seconds:g} s, -20 dB from {step / rate:g} s; SNR of chunked vs one pass:")
    for chunk in args.chunks:
        est = separate(x, args.query, sample_rate=rate, model=args.model, chunk_seconds=chunk).audio
        worst = min(snr_db(one[i : i + rate], est[i : i + rate]) for i in range(0, len(x) - rate + 1, rate))
        print(f"  {chunk:g} s windows: {snr_db(one, est):6.1f} dB overall, {snr_db(one[step:], est[step:]):6.1f} dB "
              f"on the quiet part, {worst:6.1f} dB in the worst second")


if __name__ == "__main__":
    main()
