"""The benchmark builder: 0 dB SNR, two rows per mixture, seeded; the training-caption,
held-out-phrasing and held-out-package lists."""
import csv
import json

import numpy as np
import pytest
import soundfile as sf

from audiosep.errors import UsageError
from audiosep.recipes.debian_sounds.labels import CLASS_BY_NAME
from audiosep.recipes.debian_sounds.mixtures import (COLUMNS, HELDOUT_PACKAGES, HELDOUT_PHRASINGS, TRAIN_CAPTIONS,
                                                     MixtureConfig, build_benchmark, heldout_phrasings, mix_pair)

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
    para = _rows(out / HELDOUT_PHRASINGS)
    assert [(r["mixture"], r["source"]) for r in para] == [(r["mixture"], r["source"]) for r in rows]
    for r in para:
        spec = CLASS_BY_NAME[r["class"]]
        assert r["query"] in heldout_phrasings(r["class"]) and r["query"] not in spec.captions
    assert csv_path.name == TRAIN_CAPTIONS
    assert _rows(out / "benchmark.csv") == rows and _rows(out / "benchmark_paraphrased.csv") == para  # old names
    assert not (out / HELDOUT_PACKAGES).exists()  # this dataset has no heldout.json
    again = build_benchmark(MixtureConfig(data=data, out=tmp_path / "again", count=6, seconds=5.0, seed=1))
    assert _rows(again) == rows
    assert np.array_equal(sf.read(out / "mixtures/0003.wav")[0], sf.read(tmp_path / "again/mixtures/0003.wav")[0])


def test_cli_benchmark_command(tmp_path):
    from audiosep.recipes.debian_sounds.__main__ import main

    _dataset(tmp_path / "data")
    assert main(["benchmark", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "b"), "--count", "3"]) == 0
    assert len(_rows(tmp_path / "b" / "benchmark.csv")) == 6


def _dominant_hz(x):
    return np.argmax(np.abs(np.fft.rfft(x))) * SR / len(x)


def _add_heldout(root):
    """Held-out clips: dog at 450 Hz and piano at 700 Hz (the validation clips are at 300 / 520 Hz)."""
    items = []
    for label, freq in (("dog", 450), ("piano", 700)):
        rel = f"audio/{label}/held.flac"
        sf.write(root / rel, 0.3 * np.sin(2 * np.pi * freq * np.arange(6 * SR) / SR), SR)
        items.append({"wav": rel, "caption": label, "labels": [label]})
    (root / "heldout.json").write_text(json.dumps({"data": items}))


def test_heldout_packages_list_queries_only_held_out_sources(tmp_path):
    data = tmp_path / "data"
    _dataset(data)
    plain = build_benchmark(MixtureConfig(data=data, out=tmp_path / "plain", count=4, heldout_count=5, seed=2))
    _add_heldout(data)
    out = tmp_path / "bench"
    build_benchmark(MixtureConfig(data=data, out=out, count=4, heldout_count=5, seed=2))
    assert _rows(out / TRAIN_CAPTIONS) == _rows(plain)  # the validation lists do not depend on heldout.json
    rows = _rows(out / HELDOUT_PACKAGES)
    assert len(rows) == 10 and {r["mixture"] for r in rows} == {f"mixtures/heldout_{k:04d}.wav" for k in range(5)}
    for r in rows:
        assert r["query"] == CLASS_BY_NAME[r["class"]].captions[0]
        src, _ = sf.read(out / r["source"])
        assert abs(_dominant_hz(src) - {"dog": 450, "piano": 700}[r["class"]]) < 2  # the held-out recording
        m, _ = sf.read(out / r["mixture"])
        other, _ = sf.read(out / r["other_source"])
        assert np.allclose(m, src + other, atol=1e-5)


def test_heldout_packages_list_with_one_held_out_class_mixes_against_validation(tmp_path):
    data = tmp_path / "data"
    _dataset(data)
    _add_heldout(data)
    doc = json.loads((data / "heldout.json").read_text())
    (data / "heldout.json").write_text(json.dumps({"data": doc["data"][:1]}))  # dog only
    out = tmp_path / "bench"
    build_benchmark(MixtureConfig(data=data, out=out, count=2, heldout_count=4, seed=0))
    rows = _rows(out / HELDOUT_PACKAGES)
    assert len(rows) == 4 and {r["class"] for r in rows} == {"dog"}  # the validation partner is not queried
    for r in rows:
        other, _ = sf.read(out / r["other_source"])
        assert round(_dominant_hz(other)) in (520, 1200)  # a validation clip of another class


def test_second_run_into_the_same_folder_is_refused_unless_overwrite(tmp_path, capsys):
    from audiosep.recipes.debian_sounds.__main__ import main

    _dataset(tmp_path / "data")
    cfg = MixtureConfig(data=tmp_path / "data", out=tmp_path / "b", count=2)
    build_benchmark(cfg)
    with pytest.raises(UsageError, match="already holds a benchmark"):
        build_benchmark(cfg)
    argv = ["benchmark", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "b"), "--count", "3"]
    assert main(argv) == 2 and "--overwrite" in capsys.readouterr().err
    assert main(argv + ["--overwrite"]) == 0 and len(_rows(tmp_path / "b" / TRAIN_CAPTIONS)) == 6
