"""``audiosep-bench run`` split across two Gloo processes gives the summary one process gives, and
per-rank results files resume."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from bench_helpers import SR, IdentityModel, tiny_model, write_csv, write_wav
from rank_jobs import finish, start_ranks

from audiosep.bench import cli, run_benchmark
from audiosep.bench.sharding import fold_rank_results, rank_results_path
from audiosep.ranks import shard

N = 2000


def tone(hz: float, gain: float) -> np.ndarray:
    return gain * np.sin(2 * math.pi * hz * np.arange(N) / SR)


def make_bench(root: Path) -> Path:
    """Three mixtures of two tones, two items each (with the other source and a class), and one
    item whose mixture is not audio (a failed row)."""
    rows = []
    for k, gain in enumerate((0.05, 0.1, 0.2)):
        low, high = tone(250, gain), tone(1000, 0.1)
        write_wav(root / f"mix{k}.wav", low + high)
        write_wav(root / f"low{k}.wav", low)
        write_wav(root / f"high{k}.wav", high)
        rows.append([f"mix{k}.wav", f"low{k}.wav", "a low hum", f"high{k}.wav", "hum"])
        rows.append([f"mix{k}.wav", f"high{k}.wav", "a high whistle", f"low{k}.wav", "whistle"])
    (root / "broken.wav").write_bytes(b"not audio")
    rows.append(["broken.wav", "low0.wav", "a low hum", "high0.wav", "hum"])
    return write_csv(root / "items.csv", ["mixture", "source", "query", "other_source", "class"], rows)


def per_item(folder: Path) -> dict[str, dict[str, str]]:
    with open(folder / "items.csv", newline="") as f:
        return {r["key"]: r for r in csv.DictReader(f)}


def comparable(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in ("date", "versions")}


def assert_same_numbers(a, b, where=""):
    """Equal structures, floats within 1e-4 (the processes may sum in another thread layout)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            assert_same_numbers(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, list):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_numbers(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, abs=1e-4, nan_ok=True), where
    else:
        assert a == b, where


def test_two_gloo_ranks_merge_into_the_one_process_summary(tmp_path, capsys):
    meta = make_bench(tmp_path / "bench")
    model_dir = tiny_model().save_pretrained(tmp_path / "tiny")
    args = ["run", "custom", "--metadata", str(meta), "--model", str(model_dir), "--device", "cpu", "--no-progress",
            "--batch-size", "1"]
    assert cli.main([*args, "--out", str(tmp_path / "single")]) == 0
    single_table = capsys.readouterr().out
    results = finish(start_ranks(lambda rank: ["-m", "audiosep.bench", *args, "--out", tmp_path / "two"]))
    assert [r[0] for r in results] == [0, 0], results
    assert results[1][1] == ""  # the table comes from rank 0 only
    single, two = tmp_path / "single" / "custom-items", tmp_path / "two" / "custom-items"
    assert sorted(p.name for p in two.iterdir()) == ["items.csv", "run.json", "summary.json"]  # rank files folded
    one_summary = json.loads((single / "summary.json").read_text())
    two_summary = json.loads((two / "summary.json").read_text())
    assert two_summary["items"] == {"total": 7, "scored": 6, "failed": 1, "missing": 0, "groups": None}
    assert_same_numbers(comparable(two_summary), comparable(one_summary))
    rows_one, rows_two = per_item(single), per_item(two)
    keys = sorted(rows_one, key=int)  # item-list order (a custom item's key is its row number)
    # folded rank by rank: rank 0's items (0, 2, 4, 6), then rank 1's
    assert [set(list(rows_two)[:4]), set(list(rows_two)[4:])] == [set(shard(keys, 0, 2)), set(shard(keys, 1, 2))]
    assert rows_two.keys() == rows_one.keys() and len(rows_two) == 7
    for key, row in rows_one.items():
        assert_same_numbers({k: float(v) if v and k in ("sdr", "sdri", "si_sdr", "sdr_other") else v
                             for k, v in rows_two[key].items()},
                            {k: float(v) if v and k in ("sdr", "sdri", "si_sdr", "sdr_other") else v
                             for k, v in row.items()}, key)
    assert results[0][1].splitlines()[2].split("|")[1:5] == single_table.splitlines()[2].split("|")[1:5]


def test_rank_files_of_an_interrupted_run_are_folded_and_not_scored_again(tmp_path):
    meta = make_bench(tmp_path / "bench")
    full = run_benchmark("custom", IdentityModel(), out_dir=tmp_path / "full", metadata=meta, progress=False)
    rows = per_item(tmp_path / "full")
    # an interrupted 3-process run left rank 0 with two rows and rank 2 with one (of its items)
    out = tmp_path / "resumed"
    keys = list(rows)
    columns = list(next(iter(rows.values())))
    for rank, picked in ((0, shard(keys, 0, 3)[:2]), (2, shard(keys, 2, 3)[:1])):
        write_csv(rank_results_path(out, rank), columns, [[rows[k][c] for c in columns] for k in picked])
    (out / "run.json").write_text((tmp_path / "full" / "run.json").read_text())
    model = IdentityModel()
    resumed = run_benchmark("custom", model, out_dir=out, metadata=meta, progress=False)
    assert len(model.batches) == 6 - 3  # the broken item fails at loading, before the model
    assert not list(out.glob("items.rank-*"))
    assert comparable(resumed) == comparable(full)
    assert per_item(out) == rows


def test_fold_keeps_the_later_row_of_an_item(tmp_path):
    columns = ["key", "query", "group", "sdr", "error"]
    write_csv(tmp_path / "items.csv", columns, [["a", "q", "", "", "ValueError: unreadable"]])
    write_csv(rank_results_path(tmp_path, 1), columns, [["a", "q", "", "3.5", ""], ["b", "q", "", "1.0", ""]])
    assert fold_rank_results(tmp_path, "items.csv", columns) == 2
    assert fold_rank_results(tmp_path, "items.csv", columns) == 0
    rows = per_item(tmp_path)
    assert rows["a"]["sdr"] == "3.5" and rows["a"]["error"] == "" and rows["b"]["sdr"] == "1.0"
