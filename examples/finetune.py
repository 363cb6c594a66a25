"""Fine-tune a pretrained model on your own clips for a few steps.

    python examples/finetune.py --train my_clips.json --val my_val.json --steps 200 --out runs/finetuned

Starts from ``--init-from`` (default: the library's default model; any bundle name, folder
written by ``AudioSep.save_pretrained`` or separation-network checkpoint), trains with the
shipped ``offline_small`` recipe (or ``--config PATH``) and writes ``<out>/final/``, a folder
``AudioSep.from_pretrained`` (and ``separate(..., model=...)``) loads.

Manifests are what ``audiosep-train`` reads: the reference JSON
(``{"data": [{"wav": "clips/a.wav", "caption": "a dog barking"}]}``), JSONL or CSV
(``path,caption[,labels]``); relative paths are relative to the manifest. Mixtures are made on
the fly from pairs of clips, so at least ``--batch-size`` training clips are needed.

The recipe is adapted to fine-tuning: the network shape, sample rate and query encoder are the
starting model's (the config's ``model`` section is replaced), the learning rate is lower
(``--lr``, default 1e-4), warm-up is a tenth of the steps and the schedule spans ``--steps``.
Any other key can be changed with ``--set key.sub=value`` (as for ``audiosep-train``).

With ``--val``, validation SDRi / SI-SDR on fixed validation mixtures is printed before and
after training.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Sequence

from audiosep import AudioSep
from audiosep.train.cli import resolve_config_path
from audiosep.train.config import load_config
from audiosep.train.trainer import Trainer


def starting_model(init_from: str) -> AudioSep | None:
    """The model to start from, or None when ``init_from`` is a bare network checkpoint (then the
    query encoder comes from the config)."""
    path = Path(init_from)
    if path.exists() and not (path / "config.json").is_file():
        return None  # a checkpoint file or a reference-layout folder: network only
    return AudioSep.from_pretrained(init_from)


def finetune_overrides(args: argparse.Namespace, init_from: str, model: AudioSep | None) -> list[str]:
    """``--set``-style overrides that turn a training recipe into this fine-tuning run."""
    sets = [
        f"data.train_manifests={json.dumps([str(Path(p).resolve()) for p in args.train])}",
        f"data.val_manifests={json.dumps([str(Path(p).resolve()) for p in args.val or []])}",
        f"training.init_from={json.dumps(init_from)}",
        f"training.steps={args.steps}",
        f"training.out_dir={json.dumps(str(args.out))}",
        f"optim.lr={args.lr}",
        f"schedule.warmup_steps={args.steps // 10}",
    ]
    if model is not None:  # train the starting network's shape, at its rate, with its encoder
        net_cfg = model.separation_net.config.to_dict()
        sets += [f"model={json.dumps(net_cfg)}", f"data.sample_rate={model.sample_rate}",
                 f"query_encoder={json.dumps(model.query_encoder.config_dict())}"]
    if args.batch_size:
        sets.append(f"data.batch_size={args.batch_size}")
    if args.segment_seconds:
        sets.append(f"data.segment_seconds={args.segment_seconds}")
    if args.device:
        sets.append(f"training.device={args.device}")
    return sets + list(args.overrides)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", nargs="+", required=True, metavar="MANIFEST", help="training manifest(s)")
    parser.add_argument("--val", nargs="+", metavar="MANIFEST", help="validation manifest(s)")
    parser.add_argument("--init-from", default=None,
                        help="bundle name, model folder or checkpoint to start from (default: the library's model)")
    parser.add_argument("--config", default="offline_small", help="shipped config name or YAML path (default offline_small)")
    parser.add_argument("--steps", type=int, default=200, help="optimizer steps (default 200)")
    parser.add_argument("--lr", type=float, default=1e-4, help="peak learning rate (default 1e-4)")
    parser.add_argument("--batch-size", type=int, default=None, help="clips per step (default: the config's)")
    parser.add_argument("--segment-seconds", type=float, default=None, help="clip length (default: the config's)")
    parser.add_argument("--device", default=None, help="cpu, cuda or auto (default: the config's)")
    parser.add_argument("--out", default="runs/finetuned", help="run folder (default runs/finetuned)")
    parser.add_argument("--resume", default=None, metavar="PATH|auto",
                        help="continue a stopped run: its folder, a checkpoint, or auto (the --out folder's "
                             "latest checkpoint if any); without it a used --out folder is refused")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="any other config override, e.g. --set training.val_every=50")
    args = parser.parse_args(argv)

    from audiosep.pretrained import DEFAULT_MODEL

    init_from = args.init_from or DEFAULT_MODEL
    if Path(init_from).exists():
        init_from = str(Path(init_from).resolve())  # a folder or file, not a bundle name
    model = starting_model(init_from)
    config = load_config(resolve_config_path(args.config), finetune_overrides(args, init_from, model))
    trainer = Trainer(config, resume=args.resume, query_encoder=model.query_encoder if model is not None else None)
    del model  # the trainer loaded its own copy of the weights from training.init_from

    before = trainer.validate()  # {} without validation clips
    summary = trainer.fit()
    after = summary.last_val or trainer.validate()
    if before:
        print(f"{'':12} {'before':>8} {'after':>8}")
        for key in before:
            print(f"{key:12} {before[key]:8.3f} {after.get(key, float('nan')):8.3f}")
    print(f"fine-tuned model: {summary.final_dir}")
    return {"final_dir": Path(summary.final_dir), "before": before, "after": after, "summary": summary}


if __name__ == "__main__":
    from audiosep.cli.runner import run_command

    raise SystemExit(run_command("finetune.py", lambda: main() and 0))  # bad input: one line, exit 2
