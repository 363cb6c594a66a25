"""``audiosep-bench`` list / run / report, with a saved tiny model and item lists served locally."""
from __future__ import annotations

import functools
import http.server
import json
import threading

import pytest
from bench_helpers import make_premixed, tiny_model, write_csv

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
