"""Evaluate a model on your own benchmark: a CSV of mixture,source,query rows.

    python examples/evaluate_custom.py --metadata my_items.csv --out bench-results/mine
    python examples/evaluate_custom.py --make-demo demo_bench/                 # no data needed
    python examples/evaluate_custom.py --make-demo demo_bench/ --sources dog.wav rain.wav --labels "a dog barking" rain

The CSV has a header row and the columns ``mixture``, ``source`` and ``query`` (and optionally
``group``, ``class`` and ``other_source``); paths are relative to the CSV's folder. Each row is one item: the model separates
``query`` from ``mixture`` and is scored against ``source`` (SDR, SDRi, SI-SDR, SI-SDRi; the
summary is the mean over items). This is ``audiosep-bench run custom --metadata CSV`` through the
public API (:func:`audiosep.bench.prepare_benchmark` and :func:`audiosep.bench.run_benchmark`).

``--make-demo DIR`` first writes a tiny benchmark into ``DIR``: every pair of sources mixed at
0 dB (equal energy), two rows per mixture (each source once as the target), and
``DIR/benchmark.csv`` with an ``other_source`` column, so the summary also reports the
query-swap check (how often the estimate is closer to its own source than to the other one). The sources are the files given with ``--sources`` (mono-averaged,
resampled to the first file's rate, cut to the shorter length) captioned by ``--labels``, or,
without ``--sources``, three synthetic sounds (two sine tones and a noise burst train). Since
the mixtures are at 0 dB, the mixture's own SDR (``sdr_mixture`` in ``items.csv``) is 0 dB.

Results go to ``--out``: ``items.csv`` (per item), ``summary.json`` and ``run.json``; running
again into the same folder resumes.
"""
from __future__ import annotations

import argparse
import csv
import itertools
import math
from pathlib import Path
from typing import Any, Sequence

import torch

from audiosep import AudioSep
from audiosep.audio.io import load_audio, save_audio
from audiosep.audio.resample import resample
from audiosep.bench import markdown_table, prepare_benchmark, run_benchmark
from audiosep.outputs import slugify

DEMO_CSV = "benchmark.csv"
DEMO_RATE = 16000
PEAK = 0.9  # mixtures are scaled (with their sources) to at most this peak


def synthetic_sources(sample_rate: int = DEMO_RATE, seconds: float = 2.0, seed: int = 0) -> dict[str, torch.Tensor]:
    """Three captioned test sounds, ``{caption: Tensor[T]}``, from a seeded generator."""
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(int(sample_rate * seconds)) / sample_rate
    bursts = ((t * 4) % 1.0 < 0.3).float()  # four 75 ms bursts per second
    return {
        "a tone at 440 hertz": 0.3 * torch.sin(2 * math.pi * 440 * t),
        "a high whistle at 1760 hertz": 0.3 * torch.sin(2 * math.pi * 1760 * t),
        "bursts of white noise": 0.2 * torch.randn(t.shape, generator=gen) * bursts,
    }


def load_sources(paths: Sequence[str], labels: Sequence[str]) -> tuple[dict[str, torch.Tensor], int]:
    """``{label: Tensor[T]}`` (mono, at the first file's rate, equal lengths) and that rate."""
    if len(paths) != len(labels):
        raise SystemExit(f"{len(paths)} --sources but {len(labels)} --labels; give one label per source file")
    if len(paths) < 2:
        raise SystemExit("--sources needs at least two files to mix")
    clips, rate = {}, None
    for path, label in zip(paths, labels):
        audio, sr = load_audio(path)
        rate = rate or sr
        clips[label] = resample(audio.mean(0), sr, rate)
    n = min(c.shape[-1] for c in clips.values())
    return {k: v[:n] for k, v in clips.items()}, rate


def make_demo(directory: str | Path, sources: dict[str, torch.Tensor], sample_rate: int) -> Path:
    """Write 0 dB mixtures of every pair of ``sources`` and their CSV; returns the CSV path.

    Parameters
    ----------
    sources : dict of str -> Tensor[T]
        Caption -> mono clip, all of one length at ``sample_rate``.
    """
    directory = Path(directory)
    rows = []
    for k, ((qa, a), (qb, b)) in enumerate(itertools.combinations(sources.items(), 2)):
        ea, eb = a.pow(2).sum(), b.pow(2).sum()
        if ea == 0 or eb == 0:
            raise SystemExit(f"source {qa if ea == 0 else qb!r} is silent; pick a file with sound in it")
        b = b * (ea / eb).sqrt()  # equal energy: 0 dB
        mix = a + b
        scale = min(1.0, PEAK / float(mix.abs().max()))
        name = f"mix{k:02d}"
        save_audio(directory / "mixtures" / f"{name}.wav", mix * scale, sample_rate, overwrite=True)
        for q, src in ((qa, a), (qb, b)):
            rel = f"sources/{name}_{slugify(q)}.wav"
            save_audio(directory / rel, src * scale, sample_rate, overwrite=True)
            rows.append({"mixture": f"mixtures/{name}.wav", "source": rel, "query": q, "group": q})
        rows[-2]["other_source"], rows[-1]["other_source"] = rows[-1]["source"], rows[-2]["source"]
    path = directory / DEMO_CSV
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["mixture", "source", "query", "group", "other_source"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--metadata", help="your benchmark CSV (mixture,source,query[,group])")
    parser.add_argument("--make-demo", metavar="DIR", help="write a tiny demo benchmark into DIR and evaluate it")
    parser.add_argument("--sources", nargs="+", metavar="FILE", help="with --make-demo: source files to mix")
    parser.add_argument("--labels", nargs="+", metavar="TEXT", help="with --sources: one query per file")
    parser.add_argument("--model", default=None, help="bundle name or saved model folder (default: the library's)")
    parser.add_argument("--out", default=None, help="results folder (default: bench-results/custom)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate only the first N items")
    parser.add_argument("--batch-size", type=int, default=1, help="items per forward pass (default 1)")
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    from audiosep.devices import default_device
    from audiosep.pretrained import DEFAULT_MODEL

    if (args.metadata is None) == (args.make_demo is None):
        parser.error("give either --metadata CSV or --make-demo DIR")
    metadata = args.metadata
    if args.make_demo:
        if args.sources:
            sources, rate = load_sources(args.sources, args.labels or [])
        else:
            sources, rate = synthetic_sources(), DEMO_RATE
        metadata = make_demo(args.make_demo, sources, rate)
        print(f"wrote the demo benchmark {metadata}")

    # Check the item list and that its files exist before loading the model.
    plan = prepare_benchmark("custom", metadata=metadata, limit=args.limit)
    name = args.model or DEFAULT_MODEL
    device = args.device or default_device()
    model = AudioSep.from_pretrained(name, device=device)
    out = Path(args.out) if args.out else Path("bench-results") / "custom"
    summary = run_benchmark(plan, model, out_dir=out, batch_size=args.batch_size, device=device,
                            model_name=str(name), progress=not args.quiet)
    print(markdown_table([summary]), end="")
    n = summary["items"]
    print(f"{n['scored']} of {n['total']} items scored, {n['failed']} failed; per-item scores in {out / 'items.csv'}")
    for failure in summary["failures"]:
        print(f"  failed: item {failure['key']}: {failure['error']}")
    return summary


if __name__ == "__main__":
    main()
