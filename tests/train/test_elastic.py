"""torchrun's elastic restarts: a worker killed mid-run (SIGKILL: no checkpoint of its own) makes
torchrun restart the group, which continues from the last checkpoint with ``--resume auto`` and
ends with the same weights as a run that was never interrupted."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from rank_jobs import free_port, job_env

from audiosep.checkpoint import read_state
from audiosep.train.cli import main, write_tone_dataset

SR = 8000


def write_config(path: Path, train: Path, out_dir: Path, **training) -> Path:
    raw = {
        "model": {"sample_rate": SR, "n_fft": 256, "hop_length": 80, "stem_channels": 4,
                  "encoder_channels": [4, 8], "pool_sizes": [[2, 2], [2, 2]], "condition_dim": 16},
        "query_encoder": {"kind": "hashed", "dim": 16},
        "data": {"train_manifests": [str(train)], "sample_rate": SR, "segment_seconds": 0.5, "batch_size": 2},
        "schedule": {"warmup_steps": 2},
        "training": {"steps": 8, "val_every": 0, "checkpoint_every": 2, "keep_checkpoints": 0, "log_every": 1,
                     "out_dir": str(out_dir), "device": "cpu", "progress": False,
                     # the rank left behind waits this long in a collective with the killed one
                     "dist_timeout_s": 10, **training},
    }
    path.write_text(yaml.safe_dump(raw))
    return path


def torchrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", *args]


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (Linux /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def worker_pids(agent: int) -> dict[int, int]:
    """``{LOCAL_RANK: pid}`` of the training processes a torchrun agent started."""
    out = {}
    for pid in children(agent):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            env = dict(item.split(b"=", 1) for item in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
                       if b"=" in item)
        except OSError:
            continue
        if b"audiosep.train" in cmdline and b"LOCAL_RANK" in env:
            out[int(env[b"LOCAL_RANK"])] = pid
    return out


def metric_steps(run: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def latest_step(run: Path) -> int:
    latest = run / "checkpoints" / "latest"
    return int(latest.read_text().strip().split("-")[1]) if latest.is_file() else 0


@pytest.mark.slow  # ~30 s: two torchrun jobs, one of them restarted
def test_a_killed_worker_is_restarted_and_resumes_to_the_same_weights(tmp_path, capsys):
    train, _ = write_tone_dataset(tmp_path / "tones", per_tone=4, val_per_tone=0, sample_rate=SR, seconds=0.6)
    # 24 clips, 2 processes x batch 2: 6 steps an epoch, so the 8 steps cross an epoch boundary
    killed, straight = tmp_path / "killed", tmp_path / "straight"
    cfg_killed = write_config(tmp_path / "killed.yaml", train, killed)
    cfg_straight = write_config(tmp_path / "straight.yaml", train, straight)

    port = free_port()
    agent = subprocess.Popen(
        torchrun("--nnodes", "1", "--nproc_per_node", "2", "--max-restarts", "1", "--rdzv-backend", "c10d",
                 "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "elastic-test", "--monitor-interval", "0.2",
                 "-m", "audiosep.train", str(cfg_killed), "--resume", "auto"),
        env=job_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        workers: dict[int, int] = {}
        while time.monotonic() < deadline and len(workers) < 2:
            assert agent.poll() is None, agent.communicate()
            workers = worker_pids(agent.pid)
            time.sleep(0.02)
        assert len(workers) == 2, workers
        while time.monotonic() < deadline and latest_step(killed) < 2:
            assert agent.poll() is None, agent.communicate()
            time.sleep(0.005)
        os.kill(workers[1], signal.SIGKILL)  # no handler runs: as an OOM kill or a lost machine would
        killed_after = latest_step(killed)
        out, err = agent.communicate(timeout=240)
    finally:
        agent.kill()
        agent.wait()
    assert agent.returncode == 0, out[-3000:] + err[-3000:]
    assert killed_after < 8
    # the restarted group resumed from a checkpoint, not from scratch
    resumed = [line for line in out.splitlines() if line.startswith("trained steps ")]
    assert len(resumed) == 1 and resumed[0].split()[3:5] == ["->", "8"], out
    assert 2 <= killed_after <= int(resumed[0].split()[2]) < 8, (killed_after, resumed)
    assert metric_steps(killed) == list(range(1, 9))

    proc = subprocess.run(torchrun("--standalone", "--nproc_per_node", "2", "-m", "audiosep.train",
                                   str(cfg_straight)),
                          env=job_env(), cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "trained steps 0 -> 8" in proc.stdout
    a, _ = read_state(killed / "final")
    b, _ = read_state(straight / "final")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:5]
    first, _ = read_state(killed / "checkpoints" / "step-00000002")
    assert any(not torch.equal(first[k], a[k]) for k in a)  # it trained on after the restart

    # resuming on another number of processes (here: 1) changes the global batch: refused,
    # naming the fix, whether by a plain run or by a torchrun restart with another --nproc_per_node
    capsys.readouterr()
    assert main([str(cfg_killed), "--resume", "auto", "--set", "training.steps=10"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert ("was trained with global batch 4 and seed 0, this run has 2 and 0; the data order would change. "
            "Resume with the same data.batch_size x processes x training.grad_accum_steps and training.seed") in err
    assert latest_step(killed) == 8 and metric_steps(killed) == list(range(1, 9))


def test_a_killed_single_worker_is_restarted_and_resumes_to_the_same_weights(tmp_path):
    """The fast variant of the test above: one worker under torchrun --max-restarts 1, against
    one uninterrupted process."""
    train, _ = write_tone_dataset(tmp_path / "tones", per_tone=2, val_per_tone=0, sample_rate=SR, seconds=0.6)
    killed, straight = tmp_path / "killed", tmp_path / "straight"
    cfg_killed = write_config(tmp_path / "killed.yaml", train, killed, steps=6)
    cfg_straight = write_config(tmp_path / "straight.yaml", train, straight, steps=6)
    agent = subprocess.Popen(
        torchrun("--nproc_per_node", "1", "--max-restarts", "1", "--rdzv-backend", "c10d", "--rdzv-endpoint",
                 f"127.0.0.1:{free_port()}", "--monitor-interval", "0.1", "-m", "audiosep.train", str(cfg_killed),
                 "--resume", "auto"),
        env=job_env(), cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        workers: dict[int, int] = {}
        while time.monotonic() < deadline and not workers:
            workers = worker_pids(agent.pid)
            time.sleep(0.01)
        while time.monotonic() < deadline and latest_step(killed) < 2:
            assert agent.poll() is None, agent.communicate()
            time.sleep(0.002)
        os.kill(workers[0], signal.SIGKILL)
        killed_after = latest_step(killed)
        out, err = agent.communicate(timeout=120)
    finally:
        agent.kill()
        agent.wait()
    assert agent.returncode == 0, out[-3000:] + err[-3000:]
    resumed = [line for line in out.splitlines() if line.startswith("trained steps ")]
    assert len(resumed) == 1 and resumed[0].startswith(f"trained steps {killed_after} -> 6"), (killed_after, out)
    assert 2 <= killed_after < 6 and metric_steps(killed) == list(range(1, 7))
    torch.set_num_threads(1)  # as the worker (OMP_NUM_THREADS=1): the same kernels, the same sums
    assert main([str(cfg_straight)]) == 0
    a, _ = read_state(killed / "final")
    b, _ = read_state(straight / "final")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_with_another_global_batch_is_refused_naming_the_fix(tmp_path, capsys):
    """What a torchrun restart with another --nproc_per_node meets (the global batch is
    data.batch_size x processes): here the per-process batch changes instead, with one process."""
    train, _ = write_tone_dataset(tmp_path / "tones", per_tone=2, val_per_tone=0, sample_rate=SR, seconds=0.6)
    config = str(write_config(tmp_path / "run.yaml", train, tmp_path / "run", steps=2))
    assert main([config, "--set", "data.batch_size=4"]) == 0
    capsys.readouterr()
    assert main([config, "--resume", "auto", "--set", "training.steps=3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert (f"checkpoint {tmp_path}/run/checkpoints/step-00000002 was trained with global batch 4 and seed 0, this "
            "run has 2 and 0; the data order would change. Resume with the same data.batch_size x processes x "
            "training.grad_accum_steps and training.seed") in err
    assert latest_step(tmp_path / "run") == 2 and metric_steps(tmp_path / "run") == [1, 2]


def test_each_restart_attempt_has_its_own_store_keys(monkeypatch):
    """torchrun (c10d rendezvous) keeps one store across restarts; a restarted worker must not
    read the keys (e.g. peer addresses) the previous attempt's workers wrote."""
    import datetime

    import torch.distributed as dist

    from audiosep.ranks import attempt_store

    timeout = datetime.timedelta(seconds=5)
    monkeypatch.delenv("TORCHELASTIC_USE_AGENT_STORE", raising=False)
    assert attempt_store(2, timeout) is None  # plain env:// (torchrun --master-addr, or set by hand)
    port = free_port()
    server = dist.TCPStore("127.0.0.1", port, 1, is_master=True, timeout=timeout)
    monkeypatch.setenv("TORCHELASTIC_USE_AGENT_STORE", "True")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port))
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "0")
    first = attempt_store(2, timeout)
    first.set("rank_0", "old address")
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    second = attempt_store(2, timeout)
    assert not second.check(["rank_0"])
    second.set("rank_0", "new address")
    assert first.get("rank_0") == b"old address" and second.get("rank_0") == b"new address"
    assert server.get("audiosep/attempt-1/rank_0") == b"new address"


def test_resume_removes_the_temporary_files_of_a_killed_save_and_nothing_else(tmp_path, capsys):
    """A worker SIGKILLed mid-save leaves ``.<name>.<pid>.<random>.part`` files; the next start
    removes those whose writer is gone, wherever in the run folder, and only those."""
    train, _ = write_tone_dataset(tmp_path / "tones", per_tone=2, val_per_tone=0, sample_rate=SR, seconds=0.6)
    run = tmp_path / "run"
    config = str(write_config(tmp_path / "run.yaml", train, run, steps=2))
    assert main([config, "--set", "data.batch_size=4"]) == 0
    gone = 999999999  # above any pid_max: no such process
    stale = [run / f".metrics.jsonl.{gone}.abcd_123.part",
             run / "checkpoints" / f".latest.{gone}.x1y2z3w4.part",
             run / "checkpoints" / "step-00000004" / f".separation_net.safetensors.{gone}.qwertyui.part",
             run / "final" / f".config.json.{gone}.asdfghjk.part"]
    keep = [run / f".metrics.jsonl.{os.getpid()}.abcdefgh.part",  # a live writer's
            run / "notes.part", run / f".metrics.jsonl.{gone}.short.part", run / "checkpoints" / "step-00000002.part",
            tmp_path / f".run.yaml.{gone}.abcdefgh.part"]  # outside the run folder
    for path in stale + keep:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("half")
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p not in stale}
    capsys.readouterr()
    assert main([config, "--resume", "auto", "--set", "data.batch_size=4", "--set", "training.steps=3"]) == 0
    assert "trained steps 2 -> 3" in capsys.readouterr().out
    assert [p for p in stale if p.exists()] == []
    assert all(p.read_text() == "half" for p in keep)
    # the files of the first run that this one did not write again are as they were
    rewritten = {run / "metrics.jsonl", run / "summary.txt", run / "checkpoints" / "latest"} | set(
        (run / "final").iterdir())
    assert all(p.read_bytes() == data for p, data in before.items() if p not in rewritten)
