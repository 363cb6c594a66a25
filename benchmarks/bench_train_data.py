"""Training data at scale: tar shards vs manifests (run through ``bench_train.py data|memory``).

    python benchmarks/bench_train.py data [--clips 2000] [--num-workers 2] [--batch-size 16]
    python benchmarks/bench_train.py memory [--records 200000]

``data``: writes ``--clips`` synthetic FLAC clips and a JSONL manifest to a temporary folder,
shards them with :func:`audiosep.train.shards.write_shards`, then times one epoch of the
trainer's DataLoader (:func:`audiosep.train.data_source.build_train_data`: decode, crop,
collate, with ``--num-workers`` workers) from the manifest and from the shards, alternating,
``--repeats`` times each, and prints the best clips/s and batches/s of each and their ratio,
all measured in this run.

``memory``: writes a synthetic ``--records``-record JSONL manifest and a shard index for as many
clips (empty shard files: nothing is decoded), then in a fresh process each builds the training
dataset -- from the manifest (:func:`read_manifests` + :class:`ClipDataset`, what training from
manifests holds) and from the shard index (:class:`ShardClips`) -- and prints the peak resident
memory of both and how much above the bare imports it rose.
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

SR = 16000


def write_clips(folder: Path, count: int, seconds: float) -> Path:
    """``count`` FLAC tones of ``seconds`` and ``train.jsonl`` listing them."""
    import numpy as np
    import soundfile

    (folder / "flac").mkdir(parents=True, exist_ok=True)
    t = np.arange(int(SR * seconds)) / SR
    lines = []
    for i in range(count):
        freq = 110.0 * 2 ** ((i % 48) / 12)
        wave = (0.3 * np.sin(2 * math.pi * freq * t + i)).astype("float32")
        name = f"flac/clip{i:06d}.flac"
        soundfile.write(folder / name, wave, SR)
        lines.append(json.dumps({"wav": name, "caption": f"a tone at {freq:.0f} hertz"}))
    manifest = folder / "train.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def time_epoch(data_cfg, seed: int = 0) -> tuple[int, int, float]:
    """(clips, batches, seconds) of one epoch of the loader, timed from its first batch (worker
    start-up excluded); the first batch is not counted."""
    from audiosep.train.data_source import build_train_data
    from audiosep.train.distributed import DistInfo

    loader = iter(build_train_data(data_cfg, seed, DistInfo()).loader(0))
    next(loader)
    clips = batches = 0
    t0 = time.perf_counter()
    for batch in loader:
        clips += batch.audio.shape[0]
        batches += 1
    return clips, batches, time.perf_counter() - t0


def bench_data(args: argparse.Namespace) -> int:
    from audiosep.train.config import DataConfig
    from audiosep.train.shards import write_shards

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        manifest = write_clips(tmp / "clips", args.clips, args.seconds)
        t1 = time.perf_counter()
        summary = write_shards([manifest], tmp / "shards", shard_size=args.shard_size, progress=False)
        t2 = time.perf_counter()
        print(f"{args.clips} FLAC clips of {args.seconds:g} s at {SR} Hz written in {t1 - t0:.1f} s; "
              f"sharded in {t2 - t1:.1f} s ({summary.shards} shards of {args.shard_size})")
        common = dict(sample_rate=SR, segment_seconds=args.segment, batch_size=args.batch_size,
                      num_workers=args.num_workers)
        sources = {"manifest": {"train_manifests": (str(manifest),)},
                   "shards": {"train_shards": (str(tmp / "shards"),), "shuffle_buffer": args.buffer}}
        best: dict[str, tuple[int, int, float]] = {}
        for _ in range(args.repeats):  # alternated, so that a load change on the machine hits both
            for name, source in sources.items():
                clips, batches, seconds = time_epoch(DataConfig(**common, **source))
                if name not in best or seconds < best[name][2]:
                    best[name] = (clips, batches, seconds)
        rates = {}
        for name, (clips, batches, seconds) in best.items():
            rates[name] = clips / seconds
            print(f"{name:>8}: {clips / seconds:7.1f} clips/s, {batches / seconds:6.2f} batches/s "
                  f"({clips} clips in {batches} batches of {args.batch_size}, {args.num_workers} workers, "
                  f"best of {args.repeats} epochs: {seconds:.2f} s)")
        print(f"shards / manifest: {rates['shards'] / rates['manifest']:.2f}x clips/s")
    return 0


MEASURE = """
import resource, sys
from audiosep.train.config import DataConfig
from audiosep.train.data_source import build_train_data
from audiosep.train.dataset import ClipDataset
from audiosep.train.manifest import read_manifests
from audiosep.train.shard_data import ShardClips, load_shard_index
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kind, source = sys.argv[1], sys.argv[2]
if kind == "manifest":
    data = ClipDataset(read_manifests([source]), DataConfig(train_manifests=(source,)))
else:
    data = ShardClips(load_shard_index([source]), DataConfig(train_shards=(source,)))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before, after, data.steps_per_epoch if kind != "manifest" else len(data))
"""


def bench_memory(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        manifest = tmp / "big.jsonl"
        with manifest.open("w") as f:
            for i in range(args.records):
                f.write(json.dumps({"wav": f"audio/{i // 1000:04d}/Y{i:011d}_30000_40000.flac",
                                    "caption": f"a dog barks twice while a car passes by on a wet road, take {i}",
                                    "labels": "Dog; Bark; Vehicle"}) + "\n")
        shards = tmp / "shards"
        shards.mkdir()
        per = 1000
        entries = []
        for s in range(math.ceil(args.records / per)):
            name = f"train-{s:06d}.tar"
            (shards / name).touch()
            entries.append({"name": name, "count": min(per, args.records - s * per), "bytes": 0})
        (shards / "index.json").write_text(json.dumps({"format": "audiosep-shards", "version": 1,
                                                       "total": args.records, "shards": entries}))
        print(f"manifest: {args.records} records, {manifest.stat().st_size / 1e6:.1f} MB; "
              f"shard index: {len(entries)} shards, {(shards / 'index.json').stat().st_size / 1e3:.1f} kB")
        peaks = {}
        for kind, source in (("manifest", manifest), ("shards", shards)):
            out = subprocess.run([sys.executable, "-c", MEASURE, kind, str(source)], check=True,
                                 capture_output=True, text=True).stdout.split()
            before, after = int(out[0]) / 1024, int(out[1]) / 1024  # ru_maxrss is in KiB on Linux
            peaks[kind] = after - before
            print(f"{kind:>8}: peak RSS {after:7.1f} MiB ({after - before:+7.1f} MiB over the imports)")
        print(f"manifest / shards, memory over the imports: {peaks['manifest'] / max(peaks['shards'], 0.1):.0f}x")
    return 0


def main(argv: Sequence[str]) -> int:
    p = argparse.ArgumentParser(prog="bench_train.py", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    d = sub.add_parser("data", help="DataLoader clips/s and batches/s: tar shards vs manifest")
    d.add_argument("--clips", type=int, default=2000)
    d.add_argument("--seconds", type=float, default=1.0, help="length of each clip")
    d.add_argument("--segment", type=float, default=0.5, help="data.segment_seconds")
    d.add_argument("--batch-size", type=int, default=16)
    d.add_argument("--num-workers", type=int, default=2)
    d.add_argument("--shard-size", type=int, default=250, help="clips per shard")
    d.add_argument("--buffer", type=int, default=100, help="data.shuffle_buffer")
    d.add_argument("--repeats", type=int, default=3, help="epochs timed per source (alternating; the best counts)")
    m = sub.add_parser("memory", help="peak RSS of building the dataset: manifest vs shard index")
    m.add_argument("--records", type=int, default=200_000)
    args = p.parse_args(argv)
    return bench_data(args) if args.mode == "data" else bench_memory(args)
