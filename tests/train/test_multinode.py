"""Two nodes on one machine: two torchrun agents (``--nnodes 2 --nproc_per_node 1``) meeting at a
c10d rendezvous train as one process with the whole global batch does, and only global rank 0
writes the run folder."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from rank_jobs import finish, free_port, job_env

from audiosep.checkpoint import read_state
from audiosep.train.cli import write_tone_dataset
from audiosep.train.config import config_from_dict
from audiosep.train.distributed import DistInfo
from audiosep.train.trainer import Trainer

SR = 8000


def raw_config(train: Path, out_dir: Path, *, batch: int) -> dict:
    return {
        "model": {"sample_rate": SR, "n_fft": 256, "hop_length": 80, "stem_channels": 4,
                  "encoder_channels": [4, 8], "pool_sizes": [[2, 2], [2, 2]], "condition_dim": 16},
        "query_encoder": {"kind": "hashed", "dim": 16},
        "data": {"train_manifests": [str(train)], "sample_rate": SR, "segment_seconds": 0.5,
                 "batch_size": batch, "precompute_text": True},
        "mixing": {"group_size": 3},
        "optim": {"lr": 3e-3},
        "schedule": {"warmup_steps": 1},
        # frozen BatchNorm: each process's statistics would otherwise cover its own half only
        "training": {"steps": 3, "val_every": 0, "checkpoint_every": 2, "log_every": 1, "grad_clip": 1.0,
                     "out_dir": str(out_dir), "device": "cpu", "progress": False, "freeze_batchnorm": True,
                     "dist_timeout_s": 60},
    }


@pytest.mark.slow  # ~20 s: two torchrun agents and their workers on two CPU cores
def test_two_nodes_equal_one_process_with_the_global_batch(tmp_path):
    train, _ = write_tone_dataset(tmp_path / "tones", per_tone=3, val_per_tone=0, sample_rate=SR, seconds=0.6)
    cfg_path = tmp_path / "nodes.yaml"
    run = tmp_path / "nodes"
    cfg_path.write_text(yaml.safe_dump(raw_config(train, run, batch=3)))
    port = free_port()
    agents = []
    for node in (0, 1):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
               "--node-rank", str(node), "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
               "--rdzv-id", "two-nodes", "-m", "audiosep.train", str(cfg_path)]
        agents.append(subprocess.Popen(cmd, env=job_env(), cwd=tmp_path, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True))
    done = finish(agents, timeout=240)
    results = [(out, err) for _, out, err in done]
    assert [a.returncode for a in agents] == [0, 0], [(o[-2000:], e[-3000:]) for o, e in results]
    # one summary, from global rank 0 (whichever node the rendezvous made it)
    assert sum(o.count("trained steps 0 -> 3") for o, _ in results) == 1, results

    single = Trainer(config_from_dict(raw_config(train, tmp_path / "one", batch=6)), dist_info=DistInfo())
    single.fit()
    nodes_state, _ = read_state(run / "final")
    diffs = {k: float((nodes_state[k] - v).abs().max()) for k, v in single.net.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    assert max(diffs.values()) <= 1e-5, sorted(diffs.items(), key=lambda kv: -kv[1])[:3]
    init = Trainer(config_from_dict(raw_config(train, tmp_path / "fresh", batch=6)), dist_info=DistInfo()).net
    moved = max(float((v - nodes_state[k]).abs().max()) for k, v in init.state_dict().items() if "weight" in k)
    assert moved > 50 * 1e-5, moved  # it trained: the equality is not trivial
    # the run folder holds one run's files, as the single process writes them
    names = lambda root: sorted(str(p.relative_to(root)) for p in root.rglob("*")  # noqa: E731
                                if "tensorboard" not in p.parts)
    assert names(run) == names(tmp_path / "one")
    assert [p.name for p in run.rglob("*.part")] == []


def test_machines_that_see_different_run_folders_are_refused(tmp_path, monkeypatch):
    """Only global rank 0 writes checkpoints: a machine that does not see its out_dir (no shared
    file system) would start fresh while the others resume, and the ranks would silently train
    from different states. Every rank compares where it starts and all refuse with the fix."""
    from audiosep.errors import UsageError
    from audiosep.train import distributed

    train, _ = write_tone_dataset(tmp_path / "tones", per_tone=1, val_per_tone=0, sample_rate=SR, seconds=0.6)
    raw = raw_config(train, tmp_path / "run", batch=6)
    raw["training"]["steps"] = 2
    Trainer(config_from_dict(raw), dist_info=DistInfo()).fit()  # checkpoint step-00000002 and final/

    # this process is rank 0 and sees the checkpoint; rank 1, on a machine without the folder, does not
    seen = []
    monkeypatch.setattr(distributed, "gather_objects", lambda value, info: seen.append(value) or [value, "a fresh start"])
    raw["training"]["steps"] = 4
    with pytest.raises(UsageError) as err:
        Trainer(config_from_dict(raw), dist_info=DistInfo(), resume="auto")
    assert str(err.value) == (
        "the processes disagree on where to start: rank 0 has step-00000002, rank 1 has a fresh start; every "
        f"machine must see the same training.out_dir ({tmp_path / 'run'}), e.g. on a shared file system")
    assert seen == ["step-00000002"]
    monkeypatch.setattr(distributed, "gather_objects", lambda value, info: [value, value])
    assert Trainer(config_from_dict(raw), dist_info=DistInfo(), resume="auto").step == 2
