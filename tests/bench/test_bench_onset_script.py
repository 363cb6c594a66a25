"""benchmarks/bench_onset.py: picks the sparse targets, rotates each item to move the onset, scores them."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bench_helpers import SR, load_benchmark_script, tiny_model, write_csv, write_wav


def load_script():
    return load_benchmark_script("bench_onset")


def table(text: str) -> dict[float, tuple[float, float]]:
    rows = [line.split() for line in text.splitlines() if line.strip()[:1] in "0123456789"]
    return {float(r[0]): (float(r[1]), float(r[2])) for r in rows if len(r) == 3}


def make_bench(folder: Path) -> Path:
    rng = np.random.default_rng(0)
    t = np.arange(3 * SR) / SR
    hit = np.zeros_like(t)
    hit[int(1.5 * SR): int(1.6 * SR)] = 0.5 * np.sin(2 * np.pi * 440 * t[: int(0.1 * SR)])  # onset at 1.5 s
    tone = 0.1 * np.sin(2 * np.pi * 300 * t)  # dense: excluded
    noise = 0.05 * rng.standard_normal(len(t))
    for name, x in {"hit": hit, "tone": tone, "m1": hit + noise, "m2": tone + noise}.items():
        write_wav(folder / f"{name}.wav", x)
    return write_csv(folder / "items.csv", ["mixture", "source", "query"],
                     [["m1.wav", "hit.wav", "a hit"], ["m2.wav", "tone.wav", "a tone"]])


def test_activity_and_onset():
    script = load_script()
    x = np.zeros(SR)
    x[8000:8800] = 1.0  # 50 ms of 1 s
    assert script.activity(x, SR) == pytest.approx(0.05, abs=0.021)
    assert script.onset(x) == 8000
    assert script.activity(np.ones(SR), SR) == 1.0


def test_scores_the_sparse_item_at_each_onset(tmp_path, capsys):
    from audiosep import separate

    script = load_script()
    meta = make_bench(tmp_path / "bench")
    model = tiny_model()
    folder = model.save_pretrained(tmp_path / "model")
    script.main(["--metadata", str(meta), "--model", str(folder), "--onsets", "0", "1.5", "--no-progress"])
    out = capsys.readouterr().out
    assert "1 items with a sparse target" in out  # the full-length tone is not sparse
    scores = table(out)
    assert set(scores) == {0.0, 1.5}
    import soundfile as sf
    mix, _ = sf.read(tmp_path / "bench" / "m1.wav", dtype="float64")
    src, _ = sf.read(tmp_path / "bench" / "hit.wav", dtype="float64")
    sdr_mix = 10 * np.log10(np.sum(src ** 2) / np.sum((src - mix) ** 2))
    for d, shift in ((1.5, 0), (0.0, -int(1.5 * SR))):  # 1.5 s: the item as it is; 0 s: rotated to the start
        m, s = np.roll(mix, shift), np.roll(src, shift)
        est = np.asarray(separate(m.astype(np.float32), "a hit", sample_rate=SR, model=model).audio).reshape(-1)
        sdr = 10 * np.log10(np.sum(s ** 2) / np.sum((s - est) ** 2))
        assert scores[d] == pytest.approx((sdr, sdr - sdr_mix), abs=0.011)


def test_bad_onsets_are_refused(tmp_path):
    script = load_script()
    with pytest.raises(SystemExit, match="--onsets must be >= 0"):
        script.main(["--metadata", str(tmp_path / "x.csv"), "--onsets", "-1"])
    meta = make_bench(tmp_path / "bench")
    with pytest.raises(SystemExit, match="not longer than the largest onset"):
        script.main(["--metadata", str(meta), "--model", str(tiny_model().save_pretrained(tmp_path / "m")),
                     "--onsets", "3", "--no-progress"])


def test_a_source_at_another_rate_than_its_mixture_is_refused(tmp_path):
    import soundfile as sf

    meta = make_bench(tmp_path / "bench")
    x, _ = sf.read(tmp_path / "bench" / "hit.wav", dtype="float32")
    write_wav(tmp_path / "bench" / "hit.wav", x[::2], sr=SR // 2)
    with pytest.raises(ValueError, match=rf"hit.wav is at {SR // 2} Hz but its mixture at {SR} Hz; resample one"):
        load_script().sparse_items(meta, 0.2)
