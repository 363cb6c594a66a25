"""The ``audiosep`` command: outputs, names, overwrite, and one-line errors with exit code 2."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from audiosep.audio.io import load_audio, save_audio
from audiosep.cli.main import main
from audiosep.model import AudioSep
from audiosep.nn import ResUNet, ResUNetConfig

SR = 16000


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from audiosep.query.minilm import MiniLMEncoder

    torch.manual_seed(0)  # parameter init only
    cfg = ResUNetConfig(
        sample_rate=SR, n_fft=256, hop_length=64, stem_channels=4, encoder_channels=(4, 8, 8),
        pool_sizes=((2, 2), (2, 2), (1, 2)), condition_dim=384,
    )
    model = AudioSep(ResUNet(cfg).eval(), MiniLMEncoder())
    return model.save_pretrained(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture
def mix(tmp_path):
    x = 0.1 * torch.randn(2, 8000, generator=torch.Generator().manual_seed(0))
    return save_audio(tmp_path / "mix.wav", x, 22050)


def run(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_folder_output_names_residuals_and_content(model_dir, mix, tmp_path, capsys):
    out = tmp_path / "out"
    code, stdout, _ = run(["separate", mix, "A dog barking", "rain", "-o", f"{out}/", "--model", model_dir, "--residual"], capsys)
    assert code == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == ["mix_a-dog-barking.wav", "mix_a-dog-barking_residual.wav", "mix_rain.wav", "mix_rain_residual.wav"]
    assert "mix_rain.wav" in stdout
    target, sr = load_audio(out / "mix_a-dog-barking.wav")
    rest, _ = load_audio(out / "mix_a-dog-barking_residual.wav")
    mixture, _ = load_audio(mix)
    assert sr == 22050 and target.shape == mixture.shape
    torch.testing.assert_close(target + rest, mixture, atol=1e-5, rtol=0)
    # the CLI is a thin layer over separate(): same numbers
    from audiosep import separate

    direct = separate(mix, "A dog barking", model=str(model_dir)).audio
    torch.testing.assert_close(target, direct, atol=1e-6, rtol=0)


def test_single_file_output_and_force(model_dir, mix, tmp_path, capsys):
    dest = tmp_path / "dog.flac"
    assert run(["separate", mix, "a dog", "-o", dest, "--model", model_dir], capsys)[0] == 0
    assert load_audio(dest)[0].shape == (2, 8000)
    before = dest.read_bytes()
    code, _, err = run(["separate", mix, "a cat", "-o", dest, "--model", model_dir], capsys)
    assert code == 2 and "exists" in err and "--force" in err and dest.read_bytes() == before
    assert run(["separate", mix, "a cat", "-o", dest, "--model", model_dir, "--force"], capsys)[0] == 0
    assert dest.read_bytes() != before


def test_silent_input_writes_silence_with_warning(model_dir, tmp_path, capsys):
    silent = save_audio(tmp_path / "quiet.wav", np.zeros((1, 4000), np.float32), SR)
    code, _, err = run(["separate", silent, "a dog", "-o", tmp_path / "o/", "--model", model_dir], capsys)
    assert code == 0 and "warning" in err and "silent" in err
    assert not load_audio(tmp_path / "o" / "quiet_a-dog.wav")[0].any()


def _nan_file(tmp_path):
    x = np.zeros((100, 1), np.float32)
    x[10] = np.nan
    soundfile.write(tmp_path / "nan.wav", x, SR, subtype="FLOAT")
    return tmp_path / "nan.wav"


def _empty_file(tmp_path):
    soundfile.write(tmp_path / "empty.wav", np.zeros((0, 1), np.float32), SR)
    return tmp_path / "empty.wav"


def _symlink_loop(tmp_path):
    (tmp_path / "loop1.wav").symlink_to(tmp_path / "loop2.wav")
    (tmp_path / "loop2.wav").symlink_to(tmp_path / "loop1.wav")
    return tmp_path / "loop1.wav"


def _dangling(tmp_path):
    (tmp_path / "link.wav").symlink_to(tmp_path / "gone.wav")
    return tmp_path / "link.wav"


def _garbage(tmp_path, name):
    (tmp_path / name).write_bytes(b"\x89PNG not audio" * 20)
    return tmp_path / name


@pytest.mark.parametrize(
    "make_input,query,extra,message",
    [
        (lambda p: p / "missing.wav", "a dog", [], "not found: .*missing.wav"),
        (lambda p: _symlink_loop(p), "a dog", [], "loop1.wav is a symlink loop"),
        (lambda p: _dangling(p), "a dog", [], "link.wav is a symlink to .*gone.wav, which does not exist"),
        (lambda p: p, "a dog", [], "is a folder, not an audio file"),
        (lambda p: _garbage(p, "broken.wav"), "a dog", [], "cannot read .*broken.wav.*supported formats"),
        (lambda p: _garbage(p, "picture.png"), "a dog", [], "cannot read .*picture.png.*supported formats"),
        (_empty_file, "a dog", [], "zero-length"),
        (_nan_file, "a dog", [], "NaN or Inf"),
        (None, "   ", [], "empty query"),
        (None, "a dog", ["--model", "no-such-model"], "no-such-model"),
        (None, "a dog", ["-o", "OUT/one.wav", "x"], "folder"),  # two queries, one file
    ],
)
def test_errors_are_one_line_with_exit_code_2(model_dir, mix, tmp_path, capsys, make_input, query, extra, message):
    source = make_input(tmp_path) if make_input else mix
    argv = ["separate", source, query, "-o", tmp_path / "out/", "--model", model_dir]
    if extra and extra[0] == "-o":
        argv = ["separate", source, query, extra[2], "-o", tmp_path / "out" / "one.wav", "--model", model_dir]
    elif extra:
        argv = argv[:-2] + extra
    code, _, err = run(argv, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("audiosep: error: ")
    import re

    assert re.search(message, lines[0]), lines[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_weights_unavailable_offline(mix, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("AUDIOSEP_CACHE", str(tmp_path / "cache"))
    code, _, err = run(["separate", mix, "a dog", "-o", tmp_path / "out/", "--model", "audiosep-base", "--device", "cpu"], capsys)
    # one line naming the missing files, the folder to put them in and the fix
    assert code == 2 and err.startswith("audiosep: error: ") and err.count("\n") == 1
    assert "audiosep_base_4M_steps.ckpt" in err and str(tmp_path / "cache" / "audiosep-base") in err
    assert "AUDIOSEP_CACHE" in err and "audiosep models --files" in err


def test_models_files_lists_urls_and_paths(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AUDIOSEP_CACHE", str(tmp_path / "cache"))
    code, out, _ = run(["models", "--files", "audiosep-base"], capsys)
    assert code == 0
    assert "https://huggingface.co/spaces/Audio-AGI/AudioSep/resolve/" in out
    assert str(tmp_path / "cache" / "audiosep-base" / "audiosep_base_4M_steps.ckpt") in out
    assert "f8cda01bfd0ebd141eef45d41db7a3ada23a56568465840d3cff04b8010ce82c" in out


def test_models_lists_bundles(capsys):
    from audiosep.pretrained import list_models

    code, out, _ = run(["models"], capsys)
    assert code == 0
    for name in list_models():
        assert name in out
    assert "audiosep-offline-small (default)\t" in out and "audiosep-base (default)" not in out


def test_models_files_of_the_shipped_model_points_into_the_source_tree(capsys):
    from audiosep.pretrained import SHIPPED_DIR

    code, out, _ = run(["models", "--files", "audiosep-offline-small"], capsys)
    assert code == 0 and "url    none: ships inside the audiosep package" in out
    assert str(SHIPPED_DIR / "audiosep-offline-small" / "separation_net.safetensors") in out


def test_default_model_separates_offline_with_no_model_flag(mix, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("AUDIOSEP_CACHE", str(tmp_path / "cache"))
    code, out, err = run(["separate", mix, "rain falling", "-o", tmp_path / "out/"], capsys)
    assert code == 0, err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["mix_rain-falling.wav"]


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "audiosep", "separate", "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "--chunk-seconds" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "audiosep", "bogus"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_unavailable_device_is_a_one_line_error(mix, model_dir, tmp_path, capsys):
    code, _, err = run(["separate", mix, "a dog", "-o", tmp_path / "out/", "--model", model_dir,
                        "--device", "cuda"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "CUDA is not available" in err and "--device cpu" in err
    assert not (tmp_path / "out").exists()


def test_unsupported_output_format_is_refused(mix, model_dir, tmp_path, capsys):
    code, _, err = run(["separate", mix, "a dog", "-o", tmp_path / "x.mp4", "--model", model_dir], capsys)
    assert code == 2 and "unsupported output format '.mp4'" in err and "end the path with '/'" in err
    assert not (tmp_path / "x.mp4").exists()


def _no_model(monkeypatch):
    """Fail the test if a model is loaded: every check must come first."""

    def boom(*a, **k):
        raise AssertionError("the model was loaded before the arguments were checked")

    monkeypatch.setattr(AudioSep, "from_pretrained", classmethod(boom))


@pytest.mark.parametrize(
    "out,extra,message",
    [
        ("", [], "the output path is empty; give a file"),
        ("{mix}/out/", [], r"mix.wav is a file, not a folder"),
        ("{tmp}/" + "x" * 300 + ".wav", [], "is 304 bytes, longer than the 255 this file system allows; choose a shorter"),
        ("{mix}", ["--force"], r"output .*mix.wav is the input file .*mix.wav; write the result elsewhere"),
        ("{tmp}/out/", ["--chunk-seconds", "inf"], "--chunk-seconds must be a finite number of seconds >= 1"),
        ("{tmp}/out/", ["--chunk-seconds", "nan"], r"--chunk-seconds must be .*got nan; e.g. --chunk-seconds 10"),
        ("{tmp}/out/", ["--chunk-seconds", "1e-9"], "--chunk-seconds must be .*got 1e-09"),
        ("{tmp}/out/", ["--device", "meta"], "device 'meta' cannot run audiosep.*use 'cuda', 'mps' or 'cpu'"),
    ],
)
def test_bad_outputs_and_options_fail_before_the_model_loads(model_dir, mix, tmp_path, capsys, monkeypatch, out, extra, message):
    _no_model(monkeypatch)
    before = sorted(p.name for p in tmp_path.iterdir())
    mix_bytes = mix.read_bytes()
    out = out.format(mix=mix, tmp=tmp_path)
    code, stdout, err = run(["separate", mix, "a dog", "-o", out, "--model", model_dir, *extra], capsys)
    assert code == 2 and stdout == "" and err.count("\n") == 1 and err.startswith("audiosep: error: ")
    import re

    assert re.search(message, err), err
    assert mix.read_bytes() == mix_bytes and sorted(p.name for p in tmp_path.iterdir()) == before


def test_unwritable_output_folder_fails_before_the_model_loads(model_dir, mix, tmp_path, capsys, monkeypatch):
    _no_model(monkeypatch)
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access  # root may write anywhere: pretend this folder is read-only
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != locked and real_access(p, mode))
    code, _, err = run(["separate", mix, "a dog", "-o", locked / "sub/", "--model", model_dir], capsys)
    assert code == 2 and err.count("\n") == 1
    assert f"no permission to write in {locked}; choose another output folder" in err
    assert not any(locked.iterdir())


def test_long_names_are_shortened_and_colliding_slugs_made_distinct(model_dir, tmp_path, capsys):
    mix = save_audio(tmp_path / ("m" * 200 + ".wav"), 0.1 * torch.ones(1, 2000), SR)
    long_query = "a dog barking " * 10
    code, stdout, err = run(["separate", mix, "a dog!", "a dog?", long_query, "-o", tmp_path / "out/",
                             "--model", model_dir, "--residual"], capsys)
    assert code == 0, err
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(names) == 6 and all(len(n.encode()) <= 255 for n in names)
    assert "m" * 200 + "_a-dog.wav" in names and "m" * 200 + "_a-dog-2.wav" in names
    assert sorted(Path(line).name for line in stdout.splitlines()) == names


def test_a_second_run_into_the_same_folder_refuses_and_names_the_file(model_dir, mix, tmp_path, capsys):
    out = tmp_path / "out"
    assert run(["separate", mix, "rain", "a dog", "-o", f"{out}/", "--model", model_dir], capsys)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, _, err = run(["separate", mix, "a cat", "a dog", "-o", f"{out}/", "--model", model_dir], capsys)
    assert code == 2 and err.count("\n") == 1
    assert f"output exists: {out / 'mix_a-dog.wav'}; pass --force to replace it" in err and "mix_rain" not in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # mix_a-cat.wav not written either


def _interrupt_with_ctrl_c():
    raise KeyboardInterrupt


def _interrupt_with_sigterm():
    os.kill(os.getpid(), signal.SIGTERM)  # as `kill`, `timeout` or `docker stop` would


@pytest.mark.parametrize("interrupt", [_interrupt_with_ctrl_c, _interrupt_with_sigterm])
def test_interrupt_exits_130_and_leaves_no_partial_output(model_dir, mix, tmp_path, capsys, monkeypatch, interrupt):
    import audiosep.cli.separate_cmd as cmd

    calls = []

    def interrupted_after_the_first_file(mixture, queries, *, output, **kw):
        calls.append(output)
        save_audio(output[0], torch.zeros(1, 100), SR)  # one output whole, the next one not
        interrupt()

    monkeypatch.setattr(cmd, "separate", interrupted_after_the_first_file)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")

    def unhandled(signum, frame):  # instead of killing pytest when the CLI forgets SIGTERM
        raise AssertionError("SIGTERM reached the test's handler, not the CLI's")

    previous = signal.signal(signal.SIGTERM, unhandled)
    try:
        code, stdout, err = run(["separate", mix, "rain", "a dog", "-o", tmp_path / "out" / "new/", "--model",
                                 model_dir], capsys)
        assert signal.getsignal(signal.SIGTERM) is unhandled  # the CLI put the previous handler back
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == 130 and "interrupted" in err and stdout == "" and len(calls[0]) == 2
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["keep.txt"]  # no outputs, no .part, no new folder


def test_argument_errors_are_one_line(capsys):
    for argv, message in [(["separate", "mix.wav"], "the following arguments are required: QUERY, -o/--output"),
                          (["separate", "m.wav", "q", "-o", "o/", "--chunk-seconds", "abc"], "invalid float value: 'abc'"),
                          (["bogus"], "invalid choice: 'bogus'")]:
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and err.count("\n") == 1 and message in err and "--help'" in err, err


def test_warnings_are_printed_even_when_the_run_then_fails(model_dir, mix, tmp_path, capsys, monkeypatch):
    import audiosep.cli.separate_cmd as cmd

    def warn_then_fail(*a, **k):
        import warnings

        warnings.warn("first line\nsecond line")
        raise ValueError("the run failed")

    monkeypatch.setattr(cmd, "separate", warn_then_fail)
    code, _, err = run(["separate", mix, "a dog", "-o", tmp_path / "out/", "--model", model_dir], capsys)
    assert code == 2
    assert err.splitlines() == ["audiosep: warning: first line second line", "audiosep: error: the run failed"]
