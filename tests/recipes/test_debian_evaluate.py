"""The generalisation evaluation: three lists, one table. A stub model that returns half the
mixture has a closed form on 0 dB mixtures: SI-SDRi = 0 exactly and SDRi = 10 log10(2) ~ 3.01 dB
when the two sources are orthogonal (the test tones nearly are)."""
import math

import pytest
import torch
from test_debian_mixtures import _add_heldout, _dataset
from torch import nn

from audiosep.model import AudioSep
from audiosep.recipes.debian_sounds.__main__ import main
from audiosep.recipes.debian_sounds.evaluate import REPORT_FILE
from audiosep.recipes.debian_sounds.mixtures import MixtureConfig, build_benchmark


class HalfMixture(nn.Module):
    sample_rate = 32000

    def __init__(self):
        super().__init__()
        self.gain = nn.Parameter(torch.full((), 0.5))

    def embed(self, queries):
        return torch.zeros(len(queries), 1)

    def forward(self, mixture, condition):  # Tensor[B, 1, L], Tensor[B, 1] -> Tensor[B, 1, L]
        return mixture * self.gain


@pytest.fixture
def bench(tmp_path, monkeypatch):
    data = tmp_path / "data"
    _dataset(data)
    _add_heldout(data)
    build_benchmark(MixtureConfig(data=data, out=tmp_path / "bench", count=3, heldout_count=2, seed=0))
    monkeypatch.setattr(AudioSep, "from_pretrained", staticmethod(lambda *a, **k: HalfMixture()))
    return tmp_path / "bench"


def _cells(table, first):
    return [line.strip("|").split("|") for line in table.splitlines() if line.startswith(f"| {first}")]


def test_three_lists_and_per_class_rows(bench, tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["evaluate", "--bench", str(bench), "--model", "half", "--out", str(out), "--no-progress",
                 "--note", "a test"]) == 0
    table = capsys.readouterr().out
    assert (out / REPORT_FILE).read_text() == table and "a test" in table
    rows = {r[0].strip(): r for r in _cells(table, "training") + _cells(table, "held-out")}
    assert set(rows) == {"training captions", "held-out phrasings", "held-out packages"}
    assert [int(rows[n][1]) for n in rows] == [6, 6, 4]  # held-out packages: both sources held out
    for r in rows.values():
        assert abs(float(r[2]) - 10 * math.log10(2)) < 0.3 and abs(float(r[3])) < 0.01
    dog = _cells(table, "dog")[0]
    assert len(dog) == 4 and dog[3].strip().endswith("(2)")  # one dog cell per list
    for d in (out / "benchmark_train_captions", out / "benchmark_heldout_packages"):
        assert (d / "summary.json").is_file()
    # a rerun resumes (nothing left to score) and gives the same table
    assert main(["evaluate", "--bench", str(bench), "--model", "half", "--out", str(out), "--no-progress",
                 "--note", "a test"]) == 0
    assert capsys.readouterr().out == table


def test_a_folder_without_lists_is_one_line(tmp_path, capsys):
    assert main(["evaluate", "--bench", str(tmp_path), "--model", "half", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "benchmark --data DATASET --out DIR" in err
