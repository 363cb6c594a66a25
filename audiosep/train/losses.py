"""Waveform losses, registered by name (``training.loss`` in the config).

Every loss maps ``(estimate Tensor[B, 1, T], target Tensor[B, 1, T])`` to a scalar that is the
mean over the batch, so that averaging per-process losses (DDP) equals the loss of the
global batch.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor

LossFn = Callable[[Tensor, Tensor], Tensor]
LOSSES: dict[str, LossFn] = {}


def register_loss(name: str) -> Callable[[LossFn], LossFn]:
    """Decorator adding a loss to :data:`LOSSES` under ``name``."""

    def add(fn: LossFn) -> LossFn:
        LOSSES[name] = fn
        return fn

    return add


def get_loss(name: str) -> LossFn:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; registered: {', '.join(sorted(LOSSES))}")
    return LOSSES[name]


@register_loss("l1")
def l1_wav(estimate: Tensor, target: Tensor) -> Tensor:
    """Mean absolute error on the waveform (the reference loss)."""
    return (estimate - target).abs().mean()


@register_loss("l2")
def l2_wav(estimate: Tensor, target: Tensor) -> Tensor:
    """Mean squared error on the waveform."""
    return (estimate - target).pow(2).mean()


@register_loss("neg_si_sdr")
def neg_si_sdr(estimate: Tensor, target: Tensor, eps: float = 1e-8) -> Tensor:
    """Negative scale-invariant SDR in dB (no mean removal), averaged over the batch."""
    est, ref = estimate.flatten(1).float(), target.flatten(1).float()
    scale = ((est * ref).sum(-1, keepdim=True) + eps) / (ref.pow(2).sum(-1, keepdim=True) + eps)
    proj = scale * ref
    ratio = (proj.pow(2).sum(-1) + eps) / ((est - proj).pow(2).sum(-1) + eps)
    return -(10.0 * torch.log10(ratio)).mean()


@register_loss("neg_sdr")
def neg_sdr(estimate: Tensor, target: Tensor, eps: float = 1e-8) -> Tensor:
    """Negative signal-to-noise ratio in dB (the reference "SDR"), averaged over the batch."""
    est, ref = estimate.flatten(1).float(), target.flatten(1).float()
    ratio = (ref.pow(2).sum(-1) + eps) / ((est - ref).pow(2).sum(-1) + eps)
    return -(10.0 * torch.log10(ratio)).mean()
