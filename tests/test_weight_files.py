"""No file we read runs code: the loader on every torch pickle layout, and every entry point.

Each layout torch has written -- the zip archive (``torch.save``), the legacy stream
(``_use_new_zipfile_serialization=False``) and a bare ``pickle.dumps`` -- carries a ``__reduce__``
payload that would create a marker file; every test checks that the marker was not created and
what the caller got instead.
"""
from __future__ import annotations

import collections
import io
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile
import torch
from safetensors.torch import save_file

from audiosep.checkpoint import NET_FILE, load_separation_net, save_separation_net
from audiosep.cli.main import main
from audiosep.model import AudioSep
from audiosep.nn import ResUNet, ResUNetConfig
from audiosep.query.clip_convert import load_open_clip_state_dict
from audiosep.query.hashed import HashedTextEncoder
from audiosep.train import run_state
from audiosep.train.config import config_from_dict
from audiosep.train.trainer import starting_point
from audiosep.weight_files import (
    Placeholder, TorchScriptArchiveError, WeightFileError, load_torch_file, read_safetensors,
)

LAYOUTS = ["zip", "legacy", "bare"]
NOISE = 0.1 * torch.randn(1600, generator=torch.Generator().manual_seed(0)).numpy()
TINY = ResUNetConfig(
    stem_channels=4, encoder_channels=(4, 8), pool_sizes=((2, 2), (2, 2)),
    n_fft=256, hop_length=64, sample_rate=16000, condition_dim=512,
)


class Exploit:
    """Unpickling it with plain pickle runs ``touch MARKER``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write(obj, path: Path, layout: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if layout == "zip":
        torch.save(obj, path)
    elif layout == "legacy":
        torch.save(obj, path, _use_new_zipfile_serialization=False)
    else:
        path.write_bytes(pickle.dumps(obj))
    return path


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / "pwned"
    yield path
    assert not path.exists(), "the payload ran"


def refused(path: Path) -> str:
    return f"refused to load {path}: it holds a pickled posix.system object.*torch.save\\(model.state_dict"


# -- the loader ---------------------------------------------------------------------------------
def mixed_state() -> dict:
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(3, 4, generator=gen)
    return collections.OrderedDict(
        a=a, row=a[1], t=torch.randn(2, 3, generator=gen).t(), long=torch.arange(5),
        half=torch.randn(4, generator=gen).half(), bf16=torch.randn(4, generator=gen).bfloat16(),
        flag=torch.tensor([True, False]), cplx=torch.tensor([1 + 2j]), empty=torch.zeros(0, 3),
        scalar=torch.tensor(3.5), u16=torch.tensor([1, 65535]).to(torch.uint16),
        param=torch.nn.Parameter(torch.ones(2)),
    )


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_round_trips_tensors_and_plain_values(tmp_path, layout):
    state = mixed_state()
    extra = {"size": torch.Size([2, 3]), "dtype": torch.float16, "device": torch.device("cpu"),
             "bytes": b"\xff\x00", "set": {1, 2}, "nested": [1, 2.5, "x", None, (True,)]}
    loaded = load_torch_file(write({"state_dict": state, "extra": extra}, tmp_path / "f.pt", layout))
    assert type(loaded["state_dict"]) is collections.OrderedDict and loaded["extra"] == extra
    for key, value in state.items():
        got = loaded["state_dict"][key]
        assert got.dtype == value.dtype and got.shape == value.shape and got.stride() == value.stride(), key
        assert torch.equal(got.float() if got.dtype == torch.uint16 else got,
                           value.float() if value.dtype == torch.uint16 else value), key
    assert isinstance(loaded["state_dict"]["param"], torch.nn.Parameter)
    if layout != "bare":  # torch.save keeps views of one storage shared
        assert loaded["state_dict"]["row"].untyped_storage().data_ptr() == loaded["state_dict"]["a"].untyped_storage().data_ptr()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_a_payload_file_is_refused_in_every_layout(tmp_path, marker, layout):
    path = write(Exploit(marker), tmp_path / "evil.pt", layout)
    with pytest.raises(WeightFileError, match=refused(path)):
        load_torch_file(path)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_unknown_classes_beside_tensors_become_inert_placeholders(tmp_path, marker, layout):
    path = write({"state_dict": {"w": torch.ones(2)}, "callbacks": [Exploit(marker)]}, tmp_path / "l.ckpt", layout)
    loaded = load_torch_file(path)
    assert torch.equal(loaded["state_dict"]["w"], torch.ones(2))
    assert isinstance(loaded["callbacks"][0], Placeholder) and repr(loaded["callbacks"][0]) == "<refused posix.system>"
    with pytest.raises(WeightFileError, match="it names posix.system, outside the allow-list"):
        load_torch_file(path, strict=True)


def test_a_whole_pickled_module_is_refused_with_what_to_do(tmp_path):
    torch.save(torch.nn.Linear(2, 2), tmp_path / "module.pt")
    with pytest.raises(WeightFileError, match="torch.nn.modules.linear.Linear object instead of tensors.*state_dict"):
        load_torch_file(tmp_path / "module.pt")


@pytest.mark.parametrize("layout", ["zip", "legacy"])
@pytest.mark.parametrize("keep", [0, 10, 0.5, -30])
def test_empty_and_truncated_files_are_one_line_errors(tmp_path, layout, keep):
    data = write({"w": torch.randn(64)}, tmp_path / "full.pt", layout).read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: int(len(data) * keep) if isinstance(keep, float) else keep])
    expected = "the file is empty" if keep == 0 else "truncated or corrupt"
    with pytest.raises(WeightFileError, match=f"cannot read {cut} as a PyTorch weights file.*{expected}") as err:
        load_torch_file(cut)
    assert "\n" not in str(err.value)


def test_a_tensor_reaching_past_its_storage_is_refused(tmp_path):
    class Storage:  # pickles as torch pickles a storage inside a bare pickle: 4 floats
        def __reduce__(self):
            buf = io.BytesIO()
            torch.save(torch.zeros(4)._typed_storage(), buf, _use_new_zipfile_serialization=False)
            return (torch.storage._load_from_bytes, (buf.getvalue(),))

    class Oversized:
        def __reduce__(self):
            return (torch._utils._rebuild_tensor_v2, (Storage(), 2, (100,), (1,), False, collections.OrderedDict()))

    (tmp_path / "over.pt").write_bytes(pickle.dumps({"w": Oversized()}))
    with pytest.raises(WeightFileError, match="reaches past the end of its storage"):
        load_torch_file(tmp_path / "over.pt")


def test_a_torchscript_archive_says_what_it_is(tmp_path):
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), tmp_path / "scripted.pt")
    with pytest.raises(TorchScriptArchiveError, match="scripted.pt is a TorchScript archive.*state_dict"):
        load_torch_file(tmp_path / "scripted.pt")


@pytest.mark.parametrize("size", [0, 5, -3])
def test_empty_and_truncated_safetensors_are_one_line_errors(tmp_path, size):
    save_file({"w": torch.randn(100)}, str(tmp_path / "full.safetensors"))
    data = (tmp_path / "full.safetensors").read_bytes()
    (tmp_path / "cut.safetensors").write_bytes(data[:size])
    expected = "the file is empty" if size == 0 else "truncated or corrupt"
    with pytest.raises(WeightFileError, match=f"cannot read {tmp_path / 'cut.safetensors'} as safetensors.*{expected}"):
        read_safetensors(tmp_path / "cut.safetensors")


# -- every entry point --------------------------------------------------------------------------
def tiny_net() -> ResUNet:
    torch.manual_seed(0)  # parameter init only
    return ResUNet(TINY).eval()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_load_separation_net_refuses_payloads_and_keeps_lightning_tensors(tmp_path, marker, layout):
    evil = write(Exploit(marker), tmp_path / "evil.pt", layout)
    with pytest.raises(WeightFileError, match=refused(evil)):
        load_separation_net(evil)
    net = tiny_net()
    state = {k: v for k, v in net.state_dict().items()}
    ckpt = write({"state_dict": state, "hyper_parameters": {"cb": Exploit(marker)}}, tmp_path / "l.ckpt", layout)
    loaded = load_separation_net(ckpt, sample_rate=TINY.sample_rate, hop_length=TINY.hop_length)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in state.items())


@pytest.mark.parametrize("layout", LAYOUTS)
def test_hub_mixin_folder_with_a_payload_bin_is_refused(tmp_path, marker, layout):
    evil = write(Exploit(marker), tmp_path / "hub" / "pytorch_model.bin", layout)
    with pytest.raises(WeightFileError, match=refused(evil)):
        load_separation_net(tmp_path / "hub")


def clap_model_folder(tmp_path: Path, checkpoint: Path) -> Path:
    """A saved model whose config.json names ``checkpoint`` as its CLAP weights."""
    folder = AudioSep(tiny_net(), HashedTextEncoder(dim=512)).save_pretrained(tmp_path / "model")
    config = json.loads((folder / "config.json").read_text())
    config["query_encoder"] = {"kind": "clap", "checkpoint": str(checkpoint), "tokenizer": str(tmp_path)}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.mark.parametrize("layout", LAYOUTS)
def test_model_folder_naming_a_payload_clap_checkpoint(tmp_path, marker, layout, capsys):
    evil = write(Exploit(marker), tmp_path / "clap.pt", layout)
    folder = clap_model_folder(tmp_path, evil)
    with pytest.raises(WeightFileError, match=refused(evil)):
        AudioSep.from_pretrained(folder)
    mix = tmp_path / "mix.wav"
    soundfile.write(mix, NOISE, 16000)
    code = main(["separate", str(mix), "a dog", "-o", str(tmp_path / "out/"), "--model", str(folder)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("audiosep: error: refused to load ") and str(evil) in err


@pytest.mark.slow  # starts a Python process (~10 s)
def test_python_m_audiosep_refuses_a_payload_clap_checkpoint(tmp_path, marker):
    evil = write(Exploit(marker), tmp_path / "clap.pt", "bare")
    folder = clap_model_folder(tmp_path, evil)
    soundfile.write(tmp_path / "mix.wav", NOISE, 16000)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run(
        [sys.executable, "-m", "audiosep", "separate", str(tmp_path / "mix.wav"), "a dog",
         "-o", str(tmp_path / "out/"), "--model", str(folder)],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert done.returncode == 2 and done.stderr.startswith(f"audiosep: error: refused to load {evil}")
    assert done.stderr.count("\n") == 1


@pytest.mark.parametrize("layout", LAYOUTS)
def test_clip_converter_refuses_payloads(tmp_path, marker, layout):
    evil = write(Exploit(marker), tmp_path / "open_clip_pytorch_model.bin", layout)
    with pytest.raises(WeightFileError, match=refused(evil)):
        load_open_clip_state_dict(evil)


def init_config(tmp_path: Path, init_from: Path):
    return config_from_dict({
        "model": dict(TINY.to_dict()), "query_encoder": {"kind": "hashed", "dim": 512},
        "data": {"train_manifests": [str(tmp_path / "train.jsonl")], "sample_rate": TINY.sample_rate},
        "training": {"init_from": str(init_from), "out_dir": str(tmp_path / "run"), "device": "cpu"},
    })


@pytest.mark.parametrize("layout", LAYOUTS)
def test_training_init_from_refuses_payloads(tmp_path, marker, layout):
    evil = write(Exploit(marker), tmp_path / "start.pt", layout)
    with pytest.raises(WeightFileError, match=refused(evil)):
        starting_point(init_config(tmp_path, evil))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("nested", [False, True])
def test_training_resume_refuses_payload_states(tmp_path, marker, layout, nested):
    folder = tmp_path / "checkpoints" / "step-00000001"
    net = tiny_net()
    save_separation_net(net, folder / NET_FILE)
    payload = {"format": run_state.STATE_FORMAT, "version": 1, "step": 1, "x": Exploit(marker)} if nested else Exploit(marker)
    state = write(payload, folder / run_state.STATE_FILE, layout)
    expected = "it names posix.system, outside the allow-list"  # training states are read strictly
    with pytest.raises(WeightFileError, match=f"refused to load {state}: {expected}"):
        run_state.load_checkpoint(folder, net)


def test_a_saved_training_state_resumes_through_the_strict_loader(tmp_path):
    net = tiny_net()
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    for param in net.parameters():
        param.grad = torch.ones_like(param)
    opt.step()
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    folder = run_state.save_checkpoint(
        run_state.checkpoint_dir(tmp_path, 1), net,
        {"step": 1, "optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "rng": run_state.rng_states()},
    )
    state = run_state.load_checkpoint(tmp_path, net)
    assert state["step"] == 1 and state["directory"] == str(folder)
    assert torch.equal(state["optimizer"]["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])


# -- separation_net.safetensors that is cut short -------------------------------------------------
@pytest.mark.parametrize("size", [0, 100])
def test_truncated_separation_net_is_a_one_line_error(tmp_path, capsys, size):
    folder = AudioSep(tiny_net(), HashedTextEncoder(dim=512)).save_pretrained(tmp_path / "model")
    net_file = folder / NET_FILE
    net_file.write_bytes(net_file.read_bytes()[:size])
    expected = "the file is empty" if size == 0 else "truncated or corrupt"
    with pytest.raises(WeightFileError, match=f"cannot read {net_file} as safetensors.*{expected}"):
        load_separation_net(net_file)
    soundfile.write(tmp_path / "mix.wav", NOISE, 16000)
    code = main(["separate", str(tmp_path / "mix.wav"), "a dog", "-o", str(tmp_path / "out/"), "--model", str(folder)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"audiosep: error: cannot read {net_file} as safetensors") and expected in err
