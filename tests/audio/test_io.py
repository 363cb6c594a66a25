"""Audio file I/O: layouts, formats, errors."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import soundfile
import torch

from audiosep.audio.io import AudioFileError, load_audio, save_audio


def test_wav_round_trip_is_exact_and_channels_first(tmp_path):
    x = 0.5 * torch.randn(2, 1234, generator=torch.Generator().manual_seed(0))
    x[0, 0] = 1.5  # float WAV keeps values beyond full scale
    save_audio(tmp_path / "a.wav", x, 22050)
    y, sr = load_audio(tmp_path / "a.wav")
    assert sr == 22050 and y.dtype == torch.float32 and y.shape == (2, 1234)
    torch.testing.assert_close(y, x, rtol=0, atol=0)
    data, _ = soundfile.read(tmp_path / "a.wav")
    assert data.shape == (1234, 2)  # on disk: soundfile's [T, C]


@pytest.mark.parametrize("suffix,atol", [(".flac", 1e-6), (".ogg", None)])
def test_other_formats(tmp_path, suffix, atol):
    t = np.arange(8000) / 16000
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    save_audio(tmp_path / f"a{suffix}", x, 16000)
    y, sr = load_audio(tmp_path / f"a{suffix}")
    assert sr == 16000 and y.shape[0] == 1
    if atol is not None:
        np.testing.assert_allclose(y[0].numpy(), x, atol=atol)
    else:  # lossy: check the tone is there
        assert abs(float(y.pow(2).mean()) - 0.125) < 0.02


def test_overwrite_refused_then_allowed(tmp_path):
    p = tmp_path / "a.wav"
    save_audio(p, torch.zeros(10), 8000)
    with pytest.raises(FileExistsError, match="--force"):
        save_audio(p, torch.ones(10), 8000)
    save_audio(p, torch.ones(10), 8000, overwrite=True)
    assert load_audio(p)[0].sum() == 10
    assert [q.name for q in tmp_path.iterdir()] == ["a.wav"]  # no temporary files left


def test_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        load_audio(tmp_path / "nope.wav")
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"this is not audio at all" * 10)
    with pytest.raises(AudioFileError, match=r"bad\.wav.*supported formats.*WAV"):
        load_audio(bad)
    empty = tmp_path / "empty.wav"
    soundfile.write(empty, np.zeros((0, 1), np.float32), 8000)
    with pytest.raises(AudioFileError, match="zero-length"):
        load_audio(empty)
    with pytest.raises(AudioFileError, match="suffix"):
        save_audio(tmp_path / "a.mp4", torch.zeros(10), 8000)
    with pytest.raises(AudioFileError, match="folder"):
        load_audio(tmp_path)


def test_truncated_wav_warns_naming_the_file_and_the_missing_frames(tmp_path):
    full = tmp_path / "full.wav"
    soundfile.write(full, np.zeros((1000, 2), np.float32), 8000, subtype="FLOAT")
    data = full.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) - 400 * 8])  # 400 stereo float frames short
    with pytest.warns(UserWarning, match=r"cut\.wav is truncated: its header declares 1000 frames but only 600 are present \(400 missing\)"):
        wav, _ = load_audio(cut)
    assert wav.shape == (2, 600)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_audio(full)  # a whole file: no warning


def test_symlink_loop_and_dangling_link_are_named_as_such(tmp_path):
    loop = tmp_path / "loop.wav"
    loop.symlink_to(loop)
    with pytest.raises(AudioFileError, match=r"loop\.wav is a symlink loop"):
        load_audio(loop)
    dangling = tmp_path / "dangling.wav"
    dangling.symlink_to(tmp_path / "gone.wav")
    with pytest.raises(FileNotFoundError, match=r"dangling\.wav is a symlink to .*gone\.wav, which does not exist"):
        load_audio(dangling)


def test_permission_denied_says_so_not_convert(tmp_path, monkeypatch):
    import audiosep.audio.io as audio_io

    p = tmp_path / "locked.wav"
    save_audio(p, torch.zeros(10), 8000)

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(audio_io, "open", denied, raising=False)  # works as root too
    with pytest.raises(AudioFileError, match=r"permission denied: cannot read .*locked\.wav; give yourself read access") as err:
        load_audio(p)
    assert "convert" not in str(err.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_a_permission_error_message(tmp_path):
    p = tmp_path / "locked.wav"
    save_audio(p, torch.zeros(10), 8000)
    p.chmod(0)
    with pytest.raises(AudioFileError, match="permission denied"):
        load_audio(p)


def test_block_writer_equals_save_audio(tmp_path):
    from audiosep.audio.io import open_writer

    x = torch.randn(2, 5000, generator=torch.Generator().manual_seed(0)) * 0.1
    with open_writer(tmp_path / "blocks.wav", 8000, 2) as write:
        for i in range(0, 5000, 777):
            write(x[:, i : i + 777])
    assert torch.equal(load_audio(tmp_path / "blocks.wav")[0], x)
    with pytest.raises(ZeroDivisionError):
        with open_writer(tmp_path / "failed.wav", 8000, 2) as write:
            write(x)
            1 / 0
    assert sorted(q.name for q in tmp_path.iterdir()) == ["blocks.wav"]  # nothing half-written
