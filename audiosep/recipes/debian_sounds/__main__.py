"""``python -m audiosep.recipes.debian_sounds {build,benchmark,evaluate,example}``."""
from __future__ import annotations

from pathlib import Path

from ...cli.runner import OneLineParser, run_command

PROG = "python -m audiosep.recipes.debian_sounds"


def _package_list(text: str) -> tuple[str, ...]:
    """``a,b,c`` -> ``("a", "b", "c")``; ``none`` (or an empty string) -> ``()``."""
    names = tuple(p.strip() for p in text.split(",") if p.strip())
    return () if names in ((), ("none",)) else names


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog=PROG, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="download packages and build the dataset")
    b.add_argument("--out", type=Path, required=True)
    b.add_argument("--cache", type=Path, default=None, help="where .deb files go (default: OUT/../debian_cache)")
    b.add_argument("--packages", nargs="+", default=None, help="a subset of the recipe's packages")
    b.add_argument("--phrases", type=int, default=24, help="rendered MIDI phrases per instrument")
    b.add_argument("--max-seconds", type=float, default=30.0)
    b.add_argument("--val-fraction", type=float, default=0.15)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--no-render", action="store_true", help="skip the fluidsynth instruments")
    b.add_argument("--keep-debs", action="store_true")
    b.add_argument("--heldout-packages", type=_package_list, default=None, metavar="A,B,...",
                   help="packages whose clips all go to heldout.json, never trained on (default: "
                        "split.DEFAULT_HELDOUT_PACKAGES; 'none' holds out nothing)")
    m = sub.add_parser("benchmark", help="mix validation and held-out clips into three two-source benchmark lists")
    m.add_argument("--data", type=Path, required=True, help="a folder written by `build`")
    m.add_argument("--out", type=Path, required=True)
    m.add_argument("--count", type=int, default=300)
    m.add_argument("--seconds", type=float, default=5.0)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--heldout-count", type=int, default=300, help="mixtures of the held-out-packages list")
    m.add_argument("--overwrite", action="store_true", help="replace a benchmark already in --out")
    v = sub.add_parser("evaluate", help="run a model on the three benchmark lists and print the generalisation table")
    v.add_argument("--bench", type=Path, required=True, help="a folder written by `benchmark`")
    v.add_argument("--model", required=True, help="a bundle name or save_pretrained folder")
    v.add_argument("--out", type=Path, required=True, help="results folder (one subfolder per list; resumed)")
    v.add_argument("--batch-size", type=int, default=4)
    v.add_argument("--limit", type=int, default=None, help="only the first N items of each list")
    v.add_argument("--device", default="cpu")
    v.add_argument("--note", default="", help="a line printed under the table's heading")
    v.add_argument("--no-progress", action="store_true")
    e = sub.add_parser("example", help="mix two training clips into the demo mixture shipped in examples/audio")
    e.add_argument("--data", type=Path, required=True, help="a folder written by `build`")
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--classes", nargs=2, default=["piano", "rain"], metavar="CLASS")
    e.add_argument("--seconds", type=float, default=6.0)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    return run_command(PROG, lambda: _dispatch(args))


def _dispatch(args) -> None:
    if args.command == "build":
        from .build import BuildConfig, build

        cache = args.cache or args.out.parent / "debian_cache"
        build(BuildConfig(out=args.out, cache=cache, packages=args.packages, max_seconds=args.max_seconds,
                          val_fraction=args.val_fraction, seed=args.seed, render=not args.no_render,
                          phrases_per_instrument=args.phrases, keep_debs=args.keep_debs,
                          heldout_packages=args.heldout_packages))
    elif args.command == "evaluate":
        from .evaluate import evaluate

        print(evaluate(args.bench, args.model, args.out, batch_size=args.batch_size, limit=args.limit,
                       device=args.device, progress=not args.no_progress, note=args.note), end="")
    elif args.command == "example":
        from .example import ExampleConfig, build_example

        print(build_example(ExampleConfig(data=args.data, out=args.out, classes=tuple(args.classes),
                                          seconds=args.seconds, seed=args.seed, overwrite=args.overwrite)))
    else:
        from .mixtures import MixtureConfig, build_benchmark

        print(build_benchmark(MixtureConfig(data=args.data, out=args.out, count=args.count, seconds=args.seconds,
                                            seed=args.seed, heldout_count=args.heldout_count,
                                            overwrite=args.overwrite)).parent)

if __name__ == "__main__":
    raise SystemExit(main())
