"""A run's life through ``audiosep-train``: refusing to mix two runs in one folder, ``--resume
auto``, stopping on SIGTERM / Ctrl-C with a checkpoint, and metrics without duplicate steps."""
from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from rank_jobs import start_ranks

from audiosep import AudioSep
from audiosep.train.cli import main, write_tone_dataset

SR = 8000


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return write_tone_dataset(tmp_path_factory.mktemp("tones"), per_tone=4, val_per_tone=1,
                              sample_rate=SR, seconds=0.6)


def write_config(tmp_path: Path, train: Path, **training) -> Path:
    raw = {
        "model": {"sample_rate": SR, "n_fft": 256, "hop_length": 80, "stem_channels": 4,
                  "encoder_channels": [4, 8], "pool_sizes": [[2, 2], [2, 2]], "condition_dim": 16},
        "query_encoder": {"kind": "hashed", "dim": 16},
        "data": {"train_manifests": [str(train)], "sample_rate": SR, "segment_seconds": 0.5, "batch_size": 4},
        "schedule": {"warmup_steps": 2},
        "training": {"steps": 4, "val_every": 0, "checkpoint_every": 2, "log_every": 1,
                     "out_dir": str(tmp_path / "run"), "device": "cpu", "progress": False, **training},
    }
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def metric_steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_rerun_into_a_used_folder_is_refused_and_resume_auto_continues(tones, tmp_path, capsys):
    config = str(write_config(tmp_path, tones[0]))
    run = tmp_path / "run"
    assert main([config]) == 0
    latest = (run / "checkpoints" / "latest").read_text()
    before = (run / "metrics.jsonl").read_text()
    capsys.readouterr()

    assert main([config, "--set", "training.steps=6"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"training.out_dir {run} already holds a run" in err
    assert f"--resume {run}" in err and "--resume auto" in err and "another training.out_dir" in err
    # nothing of the first run was touched
    assert (run / "checkpoints" / "latest").read_text() == latest and (run / "metrics.jsonl").read_text() == before

    assert main([config, "--resume", "auto", "--set", "training.steps=6"]) == 0
    assert "trained steps 4 -> 6" in capsys.readouterr().out
    assert metric_steps(run) == [1, 2, 3, 4, 5, 6]
    assert (run / "checkpoints" / "latest").read_text().strip() == "step-00000006"
    assert (run / "checkpoints" / "step-00000006" / "training_state.pt").is_file()

    # every checkpoint is a model folder: from_pretrained (audiosep separate --model) loads it
    final = AudioSep.from_pretrained(run / "final").separation_net.state_dict()
    last = AudioSep.from_pretrained(run / "checkpoints" / "step-00000006")
    assert last.query_encoder.kind == "hashed" and last.sample_rate == SR
    assert all(torch.equal(v, final[k]) for k, v in last.separation_net.state_dict().items())
    earlier = AudioSep.from_pretrained(run / "checkpoints" / "step-00000004").separation_net.state_dict()
    assert any(not torch.equal(v, final[k]) for k, v in earlier.items())

    # resuming another run's checkpoint into this folder would mix two runs
    other = str(write_config(tmp_path / "o", tones[0], out_dir=str(tmp_path / "other")))
    assert main([other]) == 0
    capsys.readouterr()
    assert main([config, "--resume", str(tmp_path / "other"), "--set", "training.steps=8"]) == 2
    assert "holds another run" in capsys.readouterr().err


def test_resume_auto_without_a_checkpoint_starts_fresh(tones, tmp_path, capsys):
    """... and the files written follow the umask (safetensors files were 0600)."""
    config = str(write_config(tmp_path, tones[0], steps=2))
    old = os.umask(0o022)
    try:
        assert main([config, "--resume", "auto"]) == 0
    finally:
        os.umask(old)
    assert "trained steps 0 -> 2" in capsys.readouterr().out
    written = [p for p in (tmp_path / "run").rglob("*") if p.is_file() and "tensorboard" not in p.parts]
    assert {p.suffix for p in written} >= {".safetensors", ".pt", ".json", ".yaml", ".jsonl"}
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in written} == {p.name: "0o644" for p in written}


def test_resume_drops_metrics_past_the_checkpoint(tones, tmp_path, capsys):
    """A run killed after logging steps past its last checkpoint logs them again when resumed:
    metrics.jsonl keeps one record per step."""
    config = str(write_config(tmp_path, tones[0], steps=4, checkpoint_every=3, keep_checkpoints=0))
    run = tmp_path / "run"
    assert main([config]) == 0
    # as a run killed between its step-3 checkpoint and step 4's would have left it
    shutil.rmtree(run / "checkpoints" / "step-00000004")
    (run / "checkpoints" / "latest").write_text("step-00000003\n")
    assert metric_steps(run) == [1, 2, 3, 4]
    assert main([config, "--resume", "auto", "--set", "training.steps=5"]) == 0
    assert "trained steps 3 -> 5" in capsys.readouterr().out
    assert metric_steps(run) == [1, 2, 3, 4, 5]


def test_resuming_an_older_checkpoint_of_the_folder_is_refused(tones, tmp_path, capsys):
    config = str(write_config(tmp_path, tones[0], keep_checkpoints=0))
    assert main([config]) == 0
    capsys.readouterr()
    older = tmp_path / "run" / "checkpoints" / "step-00000002"
    assert main([config, "--resume", str(older)]) == 2
    assert "holds checkpoints after step-00000002 (step-00000004)" in capsys.readouterr().err


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143),
                                       pytest.param(signal.SIGINT, 130, marks=pytest.mark.slow)])
def test_signal_saves_a_checkpoint_and_resume_continues(tones, tmp_path, capsys, sig, code):
    config = str(write_config(tmp_path, tones[0], steps=100000, checkpoint_every=0))
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, "-m", "audiosep.train", config], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
                (run / "metrics.jsonl").is_file() and len(metric_steps(run)) >= 3):
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    step = int((run / "checkpoints" / "latest").read_text().strip().split("-")[1])
    assert step >= 3
    assert lines[0] == (f"audiosep-train: stopped by {signal.Signals(sig).name} after step {step}; checkpoint "
                        f"saved to {run}/checkpoints/step-{step:08d}; continue with --resume {run} "
                        "(or --resume auto)")
    assert not (run / "final").exists()  # stopped, not finished
    assert main([config, "--resume", str(run), "--set", f"training.steps={step + 2}"]) == 0
    assert f"trained steps {step} -> {step + 2}" in capsys.readouterr().out
    assert metric_steps(run) == list(range(1, step + 3))


def test_sigterm_to_one_rank_stops_both_after_the_same_step(tones, tmp_path):
    """Two Gloo processes; only rank 1 gets SIGTERM: rank 0 learns it through the per-step stop
    all-reduce, both stop after the same step and rank 0 saves that step's checkpoint."""
    config = str(write_config(tmp_path, tones[0], steps=100000, checkpoint_every=0))
    run = tmp_path / "run"
    procs = start_ranks(lambda rank: ["-m", "audiosep.train", config], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (
                (run / "metrics.jsonl").is_file() and len(metric_steps(run)) >= 2):
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs]
            time.sleep(0.05)
        procs[1].send_signal(signal.SIGTERM)
        results = [p.communicate(timeout=60) for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert [p.returncode for p in procs] == [143, 143], results
    step = int((run / "checkpoints" / "latest").read_text().strip().split("-")[1])
    assert results[0][1].strip() == (
        f"audiosep-train: stopped by SIGTERM after step {step}; checkpoint saved to "
        f"{run}/checkpoints/step-{step:08d}; continue with --resume {run} (or --resume auto)")
    assert results[1][1].strip() == ""  # one line for the job, from rank 0
    assert (run / "checkpoints" / f"step-{step:08d}" / "training_state.pt").is_file()


def test_resume_that_would_change_the_mixing_groups_is_refused(tones, tmp_path, capsys):
    """Resuming on another number of processes keeps the global batch but, with mixing.group_size
    null, changes which clips are mixed together: refused unless the group size is kept."""
    config = str(write_config(tmp_path, tones[0], steps=2))
    run = tmp_path / "run"
    assert main([config]) == 0  # one process, batch 4: groups of 4
    capsys.readouterr()
    # as 2 processes x batch 2 would be: groups of 2
    assert main([config, "--resume", "auto", "--set", "training.steps=3", "--set", "mixing.group_size=2"]) == 2
    err = capsys.readouterr().err
    assert (f"checkpoint {run}/checkpoints/step-00000002 mixed clips in groups of 4 (1 process(es)), this run in "
            "groups of 2 (1 x data.batch_size 4); the mixtures would change. Set mixing.group_size: 4") in err
    assert main([config, "--resume", "auto", "--set", "training.steps=3", "--set", "mixing.group_size=4"]) == 0
    assert "trained steps 2 -> 3" in capsys.readouterr().out
