"""``audiosep-bench``: list, run and report the benchmarks.

::

    audiosep-bench list
    audiosep-bench run clotho                                   # data in ./evaluation/data
    audiosep-bench run audioset esc50 --data-root /data/eval --model ./my-model --batch-size 8
    audiosep-bench run custom --metadata my_items.csv           # your own mixture,source,query CSV
    audiosep-bench run custom --metadata my_items_2.csv         # results in bench-results/<model>/custom-my_items_2
    audiosep-bench report bench-results/audiosep-base
    torchrun --nproc_per_node 4 -m audiosep.bench run clotho     # items split across 4 processes
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Sequence

import torch

from ..cli.runner import OneLineParser, run_command
from ..devices import default_batch_size
from ..files import atomic_path
from ..pretrained import DEFAULT_MODEL
from .checks import check_out_dir, positive_int
from .errors import BenchmarkError
from .report import markdown_table, report
from .runner import DATA_ENV, default_data_root, prepare_benchmark, run_benchmark
from .specs import BENCHMARKS, get_spec

DEFAULT_OUT = "bench-results"


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="audiosep-bench", description="Evaluate AudioSep models with the reference protocols.")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the benchmarks and the released AudioSep numbers")
    r = sub.add_parser("run", help="evaluate a model on one or more benchmarks")
    r.add_argument("names", nargs="+", metavar="NAME", help=f"benchmarks: {', '.join(BENCHMARKS)}")
    r.add_argument("--data-root", default=None,
                   help=f"folder holding <set>/ folders (default ${DATA_ENV}, else ./evaluation/data)")
    r.add_argument("--model", default=DEFAULT_MODEL, help=f"bundle name or saved model folder (default {DEFAULT_MODEL})")
    r.add_argument("--metadata", default=None,
                   help="item list CSV (one benchmark only; required for custom, whose results then go to "
                        "OUT/custom-<CSV stem>, so that runs of two CSVs never share a folder). A custom CSV has "
                        "columns mixture,source,query and optionally group, class (per-class table) and "
                        "other_source (query-swap check: is the estimate closer to its own source?)")
    r.add_argument("--limit", type=int, default=None, help="evaluate only the first N items")
    r.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    r.add_argument("--batch-size", type=int, default=None, help="items per forward pass (default 8 on GPU, 1 on CPU)")
    r.add_argument("--out", default=None,
                   help=f"results folder (default {DEFAULT_OUT}/<model>); each benchmark writes OUT/<name>/")
    r.add_argument("--no-download", action="store_true", help="never download item lists")
    r.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    rep = sub.add_parser("report", help="print the Markdown table of a results folder")
    rep.add_argument("directory")
    return p


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", Path(name).name or name).strip("-") or "model"


def _list() -> str:
    lines = []
    for s in BENCHMARKS.values():
        rel = f"  (AudioSep: SDRi {s.released['sdri']:.3f}, SI-SDR {s.released['si_sdr']:.3f})" if s.released else ""
        lines.append(f"{s.name:18s} {s.description}{rel}")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    """Under torchrun every process runs this: the items are split across them (see
    :mod:`audiosep.bench.sharding`) and rank 0 alone prints and writes the report."""
    from ..ranks import Ranks

    specs = [get_spec(n) for n in args.names]
    if args.metadata is not None and len(specs) > 1:
        raise BenchmarkError("--metadata names the item list of one benchmark; run the benchmarks one at a time")
    ranks = Ranks.from_env()
    device = str(ranks.device(args.device))
    if args.batch_size is None:
        batch_size = default_batch_size(device)
    else:
        batch_size = positive_int(args.batch_size, "--batch-size", "pass 1 or more items per forward pass")
    data_root = Path(args.data_root) if args.data_root else default_data_root()
    out = Path(args.out) if args.out else Path(DEFAULT_OUT) / _slug(args.model)
    check_out_dir(out)

    # Check every benchmark's data and item list before loading (perhaps downloading) the model.
    plans = [prepare_benchmark(spec, data_root=data_root, metadata=args.metadata, limit=args.limit,
                               download=not args.no_download) for spec in specs]
    for plan in plans:
        check_out_dir(out / plan.name)
    from ..model import AudioSep

    model = AudioSep.from_pretrained(args.model, device=device)
    ranks.join(torch.device(device))
    summaries = []
    try:
        for plan in plans:
            s = run_benchmark(plan, model, out_dir=out / plan.name, batch_size=batch_size, device=device,
                              model_name=str(args.model), progress=not args.no_progress, ranks=ranks)
            n = s["items"]
            if n["failed"] and ranks.is_main:
                print(f"{plan.name}: {n['failed']} of {n['total']} items failed (see "
                      f"{out / plan.name / 'items.csv'})", file=sys.stderr)
            summaries.append(s)
    finally:
        ranks.leave()
    if not ranks.is_main:
        return 0
    table = markdown_table(summaries)
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(report(out))
    print(table, end="")
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "list":
        print(_list())
        return 0
    if args.command == "report":
        print(report(args.directory), end="")
        return 0
    return _run(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``audiosep-bench``; returns the exit status (errors: :mod:`audiosep.cli.runner`)."""
    args = _parser().parse_args(argv)
    return run_command("audiosep-bench", lambda: _dispatch(args),
                       interrupted="interrupted; the items scored so far are kept, rerun to resume")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
