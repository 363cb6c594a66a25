"""``examples/`` scripts run against a tiny saved model, so they cannot drift from the API.

Every script in ``examples/`` must have a test here (see :data:`TESTED`); a new script without
one fails :func:`test_every_example_script_is_tested`.
"""
from __future__ import annotations

import csv
import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import soundfile
import torch

from audiosep.audio.io import load_audio, save_audio
from audiosep.model import AudioSep
from audiosep.nn import ResUNet, ResUNetConfig

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SR = 16000  # the tiny model's rate
TESTED = {"separate_file", "multiple_queries", "separate_folder", "evaluate_custom", "finetune"}


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the script runs
    spec.loader.exec_module(module)
    return module


def noise(channels: int, samples: int, seed: int, level: float = 0.1) -> torch.Tensor:
    return level * torch.randn(channels, samples, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A tiny ResUNet with the model-free hashed text encoder, saved as an AudioSep folder.

    (The hashed encoder keeps these tests fast; the scripts never look at the encoder's kind.)
    """
    from audiosep.query.hashed import HashedTextEncoder

    torch.manual_seed(0)  # parameter init only
    cfg = ResUNetConfig(
        sample_rate=SR, n_fft=256, hop_length=64, stem_channels=4, encoder_channels=(4, 8, 8),
        pool_sizes=((2, 2), (2, 2), (1, 2)), condition_dim=384,
    )
    return AudioSep(ResUNet(cfg).eval(), HashedTextEncoder(dim=384)).save_pretrained(tmp_path_factory.mktemp("m") / "model")


def test_every_example_script_is_tested_and_documented():
    scripts = {p.stem for p in EXAMPLES.glob("*.py")}
    assert scripts == TESTED, f"untested example scripts: {sorted(scripts - TESTED)}; add a test here"
    readme = (EXAMPLES / "README.md").read_text()
    for name in sorted(scripts):
        module = load_example(name)
        assert f"python examples/{name}.py" in module.__doc__, f"{name}: no usage line in its docstring"
        assert f"examples/{name}.py" in readme, f"examples/README.md does not list {name}.py"
        assert callable(module.main)


def test_separate_file_example(tmp_path, capsys, model_dir):
    mixture = noise(1, 12000, 0)
    mix = save_audio(tmp_path / "mix.wav", mixture, 24000)

    paths = load_example("separate_file").main(
        [str(mix), "a dog barking", "rain", "--out", str(tmp_path / "sep"), "--model", str(model_dir), "--residual"]
    )
    assert sorted(p.name for p in paths) == sorted(
        ["separated_a-dog-barking.wav", "separated_a-dog-barking_residual.wav", "separated_rain.wav",
         "separated_rain_residual.wav"]
    )
    dog, sr = load_audio(tmp_path / "sep" / "separated_a-dog-barking.wav")
    rest, _ = load_audio(tmp_path / "sep" / "separated_a-dog-barking_residual.wav")
    assert sr == 24000 and dog.shape == mixture.shape
    torch.testing.assert_close(dog + rest, mixture, atol=1e-5, rtol=0)
    assert "2 queries" in capsys.readouterr().out


def test_multiple_queries_example(tmp_path, capsys, model_dir):
    example = load_example("multiple_queries")
    mixture = noise(2, 9000, 1)  # stereo, at a rate other than the model's
    mix = save_audio(tmp_path / "mix.wav", mixture, 22050)
    queries = ["a dog barking", "speech", "rain"]

    result = example.main([str(mix), *queries, "--out", str(tmp_path / "sep"), "--model", str(model_dir)])
    names = [p.name for p in result.paths]
    assert names == ["separated_a-dog-barking.wav", "separated_a-dog-barking_residual.wav", "separated_speech.wav",
                     "separated_speech_residual.wav", "separated_rain.wav", "separated_rain_residual.wav",
                     "remainder.wav"]
    assert result.sample_rate == 22050
    read = {name: load_audio(tmp_path / "sep" / name) for name in names}
    assert all(sr == 22050 and a.shape == mixture.shape for a, sr in read.values())
    estimates = [read[f"separated_{s}.wav"][0] for s in ("a-dog-barking", "speech", "rain")]
    for slug, est in zip(("a-dog-barking", "speech", "rain"), estimates):  # per-query residuals
        torch.testing.assert_close(est + read[f"separated_{slug}_residual.wav"][0], mixture, atol=1e-5, rtol=0)
    torch.testing.assert_close(sum(estimates) + read["remainder.wav"][0], mixture, atol=1e-5, rtol=0)
    # the table's levels are those of the files
    assert list(result.levels) == ["mixture", *queries, "remainder"]
    assert result.levels["mixture"]["estimate"] == pytest.approx(example.rms_db(mixture), abs=1e-3)
    assert result.levels["speech"]["estimate"] == pytest.approx(example.rms_db(estimates[1]), abs=1e-3)
    assert result.levels["remainder"]["estimate"] == pytest.approx(example.rms_db(read["remainder.wav"][0]), abs=1e-3)
    out = capsys.readouterr().out
    assert "remainder" in out and f"{result.levels['rain']['residual']:.1f}" in out
    with pytest.raises(SystemExit, match="--force"):  # existing outputs are kept
        example.main([str(mix), "rain", "--out", str(tmp_path / "sep"), "--model", str(model_dir)])


def test_separate_folder_example(tmp_path, capsys, model_dir):
    example = load_example("separate_folder")
    inp, out = tmp_path / "in", tmp_path / "out"
    save_audio(inp / "a.wav", noise(1, 8000, 2), 16000)
    (inp / "sub").mkdir()
    soundfile.write(inp / "sub" / "b.flac", noise(2, 6000, 3).T.numpy(), 8000)
    (inp / "broken.wav").write_bytes(b"RIFF not really a wave file")
    (inp / "notes.txt").write_text("not audio: ignored")
    base = [str(inp), "a dog barking", "--out", str(out), "--model", str(model_dir), "--quiet"]

    first = example.main([*base, "--recursive", "--residual"])
    assert [p.name for p in first.done] == ["a.wav", "b.flac"]
    assert list(first.failed) == [inp / "broken.wav"] and "AudioFileError" in first.failed[inp / "broken.wav"]
    assert first.skipped == []
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.wav")) == [
        "a_a-dog-barking.wav", "a_a-dog-barking_residual.wav",
        "sub/b_a-dog-barking.wav", "sub/b_a-dog-barking_residual.wav"]
    b_est, b_sr = load_audio(out / "sub" / "b_a-dog-barking.wav")
    assert b_sr == 8000 and b_est.shape == (2, 6000)  # the input's rate, channels and length
    assert "2 done, 0 skipped" in capsys.readouterr().out and "broken.wav" in first.format()
    with pytest.raises(SystemExit, match="a.wav is not a folder; pass the folder that holds your recordings"):
        example.main([str(inp / "a.wav"), "rain", "--out", str(out), "--model", str(model_dir)])

    stamp = (out / "a_a-dog-barking.wav").stat().st_mtime_ns
    again = example.main([*base, "--recursive", "--residual"])
    assert (len(again.done), len(again.skipped), len(again.failed)) == (0, 2, 1)
    assert (out / "a_a-dog-barking.wav").stat().st_mtime_ns == stamp

    (out / "a_a-dog-barking_residual.wav").unlink()  # cut short: redone without --force
    flat = example.main(base + ["--residual"])  # not recursive: sub/ is not visited
    assert [p.name for p in flat.done] == ["a.wav"] and flat.skipped == [] and len(flat.failed) == 1
    forced = example.main([*base, "--recursive", "--force"])
    assert (len(forced.done), len(forced.skipped), len(forced.failed)) == (2, 0, 1)


def _items(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_evaluate_custom_example_with_synthetic_demo(tmp_path, capsys, model_dir):
    example = load_example("evaluate_custom")
    demo, out = tmp_path / "demo", tmp_path / "results"
    summary = example.main(["--make-demo", str(demo), "--model", str(model_dir), "--out", str(out), "--quiet"])

    rows = list(csv.DictReader(open(demo / "benchmark.csv", newline="")))
    assert len(rows) == 6  # 3 sources -> 3 pairs -> 2 rows each
    assert all((demo / r["mixture"]).is_file() and (demo / r["source"]).is_file() for r in rows)
    mix, sr = load_audio(demo / rows[0]["mixture"])
    a, _ = load_audio(demo / rows[0]["source"])
    b, _ = load_audio(demo / rows[1]["source"])
    assert sr == example.DEMO_RATE and rows[0]["mixture"] == rows[1]["mixture"]
    torch.testing.assert_close(a + b, mix, atol=1e-6, rtol=0)
    assert 10 * math.log10(float(a.pow(2).sum() / b.pow(2).sum())) == pytest.approx(0.0, abs=1e-3)

    items = _items(out / "items.csv")
    assert summary["items"] == {**summary["items"], "total": 6, "scored": 6, "failed": 0}
    assert [r["query"] for r in items] == [r["query"] for r in rows]
    assert all(abs(float(r["sdr_mixture"])) < 1e-3 for r in items)  # mixed at 0 dB
    for metric in ("sdr", "sdri", "si_sdr"):
        mean = sum(float(r[metric]) for r in items) / len(items)
        assert summary["scores"][metric] == pytest.approx(mean, abs=1e-9)
    assert json.loads((out / "summary.json").read_text())["scores"] == summary["scores"]
    assert "6 of 6 items scored" in capsys.readouterr().out
    # each row names the mixture's other source, so the query-swap rate is reported
    assert rows[0]["other_source"] == rows[1]["source"] and rows[1]["other_source"] == rows[0]["source"]
    closer = [float(r["sdr"]) > float(r["sdr_other"]) for r in items]
    assert summary["query_swap"]["own_closer"] == pytest.approx(sum(closer) / 6)

    # the same CSV through --metadata resumes into the same folder: nothing recomputed, same summary
    resumed = example.main(["--metadata", str(demo / "benchmark.csv"), "--model", str(model_dir),
                            "--out", str(out), "--quiet"])
    assert resumed["scores"] == summary["scores"] and len(_items(out / "items.csv")) == 6


def test_evaluate_custom_example_with_given_files(tmp_path, model_dir):
    example = load_example("evaluate_custom")
    dog = save_audio(tmp_path / "dog.wav", noise(2, 8000, 4, level=0.3), 16000)
    rain = save_audio(tmp_path / "rain.flac", noise(1, 3000, 5, level=0.05), 8000)  # other rate, shorter
    demo = tmp_path / "demo"
    summary = example.main(["--make-demo", str(demo), "--sources", str(dog), str(rain), "--labels", "a dog", "rain",
                            "--model", str(model_dir), "--out", str(tmp_path / "res"), "--quiet"])
    rows = _items(demo / "benchmark.csv")
    assert [r["query"] for r in rows] == ["a dog", "rain"] and summary["items"]["scored"] == 2
    mix, sr = load_audio(demo / rows[0]["mixture"])
    assert sr == 16000 and mix.shape == (1, 6000)  # mono; 3000 samples at 8 kHz = 6000 at 16 kHz
    with pytest.raises(SystemExit, match="2 --sources but 1 --labels; give one label per source file"):
        example.main(["--make-demo", str(demo), "--sources", str(dog), str(rain), "--labels", "a dog"])
    with pytest.raises(SystemExit, match="--sources needs at least two files to mix"):
        example.main(["--make-demo", str(demo), "--sources", str(dog), "--labels", "a dog"])
    silent = save_audio(tmp_path / "silent.wav", torch.zeros(1, 4000), 16000)
    with pytest.raises(SystemExit, match="source 'quiet' is silent; pick a file with sound in it"):
        example.main(["--make-demo", str(tmp_path / "demo2"), "--sources", str(dog), str(silent),
                      "--labels", "a dog", "quiet"])


def test_finetune_example(tmp_path, capsys, model_dir):
    from audiosep.train.cli import write_tone_dataset

    example = load_example("finetune")
    train, val = write_tone_dataset(tmp_path / "tones", per_tone=2, val_per_tone=1, sample_rate=SR, seconds=0.6)
    out = tmp_path / "run"
    result = example.main(["--train", str(train), "--val", str(val), "--init-from", str(model_dir),
                           "--steps", "3", "--lr", "1e-3", "--batch-size", "4", "--segment-seconds", "0.5",
                           "--device", "cpu", "--out", str(out)])

    assert result["final_dir"] == out / "final" and result["summary"].steps == 3
    assert set(result["before"]) == set(result["after"]) == {"val_loss", "val_sdri", "val_si_sdr"}
    assert all(math.isfinite(v) for v in [*result["before"].values(), *result["after"].values()])
    start, tuned = AudioSep.from_pretrained(model_dir), AudioSep.from_pretrained(result["final_dir"])
    assert tuned.separation_net.config == start.separation_net.config
    assert tuned.query_encoder.config_dict() == start.query_encoder.config_dict()
    s0, s1 = start.separation_net.state_dict(), tuned.separation_net.state_dict()
    assert s0.keys() == s1.keys()
    moved = max(float((s0[k].float() - s1[k].float()).abs().max()) for k in s0)
    assert moved > 1e-4  # the weights were trained
    y = tuned(noise(1, 8000, 6)[None], tuned.embed("a tone at 440 hertz"))
    assert y.shape == (1, 1, 8000) and torch.isfinite(y).all()
    text = capsys.readouterr().out
    assert "before" in text and f"{result['before']['val_sdri']:8.3f}" in text
    # a second run into the same folder is refused; --resume auto continues it
    argv = ["--train", str(train), "--init-from", str(model_dir), "--steps", "4", "--batch-size", "4",
            "--segment-seconds", "0.5", "--device", "cpu", "--out", str(out)]
    with pytest.raises(ValueError, match="--resume auto"):
        example.main(argv)
    resumed = example.main(argv + ["--resume", "auto"])["summary"]
    assert (resumed.start_step, resumed.steps) == (3, 4)  # one more step, from the first run's last checkpoint
