"""``examples/`` scripts run against a tiny saved model, so they cannot drift from the API."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from audiosep.audio.io import load_audio, save_audio
from audiosep.model import AudioSep
from audiosep.nn import ResUNet, ResUNetConfig

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_separate_file_example(tmp_path, capsys):
    from audiosep.query.minilm import MiniLMEncoder

    torch.manual_seed(0)  # parameter init only
    cfg = ResUNetConfig(
        sample_rate=16000, n_fft=256, hop_length=64, stem_channels=4, encoder_channels=(4, 8, 8),
        pool_sizes=((2, 2), (2, 2), (1, 2)), condition_dim=384,
    )
    model_dir = AudioSep(ResUNet(cfg).eval(), MiniLMEncoder()).save_pretrained(tmp_path / "model")
    mixture = 0.1 * torch.randn(1, 12000, generator=torch.Generator().manual_seed(0))
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
