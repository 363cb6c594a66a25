"""Benchmark declarations, reading the reference item lists, finding and downloading them."""
from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

import pytest

from audiosep.bench import BENCHMARKS, BenchmarkError, MetadataError, get_spec
from audiosep.bench.items import read_items
from audiosep.bench.metadata import URL_ENV, find_metadata


@pytest.fixture(scope="module")
def metadata_dir(fixtures_dir) -> Path:
    d = fixtures_dir.parent / "benchmarks" / "metadata"
    if not d.is_dir():
        pytest.skip(f"reference item lists not found at {d} (set AUDIOSEP_SHARED)")
    return d


@pytest.fixture()
def server(metadata_dir):
    """The shared copies of the item lists served over HTTP on 127.0.0.1."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(metadata_dir))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_declarations_hold_the_released_numbers():
    expected = {"audioset": (7.739, 6.903), "vggsound": (9.144, 9.043), "audiocaps": (8.220, 7.189),
                "clotho": (6.850, 5.242), "music": (10.508, 9.425), "esc50": (10.040, 8.810)}
    for name, (sdri, si_sdr) in expected.items():
        assert dict(BENCHMARKS[name].released) == {"sdri": sdri, "si_sdr": si_sdr}
    assert BENCHMARKS["audioset"].aggregation == "median-then-mean"
    assert BENCHMARKS["music"].aggregation == "mean-then-mean"
    assert {"audiocaps-labels", "voicebank-demand", "custom"} <= set(BENCHMARKS)


def test_unknown_benchmark_suggests_a_name():
    with pytest.raises(BenchmarkError, match="did you mean 'clotho'.*audiosep-bench list"):
        get_spec("clohto")


def test_reference_lists_map_to_the_reference_layout(metadata_dir, tmp_path):
    audioset = read_items(get_spec("audioset"), tmp_path / "audioset", metadata_dir / "audioset_eval.csv")
    assert len(audioset) == 5270 and len({it.group for it in audioset}) == 527
    first = audioset[0]
    assert first.mixture == (tmp_path / "audioset" / "class_id=0" / "class_id=0,index=000,mixture.wav",)
    assert first.source == (tmp_path / "audioset" / "class_id=0" / "class_id=0,index=000,source.wav",)
    assert (first.query, first.group) == ("Speech", "0")

    vgg = read_items(get_spec("vggsound"), tmp_path / "vggsound", metadata_dir / "vggsound_eval.csv")
    assert len(vgg) == 1000
    fid = "-JUBdOr8Hes_000030+++37Vxf0Wz-3o_000001"
    assert vgg[0].key == fid and vgg[0].query == "playing accordion"
    assert vgg[0].mixture == (tmp_path / "vggsound" / "data" / "mix_wav" / f"{fid}.wav",
                              tmp_path / "vggsound" / "mix_wav" / f"{fid}.wav")
    assert vgg[0].source[0] == tmp_path / "vggsound" / "data" / "s0_wav" / f"{fid}.wav"

    clotho = read_items(get_spec("clotho"), tmp_path / "clotho", metadata_dir / "clotho_eval.csv")
    assert len(clotho) == 5225
    assert clotho[1].mixture == (tmp_path / "clotho" / "mixture-1.wav",)
    assert clotho[1].source == (tmp_path / "clotho" / "segment-1.wav",)
    assert clotho[1].query == "A person is using electric clippers to trim bushes."

    caps = read_items(get_spec("audiocaps"), tmp_path, metadata_dir / "audiocaps_eval.csv")
    labels = read_items(get_spec("audiocaps-labels"), tmp_path, metadata_dir / "audiocaps_eval.csv")
    assert caps[0].query == "Constant rattling noise and sharp vibrations"
    assert labels[0].query == "Speech Sewing machine Inside, public space"

    music = read_items(get_spec("music"), tmp_path, metadata_dir / "music_eval.csv")
    assert len(music) == 5004 and len({it.group for it in music}) == 10 and music[0].group == "accordion"


def test_metadata_search_order(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOSEP_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "evaluation" / "data"
    root.mkdir(parents=True)
    beside = tmp_path / "evaluation" / "metadata" / "esc50_eval.csv"
    beside.parent.mkdir()
    beside.write_text("idx,caption\n0,dog\n")
    assert find_metadata("esc50_eval.csv", root, download=False) == beside
    inside = root / "esc50_eval.csv"
    inside.write_text("idx,caption\n0,dog\n")
    assert find_metadata("esc50_eval.csv", root, download=False) == inside
    with pytest.raises(MetadataError, match="not found.*--metadata"):
        find_metadata("clotho_eval.csv", root, download=False)
    with pytest.raises(MetadataError, match="does not exist; check the --metadata path"):
        find_metadata("x.csv", root, explicit=tmp_path / "nope.csv")


def test_download_into_the_cache(server, metadata_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOSEP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv(URL_ENV, server)
    path = find_metadata("esc50_eval.csv", tmp_path / "data")
    assert path == tmp_path / "cache" / "benchmarks" / "esc50_eval.csv"
    assert path.read_bytes() == (metadata_dir / "esc50_eval.csv").read_bytes()
    assert [p.name for p in path.parent.iterdir()] == ["esc50_eval.csv"]  # no temporary left over
    # second time: found in the cache, no download
    monkeypatch.setenv(URL_ENV, "http://127.0.0.1:9/")
    assert find_metadata("esc50_eval.csv", tmp_path / "data") == path


def test_download_failure_names_the_url_and_the_fix(server, tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOSEP_CACHE", str(tmp_path / "cache"))
    with pytest.raises(MetadataError, match=r"cannot download the item list nope\.csv from http://127\.0\.0\.1.*--metadata"):
        find_metadata("nope.csv", tmp_path, base_url=server)
    assert not (tmp_path / "cache" / "benchmarks" / "nope.csv").exists()


def test_missing_column_is_named(tmp_path):
    bad = tmp_path / "clotho_eval.csv"
    bad.write_text("idx,text\n0,a dog\n")
    with pytest.raises(MetadataError, match="has no column 'caption'"):
        read_items(get_spec("clotho"), tmp_path, bad)


@pytest.mark.parametrize("text,message", [
    ("idx,caption\n0,dog\n1\n", r"clotho_eval\.csv, line 3: 1 columns where the header has 2 \(idx, caption\)"),
    ("idx,caption\n0,dog,cat\n", r"line 2: 3 columns where the header has 2.*quote values that hold commas"),
    ("idx,caption\n\n", "has a header but no items; add one row per item"),
    ("", "is empty"),
])
def test_malformed_item_lists_are_named_with_the_line(tmp_path, text, message):
    bad = tmp_path / "clotho_eval.csv"
    bad.write_text(text)
    with pytest.raises(MetadataError, match=message):
        read_items(get_spec("clotho"), tmp_path, bad)


def test_byte_order_mark_and_trailing_commas_are_accepted(tmp_path):
    meta = tmp_path / "clotho_eval.csv"
    meta.write_bytes(b"\xef\xbb\xbfidx,caption,\r\n0,a dog,\r\n1,a cat\r\n")
    items = read_items(get_spec("clotho"), tmp_path, meta)
    assert [(it.key, it.query) for it in items] == [("0", "a dog"), ("1", "a cat")]


def test_a_folder_as_metadata_is_named(tmp_path):
    (tmp_path / "lists").mkdir()
    with pytest.raises(MetadataError, match="--metadata .*lists is a folder; pass the item list CSV itself"):
        find_metadata("x.csv", tmp_path, explicit=tmp_path / "lists")
