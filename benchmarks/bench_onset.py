"""Does a model find a one-shot sound wherever it sits in the input?

For every item of a custom benchmark whose target is sparse (a drum hit, a bark: sound in at most
``--max-active`` of its 20 ms frames), the mixture and the target are rotated (circularly shifted
by the same amount) so that the target's onset lies ``d`` seconds into the item, for each ``d`` of
``--onsets``. Every row therefore holds the same audio, only moved (the other source gets one seam
where it wraps). The model separates each rotated mixture with the item's query, and the table gives
the mean SDR and SDRi (dB) per ``d``. A model that learnt that short sounds begin at the start of
its training segments scores well at ``d = 0`` and poorly later on (see ``data.short_clips`` in the
training configs).

Usage::

    python benchmarks/bench_onset.py --metadata data/debian_sounds_bench/benchmark.csv \\
        --model audiosep/weights/audiosep-offline-small --onsets 0 0.5 1 2 3
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from audiosep.pretrained import DEFAULT_MODEL

FRAME_SECONDS = 0.02
ACTIVE_DB = -30.0  # a frame is active when its energy is within this of the loudest frame's
ONSET_FRACTION = 0.03  # the onset is the first sample above this fraction of the peak


def activity(source: np.ndarray, sample_rate: int) -> float:
    """Fraction of the 20 ms frames of ``source: float[T]`` that are active."""
    hop = max(1, int(round(FRAME_SECONDS * sample_rate)))
    n = len(source) // hop * hop
    if n == 0:
        return 0.0
    energy = (source[:n].astype(np.float64).reshape(-1, hop) ** 2).mean(axis=1)
    return float(np.mean(energy > energy.max() * 10 ** (ACTIVE_DB / 10))) if energy.max() > 0 else 0.0


def onset(source: np.ndarray) -> int:
    """Index of the first sample of ``source: float[T]`` above ``ONSET_FRACTION`` of its peak."""
    peak = float(np.max(np.abs(source)))
    return int(np.argmax(np.abs(source) > ONSET_FRACTION * peak)) if peak > 0 else 0


def sparse_items(metadata: Path, max_active: float) -> list[dict]:
    """Rows of ``metadata`` (paths made absolute) whose source is sparse, with their mono audio."""
    from audiosep.audio.io import load_audio

    items = []
    with metadata.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            source, sr = load_audio(metadata.parent / row["source"])
            source = source.mean(0).numpy()
            if activity(source, sr) > max_active:
                continue
            mixture, sr_mixture = load_audio(metadata.parent / row["mixture"])
            if sr_mixture != sr:
                raise ValueError(f"{row['source']} is at {sr} Hz but its mixture at {sr_mixture} Hz; "
                                 "resample one of them so they match")
            items.append(dict(query=row["query"], mixture=mixture.mean(0).numpy(), source=source, sample_rate=sr))
    return items


def measure(model, items: list[dict], onsets: list[float], progress: bool = True) -> dict[float, tuple[list, list]]:
    """{d: (SDR per item, SDRi per item)} with each item rotated so its target's onset is at d s."""
    from audiosep import separate
    from audiosep.metrics import sdr

    scores = {d: ([], []) for d in onsets}
    for it in tqdm(items, desc="items", disable=not progress):
        sr, start = it["sample_rate"], onset(it["source"])
        mixture, source = torch.from_numpy(it["mixture"]), torch.from_numpy(it["source"])
        sdr_mixture = float(sdr(mixture, source))  # a rotation of both leaves it unchanged
        for d in onsets:
            shift = int(round(d * sr)) - start
            mix, src = mixture.roll(shift), source.roll(shift)
            est = torch.as_tensor(separate(mix, it["query"], sample_rate=sr, model=model).audio).reshape(-1)
            value = float(sdr(est, src))
            scores[d][0].append(value)
            scores[d][1].append(value - sdr_mixture)
    return scores


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--metadata", required=True, type=Path, help="a custom benchmark CSV (mixture, source, query)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"bundle name or save_pretrained folder (default {DEFAULT_MODEL})")
    p.add_argument("--onsets", type=float, nargs="+", default=[0.0, 0.5, 1.0, 2.0, 3.0],
                   help="where the target's onset is moved to (seconds; less than the items' length)")
    p.add_argument("--max-active", type=float, default=0.2, help="largest active-frame fraction of a sparse target")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: 2)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def main(argv=None) -> None:
    from audiosep.model import AudioSep

    args = parse_args(argv)
    if any(d < 0 for d in args.onsets):
        raise SystemExit(f"--onsets must be >= 0 seconds, got {args.onsets}")
    torch.set_num_threads(args.threads)
    model = AudioSep.from_pretrained(args.model).eval()
    items = sparse_items(args.metadata, args.max_active)
    too_short = [it for it in items if len(it["source"]) <= max(args.onsets) * it["sample_rate"]]
    if too_short:
        raise SystemExit(f"{len(too_short)} sparse items are not longer than the largest onset "
                         f"({max(args.onsets):g} s); lower --onsets")
    print(f"{model.name}: {len(items)} items with a sparse target (<= {100 * args.max_active:g} % active) "
          f"in {args.metadata}")
    if not items:
        print("no item to score: raise --max-active")
        return
    scores = measure(model, items, args.onsets, progress=not args.no_progress)
    print(f"{'onset (s)':>9} {'SDR (dB)':>9} {'SDRi (dB)':>10}")
    for d in args.onsets:
        print(f"{d:>9g} {np.mean(scores[d][0]):>9.2f} {np.mean(scores[d][1]):>10.2f}")


if __name__ == "__main__":
    main()
