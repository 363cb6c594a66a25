"""Separate described sounds from an audio file with ``audiosep.separate``.

    python examples/separate_file.py mixture.wav "a dog barking" "speech" --out separated/

Each query gives ``separated/<query>.wav``; ``--residual`` also writes what is left.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from audiosep import separate


def main(argv: Sequence[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mixture", help="audio file to separate")
    parser.add_argument("queries", nargs="+", help="descriptions of the sounds to separate")
    parser.add_argument("--out", default="separated", help="output folder (default: separated/)")
    parser.add_argument("--model", default=None, help="bundle name or saved model folder")
    parser.add_argument("--residual", action="store_true", help="also write mixture minus target")
    args = parser.parse_args(argv)

    result = separate(args.mixture, list(args.queries), model=args.model, residual=args.residual)
    print(f"{len(result.queries)} queries, output shape {tuple(result.audio.shape)} at {result.sample_rate} Hz")
    paths = result.save(args.out)
    for path in paths:
        print(path)
    return paths


if __name__ == "__main__":
    main()
