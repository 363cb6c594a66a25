"""The runner end to end on generated benchmark folders, in every layout."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from bench_helpers import (SR, IdentityModel, interrupt_scoring_after, make_audioset, make_premixed, pair, tiny_model, write_csv,
                           write_wav)

import audiosep.bench.runner
import audiosep.metrics
from audiosep.bench import BenchmarkDataError, BenchmarkError, run_benchmark
from audiosep.bench.items import VOICEBANK_CLEAN, VOICEBANK_NOISY


def rows_of(out):
    with open(out / "items.csv", newline="") as f:
        return list(csv.DictReader(f))


def run(name, root, out, model=None, **kw):
    return run_benchmark(name, model or IdentityModel(), out_dir=out, data_root=root, progress=False, **kw)


def test_audioset_median_per_class_then_mean(tmp_path):
    # class 0: median(1, 2, 9) = 2; class 5: median(4, 6) = 5; class 7: files missing -> no scores, ignored
    make_audioset(tmp_path, [(0, "Speech", [1, 2, 9]), (5, "Dog", [4, 6]), (7, "Cat", [3])], missing=(7,))
    s = run("audioset", tmp_path, tmp_path / "out", batch_size=2)
    assert s["scores"]["sdr"] == pytest.approx(3.5, abs=1e-4)
    assert s["scores"]["si_sdr"] == pytest.approx(3.5, abs=1e-4)
    assert s["scores"]["sdri"] == pytest.approx(0.0, abs=1e-9)
    assert s["items"] == {"total": 6, "scored": 5, "failed": 1, "missing": 0, "groups": 2}
    assert s["failures"][0]["key"] == "class_id=7,index=000"
    assert "FileNotFoundError" in s["failures"][0]["error"] and "class_id=7,index=000,mixture.wav" in s["failures"][0]["error"]
    rows = {r["key"]: r for r in rows_of(tmp_path / "out")}
    assert rows["class_id=7,index=000"]["error"] and rows["class_id=7,index=000"]["sdr"] == ""
    assert rows["class_id=0,index=002"]["query"] == "Speech"
    assert float(rows["class_id=0,index=002"]["sdr"]) == pytest.approx(9.0, abs=1e-4)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["scores"] == s["scores"] and summary["released"] == {"sdri": 7.739, "si_sdr": 6.903}
    assert summary["versions"]["torch"] == torch.__version__


def test_music_mean_per_instrument_then_mean(tmp_path):
    snrs, captions = [1, 2, 9, 5], ["accordion", "accordion", "accordion", "violin"]
    write_csv(tmp_path / "music_eval.csv", ["idx", "caption", "src_wav", "noise_wav"],
              [[i, c, "a.wav", "b.wav"] for i, c in enumerate(captions)])
    make_premixed(tmp_path, "music", captions, snrs)
    model = IdentityModel()
    s = run("music", tmp_path, tmp_path / "out", model=model, batch_size=3)
    assert s["scores"]["sdr"] == pytest.approx((4 + 5) / 2, abs=1e-4)  # plain mean would be 4.25
    assert model.batches == [3, 1]


@pytest.mark.parametrize("name,set_name", [("clotho", "clotho"), ("esc50", "esc50"), ("audiocaps-labels", "audiocaps")])
def test_premixed_mean_over_items(tmp_path, name, set_name):
    header = {"clotho": ["idx", "caption", "src_wav", "noise_wav1", "noise_wav1"],
              "esc50": ["idx", "caption", "src_wav", "noise_wav"],
              "audiocaps-labels": ["idx", "caption", "labels", "src_wav", "noise_wav"]}[name]
    meta = set_name + "_eval.csv"
    write_csv(tmp_path / meta, header, [[i, f"cap {i}", *(["lab"] if "labels" in header else []), "a.wav", "b.wav"]
                                         + (["c.wav"] if name == "clotho" else []) for i in range(3)])
    make_premixed(tmp_path, set_name, [], [3, 6, 12])
    s = run(name, tmp_path, tmp_path / "out", batch_size=4)
    assert s["scores"]["sdr"] == pytest.approx(7.0, abs=1e-4)
    assert s["items"]["scored"] == 3
    assert {r["query"] for r in rows_of(tmp_path / "out")} == ({"lab"} if name == "audiocaps-labels" else {"cap 0", "cap 1", "cap 2"})


def test_vggsound_paths_with_and_without_data_prefix(tmp_path):
    ids = ["a+++b", "c+++d"]
    write_csv(tmp_path / "vggsound_eval.csv", ["file_id", "mix_wav", "s0_wav", "s0_text", "s1_wav", "s1_text"],
              [[i, f"data/mix_wav/{i}.wav", f"data/s0_wav/{i}.wav", "dog barking", f"data/s1_wav/{i}.wav", "x"] for i in ids])
    for i, (fid, snr) in enumerate(zip(ids, [2, 8])):
        mix, src = pair(snr)
        prefix = tmp_path / "vggsound" / ("data" if i == 0 else "")
        write_wav(prefix / "mix_wav" / f"{fid}.wav", mix)
        write_wav(prefix / "s0_wav" / f"{fid}.wav", src)
    s = run("vggsound", tmp_path, tmp_path / "out")
    assert s["items"]["failed"] == 0 and s["scores"]["sdr"] == pytest.approx(5.0, abs=1e-4)


@pytest.mark.filterwarnings("ignore:Not enough STFT frames")  # pystoi on 0.25 s tones, when installed
def test_voicebank_varied_lengths_and_resampling(tmp_path):
    # files at 32 kHz, model at 16 kHz: resampled; two lengths -> not batched together
    d = tmp_path / "voicebank-demand"
    for name, snr, n in [("p232_001.wav", 4, 8000), ("p232_002.wav", 10, 8000), ("p257_003.wav", 1, 12000)]:
        mix, src = pair(snr, n=n, sr=2 * SR)
        write_wav(d / VOICEBANK_NOISY / name, mix, 2 * SR)
        write_wav(d / VOICEBANK_CLEAN / name, src, 2 * SR)
    model = IdentityModel()
    s = run("voicebank-demand", tmp_path, tmp_path / "out", model=model, batch_size=8)
    assert model.batches == [2, 1]
    assert s["scores"]["sdr"] == pytest.approx(5.0, abs=1e-3)
    assert {r["query"] for r in rows_of(tmp_path / "out")} == {"speech"}


def test_custom_csv_relative_paths(tmp_path):
    mix, src = pair(6.0)
    write_wav(tmp_path / "mine" / "audio" / "m.wav", mix)
    write_wav(tmp_path / "mine" / "audio" / "s.wav", src)
    meta = write_csv(tmp_path / "mine" / "items.csv", ["mixture", "source", "query"], [["audio/m.wav", "audio/s.wav", "a tone"]])
    s = run_benchmark("custom", IdentityModel(), out_dir=tmp_path / "out", metadata=meta, progress=False)
    assert s["scores"]["sdr"] == pytest.approx(6.0, abs=1e-4)
    with pytest.raises(BenchmarkError, match="custom benchmark needs your CSV.*--metadata"):
        run_benchmark("custom", IdentityModel(), out_dir=tmp_path / "o2", progress=False)


def test_tiny_model_scores_match_direct_computation(tmp_path):
    make_audioset(tmp_path, [(0, "Speech", [1, 2]), (1, "Dog", [3])])
    model = tiny_model()
    s = run("audioset", tmp_path, tmp_path / "out", model=model, batch_size=2)
    mix, src = (torch.from_numpy(x.astype(np.float32)) for x in pair(3))
    with torch.inference_mode():
        est = model(mix[None, None], model.embed(["Dog"]))[0, 0]
    expect = audiosep.metrics.score(est, src, mix)
    row = {r["key"]: r for r in rows_of(tmp_path / "out")}["class_id=1,index=000"]
    assert float(row["sdri"]) == pytest.approx(expect.sdri, abs=1e-3)
    assert float(row["si_sdr"]) == pytest.approx(expect.si_sdr, abs=1e-3)
    assert len(s["model"]["weights_sha256"]) == 64


def test_resume_after_interruption_gives_the_same_summary(tmp_path, monkeypatch):
    make_audioset(tmp_path, [(0, "Speech", [1, 2, 9]), (5, "Dog", [4, 6, 7])])
    full = run("audioset", tmp_path, tmp_path / "full", batch_size=2)

    real_score = interrupt_scoring_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        run("audioset", tmp_path, tmp_path / "part", batch_size=2)
    assert len(rows_of(tmp_path / "part")) == 3 and not (tmp_path / "part" / "summary.json").exists()
    with open(tmp_path / "part" / "items.csv", "a") as f:
        f.write('"class_id=5,index=001",Dog,5,1.0')  # a row cut short by the interruption
    monkeypatch.setattr(audiosep.bench.runner, "score", real_score)
    model = IdentityModel()
    resumed = run("audioset", tmp_path, tmp_path / "part", model=model, batch_size=2)
    assert sum(model.batches) == 3  # only the remaining items were separated
    for s in (full, resumed):
        s.pop("date")
    assert resumed == full
    assert sorted(r["key"] for r in rows_of(tmp_path / "part")) == sorted(r["key"] for r in rows_of(tmp_path / "full"))


def test_limit_then_full_run_resumes(tmp_path):
    make_audioset(tmp_path, [(0, "Speech", [1, 2, 9])])
    assert run("audioset", tmp_path, tmp_path / "out", limit=2)["items"]["total"] == 2
    model = IdentityModel()
    s = run("audioset", tmp_path, tmp_path / "out", model=model)
    assert model.batches == [1] and s["items"]["scored"] == 3 and s["scores"]["sdr"] == pytest.approx(2.0, abs=1e-4)


def test_results_of_another_model_are_not_mixed(tmp_path):
    make_audioset(tmp_path, [(0, "Speech", [1])])
    run("audioset", tmp_path, tmp_path / "out")
    other = IdentityModel()
    with torch.no_grad():
        other.gain.fill_(0.5)
    with pytest.raises(BenchmarkError, match="holds results of another run.*new --out"):
        run("audioset", tmp_path, tmp_path / "out", model=other)


def test_missing_data_root_names_layout_and_source(tmp_path):
    write_csv(tmp_path / "clotho_eval.csv", ["idx", "caption"], [[0, "x"]])
    with pytest.raises(BenchmarkDataError, match=r"clotho does not exist; expected .*mixture-\{idx\}\.wav.*Audio-AGI/AudioSep"):
        run("clotho", tmp_path, tmp_path / "out")
    (tmp_path / "clotho").mkdir()
    with pytest.raises(BenchmarkDataError, match=r"none of the 1 mixtures was found .*mixture-0\.wav.*--data-root"):
        run("clotho", tmp_path, tmp_path / "out")
    with pytest.raises(BenchmarkDataError, match="noisy_testset_wav.*clean_testset_wav.*Voicebank"):
        run("voicebank-demand", tmp_path, tmp_path / "out")


def test_corrupt_and_mismatched_items_are_reported_and_counted(tmp_path):
    write_csv(tmp_path / "esc50_eval.csv", ["idx", "caption"], [[0, "dog"], [1, "cat"], [2, "cow"]])
    make_premixed(tmp_path, "esc50", [], [3, 3, 3])
    (tmp_path / "esc50" / "segment-1.wav").write_bytes(b"not audio at all")
    mix, _ = pair(3, n=2 * 4000)
    write_wav(tmp_path / "esc50" / "mixture-2.wav", mix)
    s = run("esc50", tmp_path, tmp_path / "out")
    assert s["items"]["failed"] == 2 and s["items"]["scored"] == 1
    errors = {f["key"]: f["error"] for f in s["failures"]}
    assert errors["1"].startswith("AudioFileError: cannot read") and "segment-1.wav" in errors["1"]
    assert "lengths differ" in errors["2"]
    assert {r["key"]: r["error"] != "" for r in rows_of(tmp_path / "out")} == {"0": False, "1": True, "2": True}


def test_voicebank_pesq_and_stoi_when_installed(tmp_path):
    pesq = pytest.importorskip("pesq").pesq
    stoi = pytest.importorskip("pystoi").stoi
    rng = np.random.default_rng(0)
    t = np.arange(SR) / SR
    clean = (0.3 * np.sin(2 * np.pi * 220 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    noisy = (clean + 0.05 * rng.standard_normal(SR)).astype(np.float32)
    d = tmp_path / "voicebank-demand"
    write_wav(d / VOICEBANK_NOISY / "p232_001.wav", noisy)
    write_wav(d / VOICEBANK_CLEAN / "p232_001.wav", clean)
    s = run("voicebank-demand", tmp_path, tmp_path / "out")
    assert s["protocol"]["extra_metrics"] == ["pesq", "stoi"]
    assert s["scores"]["pesq"] == pytest.approx(pesq(SR, clean.astype(np.float64), noisy.astype(np.float64), "wb"), abs=1e-3)
    assert s["scores"]["stoi"] == pytest.approx(stoi(clean, noisy, SR, extended=False), abs=1e-3)
    assert "pesq" in rows_of(tmp_path / "out")[0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_batched_gpu_run_matches_cpu(tmp_path):
    make_audioset(tmp_path, [(0, "Speech", [1, 2, 9]), (5, "Dog", [4, 6])])
    cpu = run("audioset", tmp_path, tmp_path / "cpu", model=tiny_model(), batch_size=1)
    gpu = run("audioset", tmp_path, tmp_path / "gpu", model=tiny_model(), batch_size=4, device="cuda")
    for k, v in cpu["scores"].items():
        assert gpu["scores"][k] == pytest.approx(v, abs=1e-2)


def test_weights_digest_tells_apart_networks_that_differ_only_in_config():
    import dataclasses

    from audiosep.bench.runner import weights_digest

    a, b = tiny_model(), tiny_model()
    assert weights_digest(a) == weights_digest(b)
    b.separation_net.config = dataclasses.replace(b.separation_net.config, input_level_db=-26.0)
    assert weights_digest(a) != weights_digest(b)  # same tensors, different outputs: no resume across them


@pytest.mark.parametrize("rate", [True, 16000.5, 0])
def test_a_model_sample_rate_that_is_not_a_whole_number_of_hz_is_refused(tmp_path, rate):
    make_audioset(tmp_path, [(0, "Speech", [1])])
    model = IdentityModel()
    model.sample_rate = rate
    with pytest.raises(BenchmarkError, match=f"sample rate of IdentityModel must be a whole number >= 1, got {rate!r}"):
        run("audioset", tmp_path, tmp_path / "out", model=model)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kw,message", [
    ({"batch_size": 0}, "--batch-size must be a whole number >= 1, got 0"),
    ({"batch_size": True}, "--batch-size must be a whole number >= 1, got True"),
    ({"limit": -1}, "--limit must be a whole number >= 1, got -1"),
    ({"limit": 1.5}, "--limit must be a whole number >= 1, got 1.5"),
])
def test_counts_are_checked(tmp_path, kw, message):
    make_audioset(tmp_path, [(0, "Speech", [1])])
    with pytest.raises(BenchmarkError, match=message):
        run("audioset", tmp_path, tmp_path / "out", **kw)


def test_unreadable_run_file_is_named(tmp_path):
    make_audioset(tmp_path, [(0, "Speech", [1])])
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "run.json").write_text("{not json")
    with pytest.raises(BenchmarkError, match=r"cannot read .*run\.json .*pass a new --out folder"):
        run("audioset", tmp_path, tmp_path / "out")


@pytest.mark.parametrize("text", ["{broken", "[1, 2]", '{"scores": {}}'])
def test_report_names_a_broken_summary(tmp_path, text):
    from audiosep.bench import report

    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "summary.json").write_text(text)
    with pytest.raises(BenchmarkError, match=r"x/summary\.json is not a summary of audiosep-bench run"):
        report(tmp_path)
