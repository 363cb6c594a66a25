"""benchmarks/bench_train.py data|memory: both sources are timed on the same clips, and the
printed ratio is the ratio of the printed rates."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_train.py"), *args], check=True,
                          capture_output=True, text=True, env=env, timeout=300).stdout


def test_data_mode_times_manifest_and_shards_on_the_same_clips():
    out = run("data", "--clips", "48", "--batch-size", "8", "--num-workers", "0", "--shard-size", "10",
              "--repeats", "1")
    rates = {name: float(rate) for name, rate in re.findall(r"(manifest|shards): +([\d.]+) clips/s", out)}
    counts = re.findall(r"\((\d+) clips in (\d+) batches of 8", out)
    assert set(rates) == {"manifest", "shards"} and counts == [("40", "5"), ("40", "5")]  # 6 batches, 1st untimed
    ratio = float(re.search(r"shards / manifest: ([\d.]+)x", out).group(1))
    assert abs(ratio - rates["shards"] / rates["manifest"]) < 0.01 + 0.01 * ratio
    assert "48 FLAC clips" in out and "(5 shards of 10)" in out


def test_memory_mode_builds_the_shard_dataset_without_the_manifest():
    out = run("memory", "--records", "20000")
    rise = {name: float(mb) for name, mb in re.findall(r"(manifest|shards): peak RSS +[\d.]+ MiB \( *\+?(-?[\d.]+) MiB", out)}
    assert "20000 records" in out and "20 shards" in out
    assert rise["manifest"] > 5 * max(rise["shards"], 1.0)  # 20 k records: ~15 MiB; the index: ~0
