"""Load time of :func:`audiosep.weight_files.load_torch_file` against ``torch.load(weights_only=True)``.

Writes a state dict of ``--megabytes`` MB (float32 tensors of 1 M elements plus small ones, as a
checkpoint holds) in the zip and the legacy layout to a temporary folder, loads each file
``--repeats`` times with both loaders (taking turns, after one warm-up read each), and prints the
best time of each and their ratio (ours / torch's; below 1 is faster). The two results are
checked to be equal.

Usage::

    python benchmarks/bench_weight_files.py                  # 200 MB, 5 repeats
    python benchmarks/bench_weight_files.py --megabytes 50
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from audiosep.weight_files import load_torch_file


def best_times(loaders: dict, repeats: int) -> dict[str, float]:
    """Best wall time of each loader, the loaders taking turns (so both see the same cache state)."""
    times: dict[str, list[float]] = {name: [] for name in loaders}
    for _ in range(repeats):
        for name, load in loaders.items():
            start = time.perf_counter()
            result = load()
            times[name].append(time.perf_counter() - start)
            del result
    return {name: min(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    gen = torch.Generator().manual_seed(0)
    big = max(1, args.megabytes // 4)
    state = {f"layer{i}.weight": torch.randn(1 << 20, generator=gen) for i in range(big)}
    state.update({f"layer{i}.bias": torch.randn(64, generator=gen) for i in range(big)})
    with tempfile.TemporaryDirectory() as tmp:
        for layout, kwargs in (("zip", {}), ("legacy", {"_use_new_zipfile_serialization": False})):
            path = Path(tmp) / f"{layout}.pt"
            torch.save({"state_dict": state}, path, **kwargs)
            ours, theirs = load_torch_file(path), torch.load(path, weights_only=True)  # warm-up
            assert all(torch.equal(ours["state_dict"][k], v) for k, v in theirs["state_dict"].items())
            best = best_times({"ours": lambda: load_torch_file(path),
                               "torch": lambda: torch.load(path, weights_only=True)}, args.repeats)
            t_ours, t_torch = best["ours"], best["torch"]
            print(f"{layout:6s} {path.stat().st_size / 1e6:7.1f} MB: load_torch_file {t_ours:.3f} s, "
                  f"torch.load(weights_only=True) {t_torch:.3f} s, ratio {t_ours / t_torch:.2f}")


if __name__ == "__main__":
    main()
