"""Separate several sounds from one recording in a single batched call, with residuals.

    python examples/multiple_queries.py mixture.wav "a dog barking" "speech" "rain" --out separated/

All queries go through the network together: ``separate(mix, [q1, q2, ...], residual=True)``
embeds the queries once and runs every (query x channel) row as one batch. It returns

* ``result.audio``    -- ``[Q, C, T]``: one estimate per query, the input's channels and length;
* ``result.residual`` -- ``[Q, C, T]``: *per-query* residuals, ``mixture - estimate[q]`` (what is
  left when only that query is taken out; it still holds the other queries' sounds).

Estimates of different queries are independent (they are not forced to add up to the mixture),
so this script also writes the *remainder*, ``mixture - sum of all estimates``: what none of the
queries claimed. If queries overlap (e.g. "a dog" and "an animal") the remainder can hold
sound subtracted twice, with inverted phase; its level tells you how much that happens.

Outputs in ``--out``: ``separated_<query>.wav`` and ``separated_<query>_residual.wav`` per
query, and ``remainder.wav``. A table gives the RMS level (dBFS) of every output.
"""
from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from audiosep import separate
from audiosep.audio.io import load_audio, save_audio

REMAINDER_FILE = "remainder.wav"


def rms_db(audio: torch.Tensor) -> float:
    """RMS level in dB relative to full scale; about -200 for silence."""
    rms = float(audio.double().pow(2).mean().sqrt())
    return 20.0 * math.log10(max(rms, 1e-10))


@dataclass
class MultiQueryResult:
    """What the script wrote.

    Attributes
    ----------
    paths : list of Path
        Estimate and per-query residual files (in query order), then the remainder.
    levels : dict
        Row name (``"mixture"``, each query, ``"remainder"``) -> ``{"estimate": dB, "residual": dB}``
        (``"mixture"`` and ``"remainder"`` have only ``"estimate"``).
    sample_rate : int
    """

    paths: list[Path]
    levels: dict[str, dict[str, float]] = field(default_factory=dict)
    sample_rate: int = 0


def format_table(levels: dict[str, dict[str, float]]) -> str:
    """A plain-text table: row | estimate dB | residual dB."""
    width = max(len("output"), *(len(k) for k in levels))
    lines = [f"{'output':<{width}}  {'RMS dBFS':>9}  {'residual dBFS':>13}"]
    for name, row in levels.items():
        res = f"{row['residual']:13.1f}" if "residual" in row else f"{'':13}"
        lines.append(f"{name:<{width}}  {row['estimate']:9.1f}  {res}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> MultiQueryResult:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mixture", help="audio file to separate")
    parser.add_argument("queries", nargs="+", help="descriptions of the sounds to separate")
    parser.add_argument("--out", default="separated", help="output folder (default: separated/)")
    parser.add_argument("--model", default=None, help="bundle name or saved model folder (default: the library's)")
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")
    args = parser.parse_args(argv)

    out = Path(args.out)
    if (out / REMAINDER_FILE).exists() and not args.force:
        raise SystemExit(f"{out / REMAINDER_FILE} exists; pass --force to overwrite, or another --out")
    # One call, all queries batched; residual=True gives mixture - estimate for each query.
    result = separate(args.mixture, list(args.queries), model=args.model, device=args.device, residual=True)
    estimates, residuals = result.audio, result.residual  # Tensor[Q, C, T] each
    mixture, _ = load_audio(args.mixture)  # Tensor[C, T], as separate() read it
    remainder = mixture - estimates.sum(0)  # what no query took

    paths = result.save(out, overwrite=args.force)
    paths.append(save_audio(out / REMAINDER_FILE, remainder, result.sample_rate, overwrite=args.force))

    levels = {"mixture": {"estimate": rms_db(mixture)}}
    for i, q in enumerate(result.queries):
        levels[q] = {"estimate": rms_db(estimates[i]), "residual": rms_db(residuals[i])}
    levels["remainder"] = {"estimate": rms_db(remainder)}
    print(format_table(levels))
    print(f"wrote {len(paths)} files to {out}/")
    return MultiQueryResult(paths, levels, result.sample_rate)


if __name__ == "__main__":
    main()
