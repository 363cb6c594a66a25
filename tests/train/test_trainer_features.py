"""Gradient accumulation, EMA, the cosine schedule, fp16 loss scaling, best/ export, console
lines, logged metrics and external trackers, on the tone dataset with a tiny network (CPU)."""
from __future__ import annotations

import json
import math
import sys
import types
from pathlib import Path

import pytest
import torch
import yaml

from audiosep import AudioSep
from audiosep.checkpoint import read_state
from audiosep.train.cli import write_tone_dataset
from audiosep.train.config import ConfigError, config_from_dict
from audiosep.train.schedule import lr_factor
from audiosep.train.trainer import Trainer

SR = 8000


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    # 6 tones: 24 training clips, 6 validation clips
    return write_tone_dataset(tmp_path_factory.mktemp("tones"), per_tone=4, val_per_tone=1, sample_rate=SR, seconds=0.6)


def make_config(train, out_dir, *, val=None, batch=4, group=None, lr=3e-3, schedule=None, **training):
    raw = {
        "model": {"sample_rate": SR, "n_fft": 256, "hop_length": 80, "stem_channels": 4,
                  "encoder_channels": [4, 8], "pool_sizes": [[2, 2], [2, 2]], "condition_dim": 16},
        "query_encoder": {"kind": "hashed", "dim": 16},
        "data": {"train_manifests": [str(train)], "val_manifests": [str(val)] if val else [],
                 "sample_rate": SR, "segment_seconds": 0.5, "batch_size": batch, "val_batch_size": 2},
        "mixing": {"distinct_captions": True, "group_size": group},
        "optim": {"lr": lr},
        "schedule": schedule or {"warmup_steps": 2},
        "training": {"steps": 4, "val_every": 0, "checkpoint_every": 0, "log_every": 2,
                     "out_dir": str(out_dir), "device": "cpu", "progress": False, **training},
    }
    return config_from_dict(raw)


def weights(net) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items() if v.is_floating_point()}


def max_diff(a, b) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def records(run: Path, kind: str) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


# -- gradient accumulation -----------------------------------------------------------------
def test_accumulating_two_batches_of_two_steps_like_one_batch_of_four(tones, tmp_path):
    """24 clips: 6 steps per epoch either way; 8 steps cross an epoch. Frozen BatchNorm and
    mixing groups of 2 make both runs see the same mixtures and take the same steps."""
    train, _ = tones
    common = dict(group=2, steps=8, freeze_batchnorm=True, log_every=4)
    big = Trainer(make_config(train, tmp_path / "big", batch=4, **common))
    big.fit()
    acc = Trainer(make_config(train, tmp_path / "acc", batch=2, grad_accum_steps=2, **common))
    assert acc.global_batch == 4 and acc.optimizer_steps_per_epoch == 6
    acc.fit()
    init = weights(Trainer(make_config(train, tmp_path / "init", batch=4, **common)).net)
    assert max_diff(weights(big.net), init) > 1e-2  # both trained
    assert max_diff(weights(acc.net), weights(big.net)) < 2e-5
    # without accumulation, batch 2 takes other steps (so the equality above is not trivial)
    small = Trainer(make_config(train, tmp_path / "small", batch=2, **common))
    small.fit()
    assert max_diff(weights(small.net), weights(big.net)) > 1e-3
    logged = records(tmp_path / "acc", "train")
    assert [r["step"] for r in logged] == [4, 8] and all(r["samples_per_s"] > 0 for r in logged)


def test_resume_with_accumulation_ema_and_fp16_is_exact(tones, tmp_path):
    """2N steps straight == N, resume, N more: raw weights, EMA weights, gradient-scaler state."""
    train, _ = tones
    opts = dict(batch=2, grad_accum_steps=2, ema_decay=0.7, precision="fp16", checkpoint_every=2, steps=3)
    a = Trainer(make_config(train, tmp_path / "a", **opts))
    a.fit()
    ckpt = tmp_path / "a" / "checkpoints" / "step-00000002"
    b = Trainer(make_config(train, tmp_path / "b", **opts), resume=ckpt)
    assert b.step == 2 and b.scaler.state_dict() == torch.load(ckpt / "training_state.pt", weights_only=True)["scaler"]
    b.fit()
    assert max_diff(weights(a.net), weights(b.net)) <= 1e-6
    assert max_diff(a.ema.state_dict(), b.ema.state_dict()) <= 1e-6
    assert a.scaler.state_dict() == b.scaler.state_dict() and a.scaler.is_enabled()
    assert max_diff(a.ema.state_dict(), weights(a.net)) > 1e-4  # the average is not the weights
    state = torch.load(ckpt / "training_state.pt", weights_only=True)
    assert state["global_batch"] == 4 and state["grad_accum_steps"] == 2 and state["scaler"]["scale"] > 0
    # resuming a finished run takes no further step
    done = Trainer(make_config(train, tmp_path / "a", **opts), resume="auto")
    assert done.fit().steps == 3 and max_diff(weights(done.net), weights(a.net)) == 0
    # another accumulation (same global batch) would change the data position: refused
    with pytest.raises(ValueError, match="accumulated 2 batches per step, this run 1"):
        Trainer(make_config(train, tmp_path / "c", batch=4, ema_decay=0.7, precision="fp16"), resume=ckpt)


# -- EMA -------------------------------------------------------------------------------------
def test_ema_is_the_hand_computed_average_and_is_what_validation_and_exports_use(tones, tmp_path):
    train, val = tones
    run = tmp_path / "run"
    cfg = make_config(train, run, val=val, steps=4, ema_decay=0.8, ema_start_step=2, val_every=4,
                      checkpoint_every=4, log_every=4)
    trainer = Trainer(cfg)
    raw = [weights(trainer.net)]
    step = trainer.train_step

    def recording(batches):
        out = step(batches)
        raw.append(weights(trainer.net))
        return out

    trainer.train_step = recording
    trainer.fit()
    expected = dict(raw[0])
    for s in range(1, 5):  # steps before ema_start_step copy, later ones average
        expected = {k: raw[s][k].clone() if s < 2 else 0.8 * expected[k] + 0.2 * raw[s][k] for k in expected}
    assert max_diff(trainer.ema.state_dict(), expected) < 1e-6
    assert max_diff(expected, raw[-1]) > 1e-4
    # final/, best/ and the checkpoint folder (as a model) hold the EMA weights; resuming reads the raw ones too
    for folder in (run / "final", run / "best", run / "checkpoints" / "step-00000004"):
        net = AudioSep.from_pretrained(folder).separation_net
        assert max_diff(weights(net), expected) < 1e-6, folder
    raw_file, _ = read_state(run / "checkpoints" / "step-00000004" / "separation_net.safetensors")
    assert max_diff({k: raw_file[k] for k in raw[-1]}, raw[-1]) == 0
    # the logged validation scored the EMA weights: an independent run starting from final/ agrees
    (logged,) = records(run, "val")
    again = Trainer(make_config(train, tmp_path / "again", val=val, init_from=str(run / "final")))
    assert again.validate()["val_sdri"] == pytest.approx(logged["val_sdri"], rel=1e-5)
    assert "EMA weights of step 4" in (run / "summary.txt").read_text()


# -- schedule ----------------------------------------------------------------------------------
def test_warmup_cosine_follows_the_formula_in_the_run(tones, tmp_path):
    train, _ = tones
    cfg = make_config(train, tmp_path / "run", steps=8, log_every=1, lr=1e-2,
                      schedule={"kind": "warmup_cosine", "warmup_steps": 2, "final_lr_fraction": 0.1})
    for s, expected in [(0, 0.5), (1, 1.0), (2, 1.0), (5, 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5))),
                        (8, 0.1), (20, 0.1)]:
        assert lr_factor(s, cfg) == pytest.approx(expected), s
    Trainer(cfg).fit()
    logged = [(r["step"], r["lr"]) for r in records(tmp_path / "run", "train")]
    assert [s for s, _ in logged] == list(range(1, 9))
    # the lr logged after s steps is the one of step s (0-based), the next to be taken
    expected = [(s + 1) / 2 if s < 2 else 0.1 + 0.45 * (1 + math.cos(math.pi * (s - 2) / 6)) for s in range(1, 9)]
    assert [lr for _, lr in logged] == pytest.approx([1e-2 * f for f in expected], rel=1e-9)


# -- fp16 --------------------------------------------------------------------------------------
def test_fp16_skips_a_step_with_inf_gradients_counts_it_and_keeps_the_weights(tones, tmp_path):
    train, _ = tones
    # frozen BatchNorm: a skipped step changes nothing, running statistics included
    trainer = Trainer(make_config(train, tmp_path / "run", steps=3, log_every=1, precision="fp16", freeze_batchnorm=True))
    loss_fn, calls = trainer.loss_fn, []

    def poisoned(est, target):
        calls.append(1)
        loss = loss_fn(est, target)
        return loss * math.inf if len(calls) == 2 else loss

    trainer.loss_fn = poisoned
    seen = []
    step = trainer.train_step
    trainer.train_step = lambda b: (seen.append(weights(trainer.net)), step(b))[1]
    summary = trainer.fit()
    after = weights(trainer.net)
    assert max_diff(seen[1], seen[0]) > 0 and max_diff(seen[2], seen[1]) == 0  # step 2 changed nothing
    assert max_diff(after, seen[2]) > 0 and all(torch.isfinite(v).all() for v in after.values())
    logged = records(tmp_path / "run", "train")
    assert [r["skipped_steps_new"] for r in logged] == [0, 1, 0] and logged[-1]["skipped_steps_total"] == 1
    assert logged[1]["loss_scale"] == logged[0]["loss_scale"] / 2 and math.isnan(logged[1]["grad_norm"] or math.nan)
    assert summary.skipped_steps == 1 and "1 step(s) skipped" in (tmp_path / "run" / "summary.txt").read_text()


def test_network_output_under_fp16_autocast_is_finite_and_close_to_fp32(tones, tmp_path):
    """The mask arithmetic runs in the STFT's float32 (in float16, tanh**2 underflowed: NaN)."""
    net = Trainer(make_config(tones[0], tmp_path / "run")).net.eval()
    g = torch.Generator().manual_seed(0)
    mixture, cond = 0.1 * torch.randn(3, 1, 4000, generator=g), torch.randn(3, 16, generator=g)
    with torch.no_grad():
        full = net(mixture, cond)
        with torch.autocast("cpu", dtype=torch.float16):
            half = net(mixture, cond)
    assert torch.isfinite(half).all() and float((half.float() - full).abs().max()) < 1e-2 * float(full.abs().max())


# -- best/ -------------------------------------------------------------------------------------
def fake_validation(trainer, sdris, snapshots):
    def validate():
        snapshots[trainer.step] = weights(trainer.net)
        return {"val_loss": 1.0, "val_sdri": sdris.pop(0), "val_si_sdr": 0.0}
    trainer.validate = validate


def test_best_holds_the_best_validated_step_and_survives_a_resume(tones, tmp_path, capsys):
    train, val = tones
    run = tmp_path / "run"
    trainer = Trainer(make_config(train, run, val=val, steps=3, val_every=1, checkpoint_every=3))
    snaps = {}
    fake_validation(trainer, [1.0, 5.0, 2.0], snaps)
    summary = trainer.fit()
    best = weights(AudioSep.from_pretrained(run / "best").separation_net)
    final = weights(AudioSep.from_pretrained(run / "final").separation_net)
    assert max_diff(best, snaps[2]) == 0 and max_diff(final, snaps[3]) == 0 and max_diff(best, final) > 1e-4
    assert (summary.best_val_step, summary.best_val_sdri) == (2, 5.0)
    text = (run / "summary.txt").read_text()
    assert f"best model (the weights of step 2, validation SDRi 5.00 dB): {run / 'best'}" in text
    assert f"final model (the weights of step 3): {run / 'final'}" in text
    assert [r["new_best"] for r in records(run, "val")] == [True, True, False]
    assert not list(run.glob(".best.*"))  # no temporary folder left
    out = capsys.readouterr().out
    assert "validation at step 2: SDRi 5.00 dB" in out and out.count("(new best)") == 2

    # resumed, with worse scores: best/ and the summary keep step 2
    again = Trainer(make_config(train, run, val=val, steps=4, val_every=1, checkpoint_every=3), resume=run)
    fake_validation(again, [0.0], {})
    summary = again.fit()
    assert (summary.best_val_step, summary.best_val_sdri) == (2, 5.0)
    assert max_diff(weights(AudioSep.from_pretrained(run / "best").separation_net), snaps[2]) == 0


# -- console and metrics --------------------------------------------------------------------
@pytest.mark.parametrize("progress", [False, True])
def test_console_prints_log_and_validation_lines(tones, tmp_path, capsys, progress):
    train, val = tones
    Trainer(make_config(train, tmp_path / "run", val=val, steps=4, val_every=4, progress=progress)).fit()
    lines = capsys.readouterr().out.splitlines()
    steps = [line for line in lines if line.startswith("step ")]
    assert [line.split("  ")[0] for line in steps] == ["step 2/4", "step 4/4"]
    assert all(" loss " in line and " lr " in line and "samples/s" in line and "ETA" in line for line in steps)
    assert steps[-1].endswith("ETA 0:00:00")
    assert sum(line.startswith("validation at step 4: SDRi ") and line.endswith("(new best)") for line in lines) == 1


def test_metrics_hold_grad_norm_before_clipping_and_data_wait(tones, tmp_path):
    train, _ = tones
    cfg = make_config(train, tmp_path / "run", steps=3, log_every=1, grad_clip=1e-4)
    trainer = Trainer(cfg)
    # the first step's gradient norm, computed by hand on the same batch
    twin = Trainer(make_config(train, tmp_path / "twin", steps=3, log_every=1))
    twin._set_train_mode()
    batch = next(iter(twin.loader(0)))
    mixture, target, cond = twin.make_inputs(batch, 0)
    twin.loss_fn(twin.net(mixture, cond), target).backward()
    norm = math.sqrt(sum(float((p.grad.double() ** 2).sum()) for p in twin.net.parameters() if p.grad is not None))
    trainer.fit()
    logged = records(tmp_path / "run", "train")
    assert logged[0]["grad_norm"] == pytest.approx(norm, rel=1e-4) and norm > 1e-3  # not the clipped 1e-4
    times = [r["time"] for r in logged]
    for r, window in zip(logged[1:], [b - a for a, b in zip(times, times[1:])]):
        assert math.isfinite(r["grad_norm"]) and r["grad_norm"] > 0
        assert 0 <= r["data_wait_s"] <= window + 0.05 and 0 <= r["data_wait_fraction"] <= 1
    assert "gpu_max_allocated_gb" not in logged[0]  # CPU


# -- external trackers ------------------------------------------------------------------------
class Recorder:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args, **kw: self.calls.append((name, args, kw)) or self


def test_wandb_and_mlflow_get_the_metrics_with_their_step(tones, tmp_path, monkeypatch):
    train, _ = tones
    for name in ("wandb", "mlflow"):
        rec = Recorder()
        monkeypatch.setitem(sys.modules, name, types.SimpleNamespace(**{
            f: getattr(rec, f) for f in ("init", "log", "finish", "set_experiment", "start_run", "log_params",
                                         "log_metrics", "end_run")}))
        Trainer(make_config(train, tmp_path / name, steps=4, logger=name, logger_project="proj",
                            logger_run_name="r1")).fit()
        names = [c[0] for c in rec.calls]
        if name == "wandb":
            (init,) = [c for c in rec.calls if c[0] == "init"]
            assert init[2]["project"] == "proj" and init[2]["name"] == "r1" and init[2]["config"]["training"]["steps"] == 4
            logged = [(c[1][0], c[2]["step"]) for c in rec.calls if c[0] == "log"]
            assert names[-1] == "finish"
        else:
            assert ("set_experiment", ("proj",), {}) in rec.calls and ("start_run", (), {"run_name": "r1"}) in rec.calls
            params = [c[1][0] for c in rec.calls if c[0] == "log_params"][0]
            assert params["training.steps"] == 4 and params["optim.lr"] == 3e-3
            logged = [(c[1][0], c[2]["step"]) for c in rec.calls if c[0] == "log_metrics"]
            assert names[-1] == "end_run"
        jsonl = records(tmp_path / name, "train")
        assert [step for _, step in logged] == [2, 4]
        assert [m["train/loss"] for m, _ in logged] == [r["loss"] for r in jsonl] and "train/grad_norm" in logged[0][0]


def test_a_missing_tracker_package_is_one_line_before_training(tones, tmp_path, monkeypatch, capsys):
    from audiosep.train.cli import main

    train, _ = tones
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"training.logger is 'mlflow' but the mlflow package is not installed; "
                                          r"pip install mlflow"):
        Trainer(make_config(train, tmp_path / "run", logger="mlflow"))
    monkeypatch.setitem(sys.modules, "wandb", None)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(make_config(train, tmp_path / "run", logger="wandb").to_dict()))
    assert main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install wandb" in err and not (tmp_path / "run").exists()


# -- validation over ranks ---------------------------------------------------------------------
DDP_SCRIPT = """
import json, sys
from pathlib import Path
from audiosep.train.config import load_config
from audiosep.train.trainer import Trainer
trainer = Trainer(load_config(sys.argv[1]))
scores = trainer.validate()
# a file per rank: the two processes' prints could interleave on the shared stdout
Path(sys.argv[2], f"rank{trainer.info.rank}.json").write_text(json.dumps([len(trainer._val_batches), scores]))
trainer.fit()
"""


def test_validation_split_over_two_gloo_processes_equals_one_process(tones, tmp_path):
    """6 validation clips in batches of 2: rank 0 scores batches 0 and 2, rank 1 batch 1; the
    all-reduced means equal one process scoring all three, and only rank 0 prints."""
    import os
    import subprocess

    train, val = tones
    opts = dict(val=val, group=3, steps=2, val_every=2, log_every=1, freeze_batchnorm=True)
    path = tmp_path / "ddp.yaml"
    path.write_text(yaml.safe_dump(make_config(train, tmp_path / "ddp", batch=3, **opts).to_dict()))
    script = tmp_path / "validate.py"
    script.write_text(DDP_SCRIPT)
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", "PYTHONPATH": root}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                           str(script), str(path), str(tmp_path)], env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = {r: json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)}
    assert {r: b for r, (b, _) in ranks.items()} == {0: 2, 1: 1}
    assert ranks[0][1] == ranks[1][1]  # every rank gets the all-reduced scores

    single = Trainer(make_config(train, tmp_path / "one", batch=6, **opts))
    expected = single.validate()
    assert len(single._val_batches) == 3
    assert ranks[0][1] == pytest.approx(expected, rel=1e-6)
    # during training: the same validation record as one process (weights agree to ~1e-5), printed once
    single.fit()
    (ddp_val,) = records(tmp_path / "ddp", "val")
    (one_val,) = records(tmp_path / "one", "val")
    assert ddp_val["val_sdri"] == pytest.approx(one_val["val_sdri"], rel=1e-3, abs=1e-3)
    assert proc.stdout.count("validation at step 2:") == 1 and proc.stdout.count("step 1/2 ") == 1


def test_accumulation_from_tar_shards_equals_the_bigger_batch_and_resumes_exactly(tones, tmp_path):
    """The same property from a shard stream: 2 x batch 2 takes the steps of batch 4, and a
    resume mid-epoch with accumulation continues exactly."""
    from audiosep.train.shards import write_shards

    shards = tmp_path / "shards"
    write_shards([tones[0]], shards, shard_size=5, progress=False)

    def cfg(name, batch, **kw):
        base = make_config(tones[0], tmp_path / name, batch=batch, group=2, steps=7, freeze_batchnorm=True, **kw)
        raw = base.to_dict()
        raw["data"].update(train_manifests=[], train_shards=[str(shards)], shuffle_buffer=4)
        return config_from_dict(raw)

    big = Trainer(cfg("big", 4))
    big.fit()
    acc = Trainer(cfg("acc", 2, grad_accum_steps=2, checkpoint_every=3))
    acc.fit()
    assert max_diff(weights(acc.net), weights(big.net)) < 2e-5
    assert acc.step == 7 and max_diff(weights(big.net), weights(Trainer(cfg("init", 4)).net)) > 1e-2
    resumed = Trainer(cfg("resumed", 2, grad_accum_steps=2, checkpoint_every=3),
                      resume=tmp_path / "acc" / "checkpoints" / "step-00000003")
    resumed.fit()
    assert max_diff(weights(resumed.net), weights(acc.net)) <= 1e-6
