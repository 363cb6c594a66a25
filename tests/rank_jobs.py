"""Helpers of the tests that start several processes of one job (Gloo on 127.0.0.1), imported by
test files as ``from rank_jobs import ...`` (pytest puts this folder on ``sys.path``)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Callable, Sequence

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def job_env(**extra: str) -> dict[str, str]:
    """The environment of a test job's process: this checkout importable, one thread, no warnings."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore", **extra}


def start_ranks(argv_of_rank: Callable[[int], Sequence[str]], *, world: int = 2,
                cwd: str | Path | None = None) -> list[subprocess.Popen]:
    """Start ``python ARGV`` as ranks 0..world-1 of one job, with the variables torchrun would set."""
    port = free_port()
    procs = []
    for rank in range(world):
        env = job_env(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
        procs.append(subprocess.Popen([sys.executable, *map(str, argv_of_rank(rank))], env=env, cwd=cwd,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return procs


def finish(procs: list[subprocess.Popen], timeout: float = 120) -> list[tuple[int, str, str]]:
    """Wait for every process (killing all of them if one outlives ``timeout``);
    -> [(returncode, stdout, stderr)] in rank order."""
    try:
        outputs = [p.communicate(timeout=timeout) for p in procs]
    finally:
        for p in procs:
            p.kill()
            p.wait()
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, outputs)]
