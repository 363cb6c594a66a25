"""The query-swap check and the per-class table of custom item lists, against hand computation.

Each mixture holds a low tone (200 Hz) and a high tone (1 kHz), orthogonal over the item (integer
cycles), so an ideal band filter separates them exactly and every score has a closed form.
"""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch
from bench_helpers import IdentityModel, interrupt_scoring_after, write_csv, write_wav
from torch import nn

import audiosep.bench.runner
from audiosep.bench import MetadataError, cli, markdown_table, prepare_benchmark, run_benchmark
from audiosep.bench.aggregate import per_class, query_swap
from audiosep.bench.results import BASE_COLUMNS
from audiosep.model import AudioSep

SR, N = 16000, 4000  # 0.25 s: 50 cycles of 200 Hz, 250 cycles of 1 kHz
LOW_HZ, HIGH_HZ = 200, 1000
# (low class, high class, level of the low tone relative to the high one in dB)
MIXTURES = [("hum", "whistle", 0.0), ("buzz", "whistle", 12.0), ("hum", "whistle", -6.0)]
QUERY = {"hum": "a low hum", "buzz": "a low buzz", "whistle": "a high whistle"}


class BandModel(nn.Module):
    """Keeps the queried band ("low"/"high" in the query) and ``leak`` times the other one;
    ``swap=True`` keeps the other band instead (a model that confuses the two queries)."""

    sample_rate = SR

    def __init__(self, leak: float = 0.0, swap: bool = False) -> None:
        super().__init__()
        self.leak, self.swap = leak, swap
        self.gain = nn.Parameter(torch.ones(()))  # something for the weights digest
        self.separated = 0

    def embed(self, queries):
        return torch.tensor([[float("high" in q)] for q in queries])  # [N, 1]: 1 = high band

    def forward(self, mixture, condition):  # Tensor[B, 1, L], Tensor[B, 1] -> Tensor[B, 1, L]
        self.separated += mixture.shape[0]
        spec = torch.fft.rfft(mixture.double(), dim=-1)
        freqs = torch.fft.rfftfreq(mixture.shape[-1], 1 / SR)
        high = condition[:, :, None].double() != float(self.swap)  # [B, 1, 1]: the band to keep
        is_high_bin = (freqs > (LOW_HZ + HIGH_HZ) / 2)[None, None]  # [1, 1, F]
        mask = torch.where(is_high_bin == high, 1.0, self.leak).double()
        return torch.fft.irfft(spec * mask, n=mixture.shape[-1], dim=-1).float() * self.gain


def tone(hz: float, level_db: float) -> np.ndarray:
    return 0.1 * 10 ** (level_db / 20) * np.sin(2 * math.pi * hz * np.arange(N) / SR)


def make_bench(root, name="benchmark.csv", paraphrase=False):
    """Two rows per mixture (low source, then high source), as the Debian-sounds recipe writes them."""
    rows = []
    for k, (low_cls, high_cls, level) in enumerate(MIXTURES):
        low, high = tone(LOW_HZ, level), tone(HIGH_HZ, 0.0)
        write_wav(root / "mixtures" / f"{k}.wav", low + high)
        write_wav(root / "sources" / f"{k}_a.wav", low)
        write_wav(root / "sources" / f"{k}_b.wav", high)
        for cls, own, other in ((low_cls, "a", "b"), (high_cls, "b", "a")):
            query = QUERY[cls] + (" sound" if paraphrase else "")
            rows.append([f"mixtures/{k}.wav", f"sources/{k}_{own}.wav", query, f"sources/{k}_{other}.wav", cls, cls])
    return write_csv(root / name, ["mixture", "source", "query", "other_source", "class", "group"], rows)


def expected_item(level_db: float, leak: float) -> dict[str, float]:
    """Closed-form scores of the item whose own source is ``level_db`` above the other one."""
    rho = 10 ** (level_db / 10)  # own / other power
    sdr = level_db - 20 * math.log10(leak)  # est - own = leak * other
    sdr_other = -10 * math.log10(rho + (1 - leak) ** 2)  # est - other = own - (1 - leak) other
    return {"sdr": sdr, "sdri": sdr - level_db, "si_sdr": sdr, "sdr_other": sdr_other, "own_closer": sdr > sdr_other}


def expected_items(leak: float) -> list[tuple[str, int, dict[str, float]]]:
    out = []
    for k, (low_cls, high_cls, level) in enumerate(MIXTURES):
        out.append((low_cls, k, expected_item(level, leak)))
        out.append((high_cls, k, expected_item(-level, leak)))
    return out


def items_csv(out):
    with open(out / "items.csv", newline="") as f:
        return list(csv.DictReader(f))


def run(meta, out, model, **kw):
    return run_benchmark("custom", model, out_dir=out, metadata=meta, progress=False, **kw)


def test_oracle_always_closer_to_its_own_source_and_swapped_model_never(tmp_path):
    meta = make_bench(tmp_path / "bench")
    oracle = run(meta, tmp_path / "oracle", BandModel())["query_swap"]
    assert oracle["own_closer"] == 1.0 and oracle["n"] == 6
    assert oracle["mixtures"] == 3 and oracle["mixtures_all_own_closer"] == 1.0
    swapped = run(meta, tmp_path / "swapped", BandModel(swap=True))
    assert swapped["query_swap"]["own_closer"] == 0.0 and swapped["query_swap"]["mixtures_all_own_closer"] == 0.0
    assert [c["own_closer"] for c in swapped["per_class"]] == [0.0, 0.0, 0.0]
    rows = items_csv(tmp_path / "swapped")
    assert {r["own_closer"] for r in rows} == {"0"} and all(float(r["sdr_other"]) > 60 for r in rows)


def test_mixture_as_estimate_scores_the_other_source_as_the_mirror_image(tmp_path):
    # estimate = mixture: sdr = level, sdr_other = -level; equal (0 dB) for the 0 dB mixture
    meta = make_bench(tmp_path / "bench")
    run(meta, tmp_path / "out", IdentityModel())
    rows = items_csv(tmp_path / "out")
    for (_, k, _), row in zip(expected_items(0.5), rows):
        assert float(row["sdr_other"]) == pytest.approx(-float(row["sdr"]), abs=1e-4)
    assert float(rows[0]["sdr"]) == pytest.approx(float(rows[0]["sdr_other"]), abs=1e-4)
    assert float(rows[2]["sdr"]) == pytest.approx(12.0, abs=1e-4) and rows[2]["own_closer"] == "1"
    assert rows[3]["own_closer"] == "0"


def test_leaky_model_per_class_table_and_swap_rate_match_hand_computation(tmp_path):
    meta = make_bench(tmp_path / "bench")
    s = run(meta, tmp_path / "out", BandModel(leak=0.5), batch_size=4)
    expected = expected_items(0.5)
    rows = items_csv(tmp_path / "out")
    assert [r["class"] for r in rows] == [cls for cls, _, _ in expected]
    for (_, _, e), r in zip(expected, rows):
        for m in ("sdr", "sdri", "si_sdr", "sdr_other"):
            assert float(r[m]) == pytest.approx(e[m], abs=1e-3), m
        assert r["own_closer"] == str(int(e["own_closer"]))
    # by hand: own closer for levels 0, 0, +12, +6 dB, not for -12 and -6 dB
    assert s["query_swap"]["own_closer"] == pytest.approx(4 / 6) and s["query_swap"]["n"] == 6
    assert s["query_swap"]["mixtures_all_own_closer"] == pytest.approx(1 / 3)
    margins = [e["sdr"] - e["sdr_other"] for _, _, e in expected]
    assert s["query_swap"]["margin"] == pytest.approx(np.mean(margins), abs=1e-3)
    table = {c["class"]: c for c in s["per_class"]}
    assert [c["class"] for c in s["per_class"]] == ["buzz", "hum", "whistle"]
    for cls in table:
        mine = [e for c, _, e in expected if c == cls]
        assert table[cls]["n"] == len(mine)
        assert table[cls]["sdri"] == pytest.approx(20 * math.log10(2), abs=1e-3)
        assert table[cls]["si_sdr"] == pytest.approx(np.mean([e["si_sdr"] for e in mine]), abs=1e-3)
        assert table[cls]["own_closer"] == pytest.approx(np.mean([e["own_closer"] for e in mine]))
    assert table["hum"]["own_closer"] == 0.5 and table["whistle"]["own_closer"] == pytest.approx(2 / 3)
    assert json.loads((tmp_path / "out" / "summary.json").read_text())["per_class"] == s["per_class"]
    md = markdown_table([s])
    assert "| own closer |" in md.splitlines()[0] and "| 66.7 % of 6 |" in md
    assert "### custom-benchmark" in md and "every query of the mixture passes for 33.3 % of 3 mixtures" in md
    assert f"| hum | 2 | 6.021 | {table['hum']['si_sdr']:.3f} | 50.0 % |" in md


def test_reference_style_rows_have_no_swap_or_class_output(tmp_path):
    meta = make_bench(tmp_path / "bench")
    with open(meta, newline="") as f:
        plain = [r[:3] for r in csv.reader(f)]
    meta2 = write_csv(tmp_path / "bench" / "plain.csv", plain[0], plain[1:])
    s = run(meta2, tmp_path / "out", BandModel())
    assert "query_swap" not in s and "per_class" not in s
    assert list(items_csv(tmp_path / "out")[0]) == [*BASE_COLUMNS, "error"]
    assert "own closer" not in markdown_table([s]) and "###" not in markdown_table([s])


def test_resume_after_interruption_keeps_the_swap_columns(tmp_path, monkeypatch):
    meta = make_bench(tmp_path / "bench")
    full = run(meta, tmp_path / "full", BandModel(leak=0.5))
    real_score = interrupt_scoring_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        run(meta, tmp_path / "part", BandModel(leak=0.5))
    with open(tmp_path / "part" / "items.csv", "a") as f:
        f.write("3,a high whistle,whistle,whistle,1.5")  # a row cut short by the interruption
    monkeypatch.setattr(audiosep.bench.runner, "score", real_score)
    model = BandModel(leak=0.5)
    resumed = run(meta, tmp_path / "part", model)
    assert model.separated == 3
    for s in (full, resumed):
        s.pop("date")
    assert resumed == full
    assert items_csv(tmp_path / "part") == items_csv(tmp_path / "full")


def test_results_file_from_before_the_swap_columns_is_widened_and_rescored(tmp_path):
    meta = make_bench(tmp_path / "bench")
    full = run(meta, tmp_path / "out", BandModel(leak=0.5))
    old = [{c: r[c] for c in (*BASE_COLUMNS, "error")} for r in items_csv(tmp_path / "out")[:4]]
    write_csv(tmp_path / "out" / "items.csv", [*BASE_COLUMNS, "error"], [list(r.values()) for r in old])
    model = BandModel(leak=0.5)
    resumed = run(meta, tmp_path / "out", model)
    assert model.separated == 6  # old rows lack sdr_other: scored again, not silently left out
    rows = items_csv(tmp_path / "out")
    assert list(rows[0]) == [*BASE_COLUMNS, "class", "sdr_other", "own_closer", "error"]
    assert len(rows) == 10 and [r["own_closer"] for r in rows[:4]] == [""] * 4  # old rows kept, readable
    assert all(r["own_closer"] in ("0", "1") for r in rows[4:]) and [r["key"] for r in rows[4:]] == list("012345")
    for s in (full, resumed):
        s.pop("date")
    assert resumed == full


def test_custom_runs_are_named_after_their_csv(tmp_path):
    plain, para = make_bench(tmp_path / "b"), make_bench(tmp_path / "b", "benchmark_paraphrased.csv", paraphrase=True)
    assert prepare_benchmark("custom", metadata=plain).name == "custom-benchmark"
    assert prepare_benchmark("custom", metadata=para).name == "custom-benchmark_paraphrased"
    odd = write_csv(tmp_path / "b" / "my items!.csv", ["mixture", "source", "query"], [["mixtures/0.wav", "s.wav", "x"]])
    assert prepare_benchmark("custom", metadata=odd).name == "custom-my-items"


def test_cli_plain_and_paraphrased_runs_do_not_collide(tmp_path, monkeypatch, capsys):
    plain, para = make_bench(tmp_path / "b"), make_bench(tmp_path / "b", "benchmark_paraphrased.csv", paraphrase=True)
    monkeypatch.setattr(AudioSep, "from_pretrained", staticmethod(lambda *a, **k: BandModel(leak=0.5)))
    out = tmp_path / "res"
    for meta in (plain, para):
        assert cli.main(["run", "custom", "--metadata", str(meta), "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "| custom-benchmark_paraphrased | 6/6 | 0 |" in printed and "| 66.7 % of 6 |" in printed
    assert "| buzz | 1 | 6.021 |" in printed
    runs = {p.parent.name: json.loads(p.read_text()) for p in out.glob("*/summary.json")}
    assert set(runs) == {"custom-benchmark", "custom-benchmark_paraphrased"}
    assert items_csv(out / "custom-benchmark_paraphrased")[0]["query"] == "a low hum sound"
    report = (out / "report.md").read_text()
    assert "### custom-benchmark\n" in report and "### custom-benchmark_paraphrased\n" in report


def test_item_list_checks(tmp_path):
    write_csv(tmp_path / "m.csv", ["mixture", "source", "query", "other_source"], [["m.wav", "s.wav", "x", " "]])
    with pytest.raises(MetadataError, match="empty other_source; fill it in, or drop the other_source column"):
        prepare_benchmark("custom", metadata=tmp_path / "m.csv")
    write_csv(tmp_path / "g.csv", ["mixture", "source", "query", "group"], [["m.wav", "s.wav", "x", "dogs"]])
    write_wav(tmp_path / "m.wav", np.zeros(10))
    assert prepare_benchmark("custom", metadata=tmp_path / "g.csv").items[0].label == "dogs"  # class falls back to group


def test_aggregation_of_hand_written_rows():
    rows = [{"key": "0", "sdr": 5.0, "sdr_other": 1.0, "own_closer": True, "sdri": 2.0, "si_sdr": 4.0,
             "si_sdri": 0.5},
            {"key": "1", "sdr": 0.0, "sdr_other": 3.0, "own_closer": False, "sdri": 1.0, "si_sdr": -1.0,
             "si_sdri": -2.0},
            {"key": "2", "sdr": 4.0, "sdr_other": 2.0, "own_closer": True, "sdri": 6.0, "si_sdr": 3.0,
             "si_sdri": 1.5},
            {"key": "3", "sdri": 9.0, "si_sdr": 9.0}]  # no swap columns: not counted in the swap rate
    swap = query_swap(rows, {"0": "m0", "1": "m0", "2": "m1", "3": "m1"})
    assert swap == {"own_closer": pytest.approx(2 / 3), "n": 3, "sdr_other": pytest.approx(2.0),
                    "margin": pytest.approx((4 - 3 + 2) / 3), "mixtures": 1, "mixtures_all_own_closer": 0.0}
    assert query_swap([{"key": "0", "sdr": 1.0}]) is None
    table = per_class(rows, {"0": "b", "1": "a", "2": "b", "3": None})
    assert table == [{"class": "a", "n": 1, "sdri": 1.0, "si_sdr": -1.0, "si_sdri": -2.0, "own_closer": 0.0},
                     {"class": "b", "n": 2, "sdri": 4.0, "si_sdr": 3.5, "si_sdri": 1.0, "own_closer": 1.0}]
