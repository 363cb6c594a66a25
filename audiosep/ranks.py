"""Processes of a job started with ``torchrun`` (or one process without it), for inference jobs.

``torchrun`` sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; :meth:`Ranks.join` joins that
process group (:func:`join_process_group`: ``env://``, or torchrun's agent store scoped to the
restart attempt; NCCL when this process runs on CUDA, Gloo otherwise). Without
those variables there is one process and nothing is initialised, so the same code runs in a
plain ``python`` call. Work is split by rank (see :func:`shard`); the group is used only to
wait for each other (:meth:`Ranks.barrier`) and to exchange small results (:meth:`Ranks.gather`).

Training (:mod:`audiosep.train.distributed`) joins its group through the same
:func:`join_process_group`; inference code does not import the training package.
"""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any, Sequence, TypeVar

import torch

from .devices import check_device, default_device
from .errors import UsageError

T = TypeVar("T")

#: Longest wait of a rank for the others (seconds). Ranks meet only at the start and at the end
#: of a job, so a fast rank may wait for a slow one for a long time; a rank that dies makes
#: ``torchrun`` stop the others long before this.
DEFAULT_TIMEOUT_S = 7 * 24 * 3600.0


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name, "")
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"environment variable {name}={text!r} is not a whole number; it is set by torchrun, "
                         "unset it to run one process") from None


@dataclass(frozen=True)
class Ranks:
    """This process's place in the job.

    Attributes
    ----------
    rank, world_size, local_rank : int
        From ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (0, 1, 0 without torchrun).
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> "Ranks":
        """The ranks torchrun's environment describes (one process when it is not set)."""
        world = _env_int("WORLD_SIZE", 1)
        rank = _env_int("RANK", 0)
        if world < 1 or not 0 <= rank < world:
            raise UsageError(f"RANK={rank} and WORLD_SIZE={world} do not describe a process of the job; "
                             "start it with torchrun, or unset them to run one process")
        return cls(rank, world, _env_int("LOCAL_RANK", 0))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def device(self, preference: str | None) -> torch.device:
        """The device this process runs on: ``preference`` checked, with ``cuda`` (no index)
        meaning this process's GPU ``cuda:LOCAL_RANK``; None: that GPU if there is one, else
        :func:`audiosep.devices.default_device`."""
        if preference is None:
            return torch.device("cuda", self.local_rank) if torch.cuda.is_available() else default_device()
        device = check_device(preference)
        if device.type == "cuda" and device.index is None:
            return torch.device("cuda", self.local_rank)
        return device

    def join(self, device: torch.device, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        """Join the process group (a no-op for one process or when already joined)."""
        import torch.distributed as dist

        if not self.distributed or dist.is_initialized():
            return
        if device.type == "cuda":
            torch.cuda.set_device(device)
        join_process_group("nccl" if device.type == "cuda" else "gloo", self.rank, self.world_size,
                           datetime.timedelta(seconds=timeout_s))

    def barrier(self) -> None:
        """Wait until every rank gets here."""
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (picklable, small), in rank order, on every rank."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def leave(self) -> None:
        """Leave the process group, if this process joined one."""
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()


def attempt_store(world_size: int, timeout: datetime.timedelta) -> "dist.Store | None":
    """torchrun's key-value store with keys scoped to this restart attempt, or None outside
    torchrun's agent store (then ``env://`` is used as is).

    With ``--rdzv-backend c10d`` the agent keeps one store for the whole job, and ``env://``
    names the process group's keys without the attempt, so after a restart (``--max-restarts``)
    a new worker can read the address a killed worker of the previous attempt published and
    fail with "Connection refused". Prefixing the keys with ``TORCHELASTIC_RESTART_COUNT``
    keeps the attempts apart.
    """
    import torch.distributed as dist

    if os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    attempt = os.environ.get("TORCHELASTIC_RESTART_COUNT", "0")
    client = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world_size,
                           is_master=False, timeout=timeout)
    return dist.PrefixStore(f"audiosep/attempt-{attempt}", client)


def join_process_group(backend: str, rank: int, world_size: int, timeout: datetime.timedelta) -> None:
    """Join torchrun's process group: through :func:`attempt_store` under torchrun's agent (so
    that ``--max-restarts`` works), else with ``env://``. Training and inference jobs share it."""
    import torch.distributed as dist

    store = attempt_store(world_size, timeout)
    if store is None:
        dist.init_process_group(backend, init_method="env://", timeout=timeout)
    else:
        dist.init_process_group(backend, store=store, rank=rank, world_size=world_size, timeout=timeout)


def shard(items: Sequence[T], rank: int, world_size: int) -> list[T]:
    """The items rank ``rank`` of ``world_size`` handles: every ``world_size``-th from ``rank``
    (item ``i`` goes to rank ``i % world_size``). Deterministic: a sorted list gives every rank
    the same split, and the ranks together cover every item exactly once."""
    return list(items[rank::world_size])
