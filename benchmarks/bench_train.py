"""Training throughput: samples/s of training steps (5 s segments) and of the data loader.

    python benchmarks/bench_train.py                      # small network, CPU (~1-2 min on 2 cores)
    python benchmarks/bench_train.py --full --batch-size 12 --device cuda --precision bf16 \
        --compile --channels-last                         # the full ResUNet30 on a GPU
    python benchmarks/bench_train.py --config my.yaml     # the network/data settings of a config
    python benchmarks/bench_train.py data --num-workers 2  # DataLoader clips/s: tar shards vs manifests
    python benchmarks/bench_train.py memory               # peak RSS: 200 k-record manifest vs shard index

``data`` and ``memory`` are in :mod:`bench_train_data` (``--help`` there lists their options).

Clips are synthetic sine tones written to a temporary folder; queries use the model-free
"hashed" encoder so that only the separation network and the data path are measured. Each
training step is the trainer's real step (mixing, queries, forward, L1 loss, backward, AdamW).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import torch

SMALL_MODEL = {"stem_channels": 8, "encoder_channels": [8, 16, 32, 64, 96, 96]}


def build_config(args: argparse.Namespace, train_manifest: Path, out_dir: Path):
    from audiosep.train.config import config_from_dict, load_config

    if args.config:
        base = load_config(args.config).to_dict()
    else:
        base = {"model": {} if args.full else dict(SMALL_MODEL), "data": {}, "training": {}}
    model = base.setdefault("model", {})
    raw = {
        "model": model,
        "query_encoder": {"kind": "hashed", "dim": model.get("condition_dim", 512)},
        "data": {**base.get("data", {}), "train_manifests": [str(train_manifest)], "val_manifests": [],
                 "segment_seconds": args.seconds, "batch_size": args.batch_size,
                 "num_workers": args.num_workers, "precompute_text": False},
        "mixing": base.get("mixing", {}),
        "optim": base.get("optim", {}),
        "schedule": {"warmup_steps": 0},
        "training": {**base.get("training", {}), "steps": 10**9, "val_every": 0, "checkpoint_every": 0,
                     "out_dir": str(out_dir), "device": args.device, "precision": args.precision,
                     "compile": args.compile, "channels_last": args.channels_last, "progress": False,
                     "sync_batchnorm": False, "init_from": None},
    }
    return config_from_dict(raw)


def bench_loader(trainer, batches: int) -> float:
    """Samples/s of the trainer's DataLoader (decode, crop, collate)."""
    loader = iter(trainer.loader(0))
    next(loader)  # worker start-up
    n, t0 = 0, time.perf_counter()
    for _ in range(batches):
        try:
            batch = next(loader)
        except StopIteration:
            loader = iter(trainer.loader(1))
            batch = next(loader)
        n += batch.audio.shape[0]
    return n / (time.perf_counter() - t0)


def bench_steps(trainer, steps: int, warmup: int) -> tuple[float, float]:
    """(samples/s, peak GPU memory in GiB or nan) of full training steps on one fixed batch."""
    batch = next(iter(trainer.loader(0)))
    cuda = trainer.device.type == "cuda"
    trainer._set_train_mode()
    for _ in range(warmup):
        trainer.train_step(batch)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.train_step(batch)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated() / 2**30 if cuda else float("nan")
    return steps * batch.audio.shape[0] / seconds, peak


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["data"], ["memory"]):
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_train_data import main as data_main

        return data_main(argv)
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="other modes: 'bench_train.py data' (DataLoader clips/s from tar shards vs manifests) and "
               "'bench_train.py memory' (peak RSS of a 200 k-record manifest vs its shard index); "
               "each has its own --help")
    p.add_argument("--config", help="take model/data/optim settings from this YAML training config")
    p.add_argument("--full", action="store_true", help="the full-size ResUNet30 (default: a small network)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--seconds", type=float, default=5.0, help="segment length")
    p.add_argument("--steps", type=int, default=3, help="timed training steps")
    p.add_argument("--warmup", type=int, default=1, help="untimed training steps first")
    p.add_argument("--loader-batches", type=int, default=8)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"),
                   help="fp16: float16 autocast with loss scaling (meant for GPUs; slow on CPU)")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--keep-heap", action="store_true",
                   help="keep freed memory in the glibc heap, as audiosep-train does "
                        "(audiosep.nn.fused.keep_freed_memory)")
    args = p.parse_args(argv)
    if args.keep_heap:
        from audiosep.nn.fused import keep_freed_memory

        keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)

    from audiosep.train.cli import write_tone_dataset
    from audiosep.train.distributed import DistInfo, pick_device
    from audiosep.train.trainer import Trainer

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        probe = build_config(args, tmp / "none.json", tmp / "out")
        clips_needed = max(args.batch_size * (args.loader_batches + 2), 12)
        per_tone = -(-clips_needed // 6)
        train, _ = write_tone_dataset(tmp / "data", per_tone=per_tone, val_per_tone=0,
                                      sample_rate=probe.data.sample_rate, seconds=args.seconds + 0.5)
        cfg = build_config(args, train, tmp / "out")
        trainer = Trainer(cfg, dist_info=DistInfo(device=pick_device(args.device)))
        params = sum(p.numel() for p in trainer.net.parameters())
        print(f"network: {'ResUNet30 (full)' if args.full and not args.config else 'from config' if args.config else 'small'}"
              f", {params / 1e6:.2f} M parameters; {cfg.data.sample_rate} Hz, {args.seconds:g} s segments, "
              f"batch {args.batch_size}, device {trainer.device}, {args.precision}"
              f"{', compiled' if args.compile else ''}{', channels-last' if args.channels_last else ''}, "
              f"{torch.get_num_threads()} CPU threads{', heap kept' if args.keep_heap else ''}")
        loader_rate = bench_loader(trainer, args.loader_batches)
        print(f"data loader: {loader_rate:.1f} samples/s ({args.num_workers} workers)")
        rate, peak = bench_steps(trainer, args.steps, args.warmup)
        line = f"training: {rate:.2f} samples/s ({rate * args.seconds:.1f} s of audio per s)"
        if peak == peak:
            line += f", peak GPU memory {peak:.2f} GiB"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
