"""Every ```python block of the README runs, so the documentation cannot drift from the code.

The blocks run in a temporary folder holding what they name: ``mixture.wav``, a reference-layout
``audiosep_base_4M_steps.ckpt`` (the reference fixture's weights) and, as the default model, a
tiny saved model (the released weights cannot be downloaded in tests).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from audiosep import pretrained
from audiosep.audio.io import save_audio
from audiosep.model import AudioSep
from audiosep.nn import ResUNet, ResUNetConfig

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_examples():
    assert len(python_blocks()) >= 2


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_readme_python_block_runs(index, tmp_path, monkeypatch, official_state):
    from audiosep.query.minilm import MiniLMEncoder

    gen = torch.Generator().manual_seed(index)
    tiny = ResUNetConfig(sample_rate=16000, n_fft=256, hop_length=64, stem_channels=4,
                         encoder_channels=(4, 8, 8), pool_sizes=((2, 2), (2, 2), (1, 2)), condition_dim=384)
    net = ResUNet(tiny)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    model_dir = AudioSep(net.eval(), MiniLMEncoder()).save_pretrained(tmp_path / "tiny-model")
    monkeypatch.setattr(pretrained, "DEFAULT_MODEL", str(model_dir))
    save_audio(tmp_path / "mixture.wav", 0.1 * torch.randn(2, 22050, generator=gen), 22050)
    torch.save({"state_dict": official_state}, tmp_path / "audiosep_base_4M_steps.ckpt")
    monkeypatch.chdir(tmp_path)

    namespace: dict = {}
    exec(compile(python_blocks()[index], f"README.md python block {index}", "exec"), namespace)

    if "result" in namespace:  # the separate() example
        result = namespace["result"]
        assert tuple(result.audio.shape) == (2, 2, 22050)
        assert sorted(p.name for p in (tmp_path / "separated").iterdir()) == sorted(
            f"separated_{q}{s}.wav" for q in ("a-dog-barking", "rain") for s in ("", "_residual"))
    if "separated" in namespace:  # the network example
        assert namespace["separated"].shape == namespace["mixture"].shape
