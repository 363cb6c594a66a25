"""Every ```python block of the README runs, so the documentation cannot drift from the code.

The blocks run in a temporary folder holding what they name: a copy of ``examples/audio`` and a
reference-layout ``audiosep_base_4M_steps.ckpt`` (the reference fixture's weights); the default
model is the bundled offline one. The ``audiosep separate`` step of the first shell command runs
too.
"""
from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest
import torch

from audiosep.audio.io import load_audio

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_python_examples():
    assert len(python_blocks()) >= 2


@pytest.mark.parametrize("index", range(len(python_blocks())))
def test_readme_python_block_runs(index, tmp_path, monkeypatch, official_state):
    shutil.copytree(ROOT / "examples" / "audio", tmp_path / "examples" / "audio")
    torch.save({"state_dict": official_state}, tmp_path / "audiosep_base_4M_steps.ckpt")
    monkeypatch.chdir(tmp_path)

    namespace: dict = {}
    exec(compile(python_blocks()[index], f"README.md python block {index}", "exec"), namespace)

    if "result" in namespace:  # the separate() example
        mixture, _ = load_audio(tmp_path / "examples" / "audio" / "mixture.wav")
        result = namespace["result"]
        assert tuple(result.audio.shape) == (2, *mixture.shape)
        assert sorted(p.name for p in (tmp_path / "separated").iterdir()) == sorted(
            f"separated_{q}{s}.wav" for q in ("a-piano-playing", "rain-falling") for s in ("", "_residual"))
    if "separated" in namespace:  # the network example
        assert namespace["separated"].shape == namespace["mixture"].shape


def test_readme_first_command_separates_the_shipped_mixture(tmp_path, monkeypatch):
    from audiosep.cli.main import main

    first = re.search(r"```bash\n(.*?)```", README.read_text(), flags=re.S).group(1)
    assert "pip install" in first, "the first command must set up the environment"
    step = next(part for part in first.split("&&") if part.strip().startswith("audiosep separate"))
    argv = shlex.split(step)[1:]
    shutil.copytree(ROOT / "examples" / "audio", tmp_path / "examples" / "audio")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(argv) == 0
    out = tmp_path / argv[argv.index("-o") + 1]
    written = sorted(out.iterdir())
    assert [p.name for p in written] == [f"mixture_{re.sub(r'[^a-z0-9]+', '-', argv[2].lower())}.wav"]
    estimate, sr = load_audio(written[0])
    mixture, msr = load_audio(tmp_path / argv[1])
    assert sr == msr and estimate.shape == mixture.shape
