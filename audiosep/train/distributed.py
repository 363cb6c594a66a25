"""Processes, sharding and synchronised BatchNorm for single- and multi-process training.

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (and the rendezvous variables);
:func:`init_distributed` joins that group with ``env://`` (NCCL on CUDA, Gloo on CPU). Without
those variables it returns a one-process :class:`DistInfo` and nothing is initialised.

Data order is a pure function of ``(seed, epoch, step)``: :class:`ShardedBatchSampler` permutes
the dataset once per epoch with a generator seeded from ``(seed, epoch)``, cuts the permutation
into global batches of ``batch_size * world_size`` and gives rank ``r`` the ``r``-th contiguous
slice of each. One process with ``batch_size * world_size`` therefore sees exactly the union of
what the ranks see, in rank order, and a run resumed at any step continues the same order.
"""
from __future__ import annotations

import datetime
import hashlib
import os
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..devices import check_device
from ..errors import AudiosepError, UsageError
from ..ranks import join_process_group


def derive_seed(*parts: int | str) -> int:
    """A 63-bit seed mixed from ``parts`` (stable across processes, runs and platforms)."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def generator_for(*parts: int | str, device: str | torch.device = "cpu") -> torch.Generator:
    """A fresh generator seeded with :func:`derive_seed` of ``parts``."""
    return torch.Generator(device=device).manual_seed(derive_seed(*parts))


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: its rank, the world size and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(preference: str, local_rank: int = 0) -> torch.device:
    """``"auto"`` -> this process's GPU if there is one, else the CPU; ``"cuda"`` -> this
    process's GPU; anything else as given, checked by :func:`audiosep.devices.check_device`."""
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    device = check_device(preference)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", local_rank)
    return device


def init_distributed(device_preference: str = "auto", timeout_s: float = 600.0) -> DistInfo:
    """Join the process group described by torchrun's environment, if any.

    ``timeout_s`` bounds every collective: a rank that stalls (stopped, hung in I/O, dead
    without its peers noticing) makes the others fail with an error after this many seconds
    instead of waiting forever.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_preference, local_rank)
    if world > 1 and not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(device)
        backend = "nccl" if device.type == "cuda" else "gloo"
        join_process_group(backend, rank, world, datetime.timedelta(seconds=timeout_s))
    return DistInfo(rank, world, local_rank, device)


class CollectiveTimeout(AudiosepError, RuntimeError):
    """A collective of a multi-process run failed or timed out (another process stalled or died);
    ``audiosep-train`` prints it as one line."""


def collective_failure(err: BaseException, info: DistInfo, timeout_s: float) -> CollectiveTimeout | None:
    """``err`` as a one-line :class:`CollectiveTimeout` naming this rank and
    ``training.dist_timeout_s`` when it is a failed collective of a multi-process run, else None."""
    timed_out = isinstance(err, RuntimeError) and "timed out" in str(err).lower()
    if not info.distributed or not (isinstance(err, dist.DistError) or timed_out):
        return None
    what = f"timed out (training.dist_timeout_s = {timeout_s:g} s)" if timed_out else "failed"
    detail = " ".join(str(err).split())[:300]
    return CollectiveTimeout(f"rank {info.rank} of {info.world_size}: a collective operation {what}: another "
                             f"process stalled or died; see its log ({detail})")


def shutdown_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj`` (a list of one item without distribution)."""
    if not info.distributed:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def check_same(value: Any, info: DistInfo, what: str, fix: str) -> None:
    """Raise a :class:`~audiosep.errors.UsageError` (on every rank) unless all ranks hold an
    equal ``value``; the message names ``what``, the first rank that differs, and ``fix``."""
    values = gather_objects(value, info)
    odd = next((r for r, v in enumerate(values) if v != values[0]), None)
    if odd is not None:
        raise UsageError(f"the processes disagree on {what}: rank 0 has {values[0]}, rank {odd} has "
                         f"{values[odd]}; {fix}")


def all_mean(value: float, info: DistInfo) -> float:
    """Mean of a float over the ranks."""
    if not info.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return float(t) / info.world_size


def all_max(value: int, info: DistInfo) -> int:
    """Largest of an integer over the ranks (e.g. a stop request, agreed by everyone)."""
    if not info.distributed:
        return value
    t = torch.tensor([value], dtype=torch.int64, device=info.device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t)


class ShardedBatchSampler(torch.utils.data.Sampler[list[int]]):
    """This rank's index lists for the steps ``start_step .. steps_per_epoch - 1`` of one epoch.

    Parameters
    ----------
    size : int
        Dataset length.
    batch_size : int
        Per-process batch; a global batch is ``batch_size * world_size`` (the remainder of the
        permutation is dropped).
    rank, world_size : int
    seed, epoch : int
        The permutation is ``randperm(size)`` from a generator seeded with ``(seed, epoch)``.
    start_step : int
        First step of the epoch to yield (for resuming mid-epoch).
    """

    def __init__(self, size: int, batch_size: int, *, rank: int = 0, world_size: int = 1,
                 seed: int = 0, epoch: int = 0, start_step: int = 0) -> None:
        self.size, self.batch_size = size, batch_size
        self.rank, self.world_size = rank, world_size
        self.seed, self.epoch, self.start_step = seed, epoch, start_step
        if self.steps_per_epoch(size, batch_size, world_size) < 1:
            raise ValueError(
                f"{size} training clips are fewer than one global batch ({batch_size} x {world_size} "
                "processes); add clips or lower data.batch_size"
            )

    @staticmethod
    def steps_per_epoch(size: int, batch_size: int, world_size: int) -> int:
        return size // (batch_size * world_size)

    def __len__(self) -> int:
        return self.steps_per_epoch(self.size, self.batch_size, self.world_size) - self.start_step

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(self.size, generator=generator_for("order", self.seed, self.epoch))
        glob = self.batch_size * self.world_size
        for step in range(self.start_step, self.steps_per_epoch(self.size, self.batch_size, self.world_size)):
            lo = step * glob + self.rank * self.batch_size
            yield order[lo: lo + self.batch_size].tolist()


class CpuSyncBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are pooled over all processes, on any device.

    ``torch.nn.SyncBatchNorm`` (torch 2.13) refuses CPU tensors; this layer computes the global
    mean and (biased) variance with two differentiable all-reduces (sum and count, then the sum
    of squared deviations), so its output and gradients equal one BatchNorm over the global
    batch. Outside training or without a process group it is a plain BatchNorm2d.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()
                and dist.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        dims = [0, 2, 3]
        count = torch.tensor([x.numel() / x.shape[1]], dtype=x.dtype, device=x.device)
        stats = all_reduce(torch.cat([x.sum(dims), count]))
        n = stats[-1]
        mean = stats[:-1] / n
        centred = x - mean[None, :, None, None]
        var = all_reduce(centred.pow(2).sum(dims)) / n
        if self.track_running_stats:
            with torch.no_grad():
                m = self.momentum if self.momentum is not None else 0.1
                self.num_batches_tracked.add_(1)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1)), alpha=m)
        y = centred * torch.rsqrt(var + self.eps)[None, :, None, None]
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y


def convert_sync_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Replace every BatchNorm2d by a synchronised one (torch's on CUDA, ours elsewhere)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    for name, child in list(module.named_children()):
        if type(child) is nn.BatchNorm2d:
            new = CpuSyncBatchNorm(child.num_features, child.eps, child.momentum, child.affine,
                                   child.track_running_stats, device=device)
            new.load_state_dict(child.state_dict())
            new.train(child.training)
            setattr(module, name, new)
        else:
            convert_sync_batchnorm(child, device)
    return module


def freeze_batchnorm(module: nn.Module) -> None:
    """Put every BatchNorm in eval mode (running statistics; affine weights still train)."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
