"""Sharding, and two Gloo processes (torchrun) == one process on the same global batch."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml

from audiosep.checkpoint import read_state
from audiosep.train.cli import write_tone_dataset
from audiosep.train.config import config_from_dict
from audiosep.train.distributed import DistInfo, ShardedBatchSampler
from audiosep.train.trainer import Trainer

SR = 8000


def test_shards_partition_the_global_batch():
    one = list(ShardedBatchSampler(23, 6, seed=3, epoch=2))
    ranks = [list(ShardedBatchSampler(23, 3, rank=r, world_size=2, seed=3, epoch=2)) for r in range(2)]
    assert len(one) == 3 and all(len(r) == 3 for r in ranks)
    for step, batch in enumerate(one):
        assert batch == ranks[0][step] + ranks[1][step]
    flat = [i for b in one for i in b]
    assert len(set(flat)) == 18  # no repeats within an epoch
    assert list(ShardedBatchSampler(23, 6, seed=3, epoch=2, start_step=1)) == one[1:]
    assert list(ShardedBatchSampler(23, 6, seed=3, epoch=3)) != one  # reshuffled per epoch


def raw_config(train, out_dir, *, batch, bn):
    return {
        "model": {"sample_rate": SR, "n_fft": 256, "hop_length": 80, "stem_channels": 4,
                  "encoder_channels": [4, 8], "pool_sizes": [[2, 2], [2, 2]], "condition_dim": 16},
        "query_encoder": {"kind": "hashed", "dim": 16},
        "data": {"train_manifests": [str(train)], "sample_rate": SR, "segment_seconds": 0.5,
                 "batch_size": batch},
        "mixing": {"group_size": 3, "distinct_captions": True},
        # Train-mode BatchNorm makes the loss invariant to some directions (biases of convolutions
        # that feed only BatchNorms get an exact gradient of zero; conv weights before a BatchNorm
        # are scale-invariant). Pooled statistics are summed in another order than one BatchNorm's
        # kernel (~1e-5 relative gradient differences, checked: they are the same with or without
        # DDP), and AdamW with eps=1e-8 turns rounding noise on near-zero gradients into +-lr steps.
        # So the "sync" case uses eps=1e-3 and lr=3e-4: the two runs then agree to ~2e-6.
        "optim": {"lr": 3e-4, "eps": 1e-3} if bn == "sync" else {"lr": 3e-3},
        "schedule": {"warmup_steps": 1},
        "training": {"steps": 3, "val_every": 0, "checkpoint_every": 0, "log_every": 1, "grad_clip": 1.0,
                     "out_dir": str(out_dir), "device": "cpu", "progress": False,
                     "freeze_batchnorm": bn == "frozen", "sync_batchnorm": bn == "sync"},
    }


@pytest.mark.parametrize("bn", ["frozen", "sync"])
def test_two_gloo_processes_equal_one_process(bn, tmp_path):
    """torchrun --standalone with 2 CPU processes (batch 3 each, mixing groups of 3) against one
    process with batch 6 and the same mixing groups. "frozen": BatchNorm uses running statistics;
    "sync": BatchNorm in train mode with statistics pooled over the processes (CpuSyncBatchNorm,
    since torch.nn.SyncBatchNorm rejects CPU tensors) -- the single process uses plain BatchNorm."""
    train, _ = write_tone_dataset(tmp_path / "tones", per_tone=3, val_per_tone=0, sample_rate=SR, seconds=0.6)
    cfg_path = tmp_path / "ddp.yaml"
    cfg_path.write_text(yaml.safe_dump(raw_config(train, tmp_path / "ddp", batch=3, bn=bn)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "audiosep.train", str(cfg_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    single = Trainer(config_from_dict(raw_config(train, tmp_path / "one", batch=6, bn=bn)), dist_info=DistInfo())
    single.fit()
    ddp_state, _ = read_state(tmp_path / "ddp" / "final")
    diffs = {k: float((ddp_state[k] - v).abs().max()) for k, v in single.net.state_dict().items()
             if not k.endswith("num_batches_tracked")}
    worst = max(diffs.values())
    assert worst <= 1e-5, sorted(diffs.items(), key=lambda kv: -kv[1])[:3]
    # the run really trained (so equality is not trivial) and BatchNorm statistics moved (sync) or not (frozen)
    fresh = Trainer(config_from_dict(raw_config(train, tmp_path / "fresh", batch=6, bn=bn)), dist_info=DistInfo())
    init = fresh.net.state_dict()
    moved = max(float((init[k] - ddp_state[k]).abs().max()) for k in diffs if "weight" in k)
    assert moved > 50 * 1e-5, moved
    stats_moved = float((init["input_norm.running_mean"] - ddp_state["input_norm.running_mean"]).abs().max())
    assert (stats_moved > 0) == (bn == "sync")


def test_pick_device_names_the_fix_and_maps_cuda_to_the_local_rank():
    import torch

    from audiosep.train.distributed import pick_device

    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        for wanted in ("cuda", "cuda:1"):
            with pytest.raises(ValueError, match="CUDA is not available here"):
                pick_device(wanted)
    else:
        assert pick_device("cuda", local_rank=0) == torch.device("cuda", 0)


def test_dist_timeout_s_reaches_the_process_group(tmp_path, monkeypatch):
    import datetime

    import torch.distributed as dist

    from audiosep.train import distributed, trainer

    seen = {}
    monkeypatch.setattr(dist, "init_process_group", lambda backend, **kw: seen.update(backend=backend, **kw))
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    for name, value in {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(name, value)
    info = distributed.init_distributed("cpu", timeout_s=42.5)
    assert info.rank == 1 and seen == {"backend": "gloo", "init_method": "env://",
                                       "timeout": datetime.timedelta(seconds=42.5)}

    # the trainer passes training.dist_timeout_s (default 600 s)
    calls = []

    def stop(device, timeout_s):
        calls.append(timeout_s)
        raise RuntimeError("stop here")

    monkeypatch.setattr(trainer, "init_distributed", stop)
    raw = raw_config(tmp_path / "none.json", tmp_path / "run", batch=3, bn="frozen")
    for extra, expected in (({}, 600.0), ({"dist_timeout_s": 7}, 7.0)):
        raw["training"].update(extra)
        with pytest.raises(RuntimeError, match="stop here"):
            Trainer(config_from_dict(raw))
    assert calls == [600.0, 7.0]


def test_a_timed_out_collective_is_one_error_naming_the_rank():
    from audiosep.train.distributed import collective_failure

    gloo = RuntimeError("[../gloo/transport/tcp/unbound_buffer.cc:78] Timed out waiting 2000ms\nfor recv operation")
    err = collective_failure(gloo, DistInfo(rank=3, world_size=4), 2.0)
    assert str(err).startswith("rank 3 of 4: a collective operation timed out (training.dist_timeout_s = 2 s): "
                               "another process stalled or died; see its log ([../gloo")
    assert "\n" not in str(err)
    assert collective_failure(gloo, DistInfo(), 2.0) is None  # one process: not a collective
    assert collective_failure(RuntimeError("shape mismatch"), DistInfo(rank=1, world_size=2), 2.0) is None


STALL = """
import os, sys, time, torch, torch.distributed as dist
from audiosep.train.distributed import init_distributed
info = init_distributed("cpu", timeout_s=float(sys.argv[1]))
if info.rank == 1:
    time.sleep(60)  # a stalled rank
t0 = time.monotonic()
try:
    dist.all_reduce(torch.ones(1))
except Exception as err:
    print(f"rank0 failed after {time.monotonic() - t0:.1f} s: {type(err).__name__}", flush=True)
    os._exit(3)
"""


def test_a_stalled_rank_ends_the_job_after_dist_timeout_s(tmp_path):
    """Rank 1 stops answering; rank 0's collective fails after training.dist_timeout_s instead of
    hanging (the job then ends: torchrun tears the other rank down)."""
    import socket
    import time

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = tmp_path / "stall.py"
    script.write_text(STALL)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    procs = []
    for rank in (0, 1):
        env = {**os.environ, "PYTHONPATH": root, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        procs.append(subprocess.Popen([sys.executable, str(script), "2"], env=env, stdout=subprocess.PIPE, text=True))
    try:
        start = time.monotonic()
        out, _ = procs[0].communicate(timeout=40)
        assert procs[0].returncode == 3, out
        assert "rank0 failed after" in out and float(out.split("after ")[1].split(" s")[0]) < 10
        assert time.monotonic() - start < 30
    finally:
        for p in procs:
            p.kill()
            p.wait()
