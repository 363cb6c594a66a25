"""Choosing a torch device, with errors that say what to use instead."""
from __future__ import annotations

import torch


def default_device() -> torch.device:
    """cuda if available, else mps, else cpu."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a torch.device, or a ValueError naming the fix when it is not usable here."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"unknown device {device!r} ({err}); use 'cuda', 'mps' or 'cpu'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {device!r} asked for but CUDA is not available here (no GPU, or torch built "
            "without CUDA); use device 'cpu' (CLI: --device cpu) or leave it unset"
        )
    if dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"device {device!r} asked for but MPS is not available here; use 'cpu'")
    return dev
