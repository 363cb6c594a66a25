"""``audiosep-train CONFIG.yaml [--resume PATH] [--set key.sub=value ...]``, and
``audiosep-train shard MANIFEST [MANIFEST ...] --out DIR`` (tar shards for large data sets).

One process: ``audiosep-train tiny_cpu.yaml``. Several GPUs (or nodes, with torchrun's
rendezvous flags): ``torchrun --nproc_per_node 8 -m audiosep.train reference.yaml``.
"""
from __future__ import annotations

import argparse
import gc
import sys
from pathlib import Path
from typing import Sequence

from ..cli.runner import OneLineParser, run_command
from ..errors import UsageError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="audiosep-train",
        description="Train an AudioSep separation network from a YAML config "
                    f"(shipped configs: {', '.join(sorted(x.stem for x in CONFIG_DIR.glob('*.yaml')))}).",
        epilog="'audiosep-train shard MANIFEST... --out DIR' writes tar shards for large data sets "
               "(train from them with data.train_shards: DIR); see 'audiosep-train shard --help'",
    )
    p.add_argument("config", help="YAML config file, or the name of a shipped config (e.g. tiny_cpu)")
    p.add_argument("--resume", metavar="PATH|auto",
                   help="checkpoint folder, or a run folder (its latest checkpoint), to continue from; 'auto': "
                        "training.out_dir's latest checkpoint if it has one, else start fresh (for requeued "
                        "jobs and torchrun --max-restarts). Without --resume, training.out_dir must hold no run")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set optim.lr=3e-4 --set training.steps=100")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.add_argument("--make-tone-data", metavar="DIR",
                   help="write a small synthetic dataset (sine tones captioned by pitch) with train.json and "
                        "val.json manifests into DIR, then exit; CONFIG's data.sample_rate is used")
    return p


def build_shard_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="audiosep-train shard",
        description="Write the clips of training manifests into tar shards (audio bytes as stored, caption, "
                    "labels, original path) and an index.json; train from them with data.train_shards: DIR.",
    )
    p.add_argument("manifests", nargs="+", metavar="MANIFEST", help=".json, .jsonl or .csv training manifests")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="folder for train-000000.tar, ... and index.json (new or empty; an interrupted run "
                        "into it is continued)")
    size = p.add_mutually_exclusive_group()
    size.add_argument("--shard-size", type=int, metavar="N", help="clips per shard (default 1000)")
    size.add_argument("--shard-mb", type=float, metavar="MB", help="or: megabytes of audio per shard")
    p.add_argument("--overwrite", action="store_true", help="replace the shards already in --out")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _shard(args: argparse.Namespace) -> int:
    from .shards import write_shards

    size = args.shard_size if args.shard_size is not None or args.shard_mb is not None else 1000
    summary = write_shards(args.manifests, args.out, shard_size=size, shard_mb=args.shard_mb,
                           overwrite=args.overwrite, progress=not args.no_progress)
    print(summary.format())
    return 0


TONES = {"a low hum at 110 hertz": 110.0, "a deep tone at 220 hertz": 220.0, "a tone at 440 hertz": 440.0,
         "a bright tone at 880 hertz": 880.0, "a high whistle at 1760 hertz": 1760.0,
         "a very high beep at 3520 hertz": 3520.0}


def write_tone_dataset(directory: str | Path, *, per_tone: int = 8, val_per_tone: int = 2,
                       sample_rate: int = 16000, seconds: float = 1.5, seed: int = 0) -> tuple[Path, Path]:
    """Write sine-tone clips (random phase, level and vibrato; captions name the pitch) and
    ``train.json`` / ``val.json`` manifests in the reference format.

    Returns
    -------
    (train_manifest, val_manifest)
    """
    import json
    import math

    import soundfile
    import torch

    directory = Path(directory)
    (directory / "wav").mkdir(parents=True, exist_ok=True)
    gen = torch.Generator().manual_seed(seed)
    t = torch.arange(int(sample_rate * seconds)) / sample_rate
    entries: dict[str, list[dict[str, str]]] = {"train": [], "val": []}
    for k, (caption, freq) in enumerate(TONES.items()):
        for i in range(per_tone + val_per_tone):
            phase, level, vib = torch.rand(3, generator=gen).tolist()
            f = freq * (1 + 0.01 * vib * torch.sin(2 * math.pi * 3 * t))
            wave = (0.1 + 0.4 * level) * torch.sin(2 * math.pi * torch.cumsum(f, 0) / sample_rate + 2 * math.pi * phase)
            name = f"wav/tone{k}_{i:03d}.wav"
            soundfile.write(directory / name, wave.numpy(), sample_rate, subtype="FLOAT")
            entries["train" if i < per_tone else "val"].append({"wav": name, "caption": caption})
    paths = []
    for split, items in entries.items():
        path = directory / f"{split}.json"
        path.write_text(json.dumps({"data": items}, indent=1))
        paths.append(path)
    return paths[0], paths[1]


def resolve_config_path(name: str) -> Path:
    path = Path(name)
    if path.is_file():
        return path
    shipped = CONFIG_DIR / (name if name.endswith(".yaml") else f"{name}.yaml")
    if shipped.is_file():
        return shipped
    if path.is_dir():
        raise UsageError(f"config {name!r} is a folder; give a YAML file or one of "
                          f"{sorted(x.stem for x in CONFIG_DIR.glob('*.yaml'))}")
    raise FileNotFoundError(f"config {name!r} not found; give a YAML path or one of "
                            f"{sorted(x.stem for x in CONFIG_DIR.glob('*.yaml'))}")


def _train(args: argparse.Namespace) -> int:
    from .config import config_yaml, load_config  # here, not at the top: --help needs no torch

    config = load_config(resolve_config_path(args.config), args.overrides)
    if args.make_tone_data:
        train, val = write_tone_dataset(args.make_tone_data, sample_rate=config.data.sample_rate)
        print(f"wrote {train} and {val}")
        return 0
    if args.print_config:
        print(config_yaml(config), end="")
        return 0
    from .distributed import shutdown_distributed
    from .stopping import TrainingStopped
    from .trainer import Trainer

    trainer = None
    try:
        trainer = Trainer(config, resume=args.resume)
        trainer.fit()
    except TrainingStopped as stop:  # SIGTERM / Ctrl-C: a checkpoint was saved
        if trainer is None or trainer.info.is_main:
            print(f"audiosep-train: {stop}", file=sys.stderr, flush=True)
        return stop.exit_code
    finally:
        # Free the DDP reducer and its pending Gloo work while the interpreter is fully alive,
        # then leave the process group: left to interpreter shutdown, Gloo's threads can abort
        # the process ("terminate called without an active exception").
        del trainer
        gc.collect()
        shutdown_distributed()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``audiosep-train``; returns the exit status (errors: :mod:`audiosep.cli.runner`).

    A first argument ``shard`` selects the shard writer (a config file named ``shard`` is
    given as ``./shard``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["shard"]:
        shard_args = build_shard_parser().parse_args(argv[1:])
        return run_command("audiosep-train shard", lambda: _shard(shard_args),
                           interrupted="interrupted; run the same command again to continue")
    args = build_parser().parse_args(argv)
    return run_command("audiosep-train", lambda: _train(args),
                       interrupted="interrupted; resume from the last checkpoint with --resume RUN_DIR")


if __name__ == "__main__":
    raise SystemExit(main())
