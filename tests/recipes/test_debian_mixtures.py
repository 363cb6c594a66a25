"""The validation benchmark builder: 0 dB SNR, two rows per mixture, seeded, paraphrase CSV."""
import csv
import json

import numpy as np
import soundfile as sf

from audiosep.recipes.debian_sounds.labels import CLASS_BY_NAME
from audiosep.recipes.debian_sounds.mixtures import COLUMNS, MixtureConfig, build_benchmark, mix_pair

SR = 32000


def _dataset(root):
    rng = np.random.default_rng(0)
    items = []
    for label, freq in (("dog", 300), ("rain", 1200), ("piano", 520), ("bell", 2000)):
        for k in range(2):
            rel = f"audio/{label}/{k}.flac"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            n = int(SR * (3.0 if k else 7.0))  # one shorter and one longer than 5 s
            n = n if label != "bell" else SR // 2  # bell: 1 s in all, too little to be used
            x = (0.05 + 0.3 * k) * np.sin(2 * np.pi * freq * np.arange(n) / SR) + 0.01 * rng.standard_normal(n)
            sf.write(root / rel, x, SR)
            items.append({"wav": rel, "caption": label, "labels": [label]})
    (root / "val.json").write_text(json.dumps({"data": items}))


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_mix_pair_is_energy_matched_and_sums():
    a = np.sin(np.linspace(0, 100, 1000)).astype(np.float32)
    b = 5 * np.cos(np.linspace(0, 37, 1000)).astype(np.float32)
    m, a2, b2 = mix_pair(a, b)
    assert abs(10 * np.log10(np.sum(a2 ** 2) / np.sum(b2 ** 2))) < 1e-4
    assert np.allclose(m, a2 + b2, atol=1e-6) and np.max(np.abs(m)) <= 0.9 + 1e-6


def test_benchmark_files_and_csvs(tmp_path):
    data, out = tmp_path / "data", tmp_path / "bench"
    _dataset(data)
    csv_path = build_benchmark(MixtureConfig(data=data, out=out, count=6, seconds=5.0, seed=1))
    rows = _rows(csv_path)
    assert tuple(rows[0]) == COLUMNS and len(rows) == 12
    assert {r["class"] for r in rows} <= {"dog", "rain", "piano"}
    for k in range(6):
        pair = [r for r in rows if r["mixture"] == f"mixtures/{k:04d}.wav"]
        assert len(pair) == 2 and pair[0]["class"] != pair[1]["class"]
        assert pair[0]["source"] == pair[1]["other_source"]
        m, sr = sf.read(out / pair[0]["mixture"])
        a, _ = sf.read(out / pair[0]["source"])
        b, _ = sf.read(out / pair[1]["source"])
        assert sr == SR and len(m) == 5 * SR
        assert abs(10 * np.log10(np.sum(a ** 2) / np.sum(b ** 2))) < 0.01  # 0 dB SNR
        assert np.allclose(m, a + b, atol=1e-5)
        for r in pair:
            assert r["query"] == CLASS_BY_NAME[r["class"]].captions[0]
    para = _rows(out / "benchmark_paraphrased.csv")
    assert [(r["mixture"], r["source"]) for r in para] == [(r["mixture"], r["source"]) for r in rows]
    for r in para:
        spec = CLASS_BY_NAME[r["class"]]
        assert r["query"] in spec.heldout and r["query"] not in spec.captions
    again = build_benchmark(MixtureConfig(data=data, out=tmp_path / "again", count=6, seconds=5.0, seed=1))
    assert _rows(again) == rows
    assert np.array_equal(sf.read(out / "mixtures/0003.wav")[0], sf.read(tmp_path / "again/mixtures/0003.wav")[0])


def test_cli_benchmark_command(tmp_path):
    from audiosep.recipes.debian_sounds.__main__ import main

    _dataset(tmp_path / "data")
    main(["benchmark", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "b"), "--count", "3"])
    assert len(_rows(tmp_path / "b" / "benchmark.csv")) == 6
