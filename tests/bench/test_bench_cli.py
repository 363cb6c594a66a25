"""``audiosep-bench`` list / run / report, with a saved tiny model and item lists served locally."""
from __future__ import annotations

import csv
import functools
import http.server
import json
import threading

import pytest
from bench_helpers import interrupt_scoring_after, make_premixed, tiny_model, write_csv

import audiosep.bench.runner
from audiosep.bench import cli
from audiosep.bench.metadata import URL_ENV
from audiosep.model import AudioSep


@pytest.fixture()
def tiny_dir(tmp_path):
    return tiny_model().save_pretrained(tmp_path / "tiny-model")


def test_list_shows_every_benchmark_and_released_numbers(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("audioset", "vggsound", "audiocaps", "audiocaps-labels", "clotho", "esc50", "music",
                 "voicebank-demand", "custom"):
        assert f"\n{name} " in "\n" + out
    assert "SDRi 7.739, SI-SDR 6.903" in out and "SDRi 10.508, SI-SDR 9.425" in out


def test_run_downloads_metadata_and_reports(tmp_path, tiny_dir, monkeypatch, capsys, fixtures_dir):
    meta_dir = fixtures_dir.parent / "benchmarks" / "metadata"
    if not (meta_dir / "esc50_eval.csv").is_file():
        pytest.skip("reference item lists not found (set AUDIOSEP_SHARED)")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(meta_dir))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv(URL_ENV, f"http://127.0.0.1:{httpd.server_address[1]}/")
    monkeypatch.setenv("AUDIOSEP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("AUDIOSEP_DATA", str(tmp_path / "data"))
    make_premixed(tmp_path / "data", "esc50", [], [2, 5])  # the first two items of the real list
    try:
        code = cli.main(["run", "esc50", "--model", str(tiny_dir), "--limit", "2", "--batch-size", "2",
                         "--out", str(tmp_path / "out"), "--no-progress"])
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert code == 0
    assert (tmp_path / "cache" / "benchmarks" / "esc50_eval.csv").is_file()
    summary = json.loads((tmp_path / "out" / "esc50" / "summary.json").read_text())
    assert summary["items"] == {"total": 2, "scored": 2, "failed": 0, "missing": 0, "groups": None}
    assert summary["model"]["name"] == str(tiny_dir)
    table = capsys.readouterr().out
    assert table.startswith("| benchmark | items | failed | SDR | SDRi | SI-SDR |")
    assert f"| esc50 | 2/2 | 0 | {summary['scores']['sdr']:.3f} | {summary['scores']['sdri']:.3f} |" in table
    assert "| 10.040 | 8.810 |" in table
    assert cli.main(["report", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out == table == (tmp_path / "out" / "report.md").read_text()


def test_defaults_need_only_the_benchmark_name(tmp_path, monkeypatch, capsys):
    # the reference layout: ./evaluation/data/<set>/ and ./evaluation/metadata/<list>.csv
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("AUDIOSEP_DATA", raising=False)
    write_csv(tmp_path / "evaluation" / "metadata" / "clotho_eval.csv", ["idx", "caption"], [[0, "rain"]])
    make_premixed(tmp_path / "evaluation" / "data", "clotho", [], [4])
    asked = []

    def fake_from_pretrained(name, device=None, **kw):
        asked.append((name, str(device)))
        return tiny_model()

    monkeypatch.setattr(AudioSep, "from_pretrained", staticmethod(fake_from_pretrained))
    assert cli.main(["run", "clotho", "--no-progress"]) == 0
    assert asked == [(cli.DEFAULT_MODEL, "cpu")]
    assert (tmp_path / "bench-results" / cli._slug(cli.DEFAULT_MODEL) / "clotho" / "summary.json").is_file()
    assert "| clotho | 1/1 | 0 |" in capsys.readouterr().out


@pytest.mark.parametrize("argv,message", [
    (["run", "nosuch"], "unknown benchmark 'nosuch'"),
    (["run", "clotho", "--data-root", "{tmp}/missing", "--metadata", "{tmp}/m.csv"],
     "missing/clotho does not exist; expected"),
    (["run", "clotho", "esc50", "--metadata", "{tmp}/m.csv"], "--metadata names the item list of one benchmark"),
    (["run", "clotho", "--data-root", "{tmp}", "--no-download"], "item list clotho_eval.csv not found"),
    (["report", "{tmp}"], "no summary.json in"),
    (["run", "clotho", "--model", "{tmp}/no-model-here", "--data-root", "{tmp}", "--metadata", "{tmp}/m.csv"],
     "no pretrained model named '{tmp}/no-model-here'"),
    (["run", "clotho", "--device", "nosuchdevice", "--data-root", "{tmp}", "--metadata", "{tmp}/m.csv"],
     "unknown device 'nosuchdevice'"),
])
def test_errors_exit_2_with_a_message(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.setenv("AUDIOSEP_CACHE", str(tmp_path / "cache"))
    write_csv(tmp_path / "m.csv", ["idx", "caption"], [[0, "rain"]])
    make_premixed(tmp_path, "clotho", [], [1])
    if "--model" not in argv:
        monkeypatch.setattr(AudioSep, "from_pretrained", staticmethod(lambda *a, **k: tiny_model()))
    assert cli.main([a.format(tmp=tmp_path) for a in argv]) == 2
    assert message.format(tmp=tmp_path) in capsys.readouterr().err


def test_data_is_checked_before_the_model_is_loaded(tmp_path, monkeypatch, capsys):
    def must_not_load(*a, **k):
        raise AssertionError("model loaded before the data was checked")

    monkeypatch.setattr(AudioSep, "from_pretrained", staticmethod(must_not_load))
    make_premixed(tmp_path, "esc50", [], [1])
    write_csv(tmp_path / "esc50_eval.csv", ["idx", "caption"], [[0, "dog"]])
    assert cli.main(["run", "esc50", "clotho", "--data-root", str(tmp_path)]) == 2
    assert "clotho does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["--out", "{tmp}/afile"], "results folder {tmp}/afile is a file; pass a folder with --out"),
    (["--out", "{tmp}/afile/sub"], "results folder {tmp}/afile is a file (in the way of {tmp}/afile/sub)"),
    (["--batch-size", "0"], "--batch-size must be a whole number >= 1, got 0"),
    (["--batch-size", "-2"], "--batch-size must be a whole number >= 1, got -2"),
    (["--limit", "-1"], "--limit must be a whole number >= 1, got -1"),
    (["--limit", "0"], "--limit must be a whole number >= 1, got 0"),
    (["--metadata", "{tmp}/short.csv"], "item list {tmp}/short.csv, line 3: 1 columns where the header has 2"),
    (["--metadata", "{tmp}/header.csv"], "item list {tmp}/header.csv has a header but no items"),
    (["--metadata", "{tmp}"], "--metadata {tmp} is a folder; pass the item list CSV itself"),
])
def test_bad_arguments_are_one_line_before_the_model_loads(tmp_path, monkeypatch, capsys, argv, message):
    def must_not_load(*a, **k):
        raise AssertionError("model loaded before the arguments were checked")

    monkeypatch.setattr(AudioSep, "from_pretrained", staticmethod(must_not_load))
    write_csv(tmp_path / "m.csv", ["idx", "caption"], [[0, "rain"]])
    write_csv(tmp_path / "short.csv", ["idx", "caption"], [[0, "rain"], [1]])
    write_csv(tmp_path / "header.csv", ["idx", "caption"], [])
    (tmp_path / "afile").write_text("not a folder")
    make_premixed(tmp_path, "clotho", [], [1])
    argv = ["run", "clotho", "--data-root", str(tmp_path), "--metadata", str(tmp_path / "m.csv"),
            "--out", str(tmp_path / "out"), *[a.format(tmp=tmp_path) for a in argv]]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"audiosep-bench: error: {message.format(tmp=tmp_path)}") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_item_list_with_a_byte_order_mark_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(AudioSep, "from_pretrained", staticmethod(lambda *a, **k: tiny_model()))
    make_premixed(tmp_path, "clotho", [], [1, 2])
    (tmp_path / "m.csv").write_bytes("\ufeffidx,caption\r\n0,rain\r\n1,wind\r\n".encode())
    assert cli.main(["run", "clotho", "--data-root", str(tmp_path), "--metadata", str(tmp_path / "m.csv"),
                     "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    assert "| clotho | 2/2 | 0 |" in capsys.readouterr().out


def test_ctrl_c_keeps_the_scored_items_and_a_rerun_resumes(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(AudioSep, "from_pretrained", staticmethod(lambda *a, **k: tiny_model()))
    make_premixed(tmp_path, "clotho", [], [1, 2, 3, 4, 5])
    write_csv(tmp_path / "m.csv", ["idx", "caption"], [[i, f"sound {i}"] for i in range(5)])
    argv = ["run", "clotho", "--data-root", str(tmp_path), "--metadata", str(tmp_path / "m.csv"),
            "--batch-size", "2", "--no-progress"]
    assert cli.main([*argv, "--out", str(tmp_path / "full")]) == 0
    capsys.readouterr()

    real_score = interrupt_scoring_after(monkeypatch, 3)  # Ctrl-C while scoring the 4th item
    assert cli.main([*argv, "--out", str(tmp_path / "part")]) == 130
    assert capsys.readouterr().err == ("audiosep-bench: interrupted; the items scored so far are kept, "
                                       "rerun to resume\n")
    with open(tmp_path / "part" / "clotho" / "items.csv", newline="") as f:
        assert [r["key"] for r in csv.DictReader(f)] == ["0", "1", "2"]  # on disk, not only in memory

    monkeypatch.setattr(audiosep.bench.runner, "score", real_score)
    separated = []
    real_forward = AudioSep.forward
    monkeypatch.setattr(AudioSep, "forward", lambda self, mix, cond: separated.append(len(mix)) or real_forward(self, mix, cond))
    assert cli.main([*argv, "--out", str(tmp_path / "part")]) == 0
    assert sum(separated) == 2  # only items 3 and 4 were separated again
    full, part = (json.loads((tmp_path / d / "clotho" / "summary.json").read_text()) for d in ("full", "part"))
    assert part["items"] == full["items"] == {"total": 5, "scored": 5, "failed": 0, "missing": 0, "groups": None}
    assert part["scores"] == pytest.approx(full["scores"], abs=1e-5)  # batches differ: float rounding only
