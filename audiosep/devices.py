"""Choosing a torch device, with errors that say what to use instead."""
from __future__ import annotations

import torch

from .errors import UsageError

#: Device types audiosep runs on.
SUPPORTED_DEVICE_TYPES = ("cpu", "cuda", "mps")
#: Default items (or query x channel rows) per forward pass, by device type: shared by
#: ``separate()``, ``audiosep`` and ``audiosep-bench``.
DEFAULT_BATCH_SIZE = {"cpu": 1, "cuda": 8, "mps": 4}


def default_device() -> torch.device:
    """cuda if available, else mps, else cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch.device, or a :class:`~audiosep.errors.UsageError` (a ValueError)
    naming the fix when it is not usable here (unknown, ``meta``, or absent on this machine)."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise UsageError(f"unknown device {device!r} ({err}); use 'cuda', 'mps' or 'cpu'") from None
    if dev.type not in SUPPORTED_DEVICE_TYPES:
        raise UsageError(f"device {device!r} cannot run audiosep (it holds no data or is not supported); "
                         "use 'cuda', 'mps' or 'cpu'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            f"device {device!r} asked for but CUDA is not available here (no GPU, or torch built "
            "without CUDA); use device 'cpu' (CLI: --device cpu) or leave it unset"
        )
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise UsageError(f"device {device!r} asked for but MPS is not available here; use 'cpu'")
    return dev


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` checked by :func:`check_device`, or :func:`default_device` when None."""
    return check_device(device) if device is not None else default_device()


def default_batch_size(device: str | torch.device) -> int:
    """Default batch for ``device`` (:data:`DEFAULT_BATCH_SIZE`)."""
    return DEFAULT_BATCH_SIZE.get(torch.device(device).type, 4)
