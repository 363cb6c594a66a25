"""The offline model that ships in ``checkpoints/``: pinned, found without a cache or network,
the default, and it separates the shipped example mixture by its query."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from audiosep import pretrained, separate
from audiosep.audio.io import load_audio
from audiosep.hub import sha256_file
from audiosep.metrics import sdr
from audiosep.pretrained import ChecksumError, WeightsUnavailableError, load_bundle

ROOT = Path(__file__).resolve().parents[1]
NAME = "audiosep-offline-small"
EXAMPLE = ROOT / "examples" / "audio"


def test_it_is_the_default_and_its_files_match_the_pinned_digests():
    assert pretrained.DEFAULT_MODEL == NAME
    bundle = pretrained.get_bundle(NAME)
    assert bundle.shipped and "audiosep-base" in pretrained.list_models()
    folder = ROOT / "checkpoints" / NAME
    for f in bundle.files:
        assert sha256_file(folder / f.filename) == f.sha256, f"{f.filename}: re-pin it in audiosep/pretrained.py"
    assert (folder / bundle.checkpoint).stat().st_size <= 25_000_000


def test_loads_offline_from_the_source_tree_with_an_empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOSEP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = load_bundle(NAME)
    assert model.sample_rate == 16000 and model.separation_net.config == pretrained.OFFLINE_SMALL_NET
    assert not (tmp_path / "cache").exists()  # nothing copied, nothing written beside the shipped files
    assert sorted(p.name for p in (ROOT / "checkpoints" / NAME).iterdir()) == ["config.json",
                                                                                "separation_net.safetensors"]


def test_a_damaged_shipped_file_is_refused(tmp_path, monkeypatch):
    copy = tmp_path / "shipped" / NAME
    shutil.copytree(ROOT / "checkpoints" / NAME, copy)
    with open(copy / "separation_net.safetensors", "r+b") as f:
        f.seek(-4, 2)
        f.write(b"\x00\x00\x80\x7f")  # the last float becomes +inf
    monkeypatch.setattr(pretrained, "SHIPPED_ROOTS", (tmp_path / "shipped",))
    with pytest.raises(ChecksumError, match="git checkout -- checkpoints/"):
        load_bundle(NAME)


def test_missing_everywhere_says_where_the_files_come_from(tmp_path, monkeypatch):
    monkeypatch.setattr(pretrained, "SHIPPED_ROOTS", (tmp_path / "nowhere",))
    monkeypatch.setenv("AUDIOSEP_CACHE", str(tmp_path / "cache"))
    with pytest.raises(WeightsUnavailableError, match="ships in the audiosep source tree") as err:
        load_bundle(NAME)
    assert str(tmp_path / "cache" / NAME) in str(err.value)
    # ... and a copy put into the cache, as the message says, is used.
    shutil.copytree(ROOT / "checkpoints" / NAME, tmp_path / "cache" / NAME)
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
