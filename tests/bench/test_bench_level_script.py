"""benchmarks/bench_level.py: scores at several input gains, resumable folders, a table."""
from __future__ import annotations

import dataclasses

import pytest
from bench_helpers import load_benchmark_script, pair, tiny_model, write_csv, write_wav


def load_script():
    return load_benchmark_script("bench_level")


def table(text: str) -> dict[float, float]:
    """gain -> SDRi from the printed table."""
    rows = [line.split() for line in text.splitlines() if line.strip()[:1] in "+-0123456789"]
    return {float(r[0]): float(r[1]) for r in rows if len(r) >= 3}


@pytest.mark.parametrize("level", [None, -26.0])
def test_scores_follow_the_gain_unless_the_network_normalises_its_input(level, tmp_path, capsys):
    mix, src = pair(0.0)
    write_wav(tmp_path / "bench" / "m.wav", mix)
    write_wav(tmp_path / "bench" / "s.wav", src)
    meta = write_csv(tmp_path / "bench" / "items.csv", ["mixture", "source", "query"], [["m.wav", "s.wav", "a tone"]])
    model = tiny_model()
    model.separation_net.config = dataclasses.replace(model.separation_net.config, input_level_db=level,
                                                      mask_exponent=0.7)
    folder = model.save_pretrained(tmp_path / "model")
    args = ["--metadata", str(meta), "--model", str(folder), "--gains", "-30", "0", "--out", str(tmp_path / "out")]
    load_script().main(args)
    out = capsys.readouterr().out
    assert f"input_level_db {level}, mask_exponent 0.7," in out  # the header names both inference settings
    scores = table(out)
    assert set(scores) == {-30.0, 0.0}
    assert (tmp_path / "out" / "gain-30dB" / "items.csv").is_file() and (tmp_path / "out" / "gain+0dB").is_dir()
    if level is None:
        assert abs(scores[-30.0] - scores[0.0]) > 0.01
    else:
        assert scores[-30.0] == pytest.approx(scores[0.0], abs=0.01)
    load_script().main(args)  # a rerun resumes the finished folders and prints the same table
    assert table(capsys.readouterr().out) == scores
