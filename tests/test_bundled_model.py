"""The offline model that ships inside the package (``audiosep/weights/``): pinned, found without a
cache or network, loaded from its config.json like any saved folder, the default, and it separates
the shipped example mixture by its query."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch

from audiosep import pretrained, separate
from audiosep.audio.io import load_audio
from audiosep.hub import sha256_file
from audiosep.metrics import sdr
from audiosep.model import AudioSep, load_bundle
from audiosep.nn.config import ResUNetConfig
from audiosep.pretrained import ChecksumError, PretrainedError, WeightsUnavailableError

ROOT = Path(__file__).resolve().parents[1]
NAME = "audiosep-offline-small"
SHIPPED = ROOT / "audiosep" / "weights" / NAME
EXAMPLE = ROOT / "examples" / "audio"


def test_it_is_the_default_and_its_files_match_the_pinned_digests():
    assert pretrained.DEFAULT_MODEL == NAME
    bundle = pretrained.get_bundle(NAME)
    assert bundle.shipped and bundle.config is None and "audiosep-base" in pretrained.list_models()
    assert pretrained.SHIPPED_DIR / NAME == SHIPPED
    for f in bundle.files:
        assert sha256_file(SHIPPED / f.filename) == f.sha256, f"{f.filename}: re-pin it in audiosep/pretrained.py"
    assert (SHIPPED / "separation_net.safetensors").stat().st_size <= 25_000_000


def test_loads_offline_from_the_source_tree_with_an_empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOSEP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = load_bundle(NAME)
    written = json.loads((SHIPPED / "config.json").read_text())["separation_net"]
    assert model.sample_rate == 16000 and model.separation_net.config == ResUNetConfig.from_dict(written)
    assert not (tmp_path / "cache").exists()  # nothing copied, nothing written beside the shipped files
    assert sorted(p.name for p in SHIPPED.iterdir()) == ["README.md", "config.json", "separation_net.safetensors"]
    # By name or as a folder: one code path, the same model.
    assert AudioSep.from_pretrained(SHIPPED).separation_net.config == model.separation_net.config


def edited_copy(tmp_path: Path, **net_changes) -> Path:
    """A copy of the shipped folder under ``tmp_path/shipped`` with separation_net fields changed."""
    copy = tmp_path / "shipped" / NAME
    shutil.copytree(SHIPPED, copy)
    config = json.loads((copy / "config.json").read_text())
    config["separation_net"].update(net_changes)
    (copy / "config.json").write_text(json.dumps(config))
    return copy


def unpin_config(monkeypatch) -> None:
    """Register the shipped bundle with its config.json digest unchecked."""
    bundle = pretrained.get_bundle(NAME)
    files = tuple(dataclasses.replace(f, sha256=None) if f.filename == "config.json" else f for f in bundle.files)
    monkeypatch.setitem(pretrained.BUNDLES, NAME, dataclasses.replace(bundle, files=files))


def test_the_bundle_reads_its_config_json(tmp_path, monkeypatch):
    """Editing config.json changes the network built by name; the pinned digest guards the file."""
    edited_copy(tmp_path, mask_exponent=1.0, input_level_db=-30.0)
    monkeypatch.setattr(pretrained, "SHIPPED_DIR", tmp_path / "shipped")
    with pytest.raises(ChecksumError, match="config.json has sha256 .* but bundle 'audiosep-offline-small' pins"):
        load_bundle(NAME)
    unpin_config(monkeypatch)
    config = load_bundle(NAME).separation_net.config
    assert (config.mask_exponent, config.input_level_db) == (1.0, -30.0)


def test_a_config_json_that_contradicts_the_registry_is_refused(tmp_path, monkeypatch):
    edited_copy(tmp_path, sample_rate=8000)
    copy = tmp_path / "shipped" / NAME
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "sample_rate": 8000}))
    monkeypatch.setattr(pretrained, "SHIPPED_DIR", tmp_path / "shipped")
    unpin_config(monkeypatch)
    with pytest.raises(PretrainedError, match="registered at 16000 Hz but its config says 8000 Hz"):
        load_bundle(NAME)


def test_a_damaged_shipped_file_is_refused(tmp_path, monkeypatch):
    copy = tmp_path / "shipped" / NAME
    shutil.copytree(SHIPPED, copy)
    with open(copy / "separation_net.safetensors", "r+b") as f:
        f.seek(-4, 2)
        f.write(b"\x00\x00\x80\x7f")  # the last float becomes +inf
    monkeypatch.setattr(pretrained, "SHIPPED_DIR", tmp_path / "shipped")
    with pytest.raises(ChecksumError, match="reinstall audiosep .in a checkout: `git checkout -- audiosep/weights/`"):
        load_bundle(NAME)


def test_missing_everywhere_says_where_the_files_come_from(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "SHIPPED_DIR", tmp_path / "nowhere")
    monkeypatch.setenv("AUDIOSEP_CACHE", str(tmp_path / "cache"))
    with pytest.raises(WeightsUnavailableError, match="it ships with the audiosep package; reinstall") as err:
        load_bundle(NAME)
    assert str(tmp_path / "cache" / NAME) in str(err.value)
    # ... and a copy put into the cache, as the message says, is used.
    shutil.copytree(SHIPPED, tmp_path / "cache" / NAME)
    assert load_bundle(NAME).sample_rate == 16000


def test_separates_the_shipped_example_by_its_query():
    mixture, sr = load_audio(EXAMPLE / "mixture.wav")
    sources = {q: load_audio(EXAMPLE / f"source_{name}.flac")[0] for q, name in QUERIES.items()}
    result = separate(mixture, list(QUERIES), sample_rate=sr)  # the default model
    assert result.sample_rate == sr and result.audio.shape == (2, *mixture.shape)
    for k, (query, source) in enumerate(sources.items()):
        other = next(s for q, s in sources.items() if q != query)
        est = result.audio[k]
        gain = float(sdr(est, source) - sdr(mixture, source))
        assert gain > MIN_SDRI_DB, f"{query!r}: SDRi {gain:.1f} dB"
        assert float(sdr(est, source)) > float(sdr(est, other)) + 3, f"{query!r} is not closer to its own source"


# The pair in examples/audio (ATTRIBUTION.md) and the bar this test holds the model to.
QUERIES = {"a piano playing": "piano", "rain falling": "rain"}
MIN_SDRI_DB = 3.0
