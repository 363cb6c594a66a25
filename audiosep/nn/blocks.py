"""Building blocks of the ResUNet: FiLM, residual conv block, encoder and decoder levels.

Every block has two forward paths that compute the same function:

* the *plain* path runs BatchNorm, FiLM and LeakyReLU as separate modules; it is used in
  training (batch statistics, running-stat updates) and, on request, as a baseline;
* the *fused* path (eval mode only) folds BatchNorm and FiLM into one per-channel affine
  ``x * a + b`` (one pass over the tensor), applies LeakyReLU in place and, when no gradient
  is needed, reuses buffers that are dead afterwards. See :mod:`audiosep.nn.fused`.

The switch is the ``fused`` attribute, set for the whole network by
:meth:`audiosep.nn.ResUNet.set_fused`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .fused import NEG_SLOPE, affine_act, no_grad_needed, upsample_into


class FiLM(nn.Module):
    """Condition-dependent shift (and optional scale) applied after a normalisation.

    ``y = x * (1 + scale(c)) + shift(c)``; with ``scale=False`` only the shift is used, as in
    the released AudioSep weights.
    """

    def __init__(self, condition_dim: int, channels: int, scale: bool) -> None:
        super().__init__()
        self.shift = nn.Linear(condition_dim, channels)
        self.scale = nn.Linear(condition_dim, channels) if scale else None
        if self.scale is not None:  # start as the identity
            nn.init.zeros_(self.scale.weight)
            nn.init.zeros_(self.scale.bias)

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        """x: Tensor[B, C, T, F]; condition: Tensor[B, D] -> Tensor[B, C, T, F]."""
        shift = self.shift(condition)[:, :, None, None]
        if self.scale is None:
            return x + shift
        return x * (1.0 + self.scale(condition)[:, :, None, None]) + shift


class NormAct(nn.Module):
    """BatchNorm, FiLM, LeakyReLU."""

    fused = True

    def __init__(self, channels: int, condition_dim: int, scale: bool, momentum: float) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, momentum=momentum)
        self.film = FiLM(condition_dim, channels, scale)

    def affine(self, condition: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        """Eval-mode BatchNorm + FiLM as one affine map ``x * a + b``.

        condition: Tensor[B, D] -> a, b: Tensor[B, C, 1, 1] (in ``dtype``).
        """
        norm = self.norm
        a = norm.weight * torch.rsqrt(norm.running_var + norm.eps)  # [C]
        b = norm.bias - norm.running_mean * a
        shift = self.film.shift(condition)  # [B, C]
        if self.film.scale is None:
            a = a.expand_as(shift)
            b = b + shift
        else:
            s = 1.0 + self.film.scale(condition)
            a, b = a * s, b * s + shift
        return a.to(dtype)[:, :, None, None], b.to(dtype)[:, :, None, None]

    def forward(self, x: Tensor, condition: Tensor, inplace: bool = False) -> Tensor:
        """x: Tensor[B, C, T, F]; condition: Tensor[B, D] -> Tensor[B, C, T, F].

        ``inplace=True`` lets the fused path overwrite ``x`` (only honoured when no gradient
        is needed); callers pass it when ``x`` is dead afterwards.
        """
        if self.training or not self.fused or not self.norm.track_running_stats:
            return F.leaky_relu(self.film(self.norm(x), condition), NEG_SLOPE)
        a, b = self.affine(condition, x.dtype)
        return affine_act(x, a, b, inplace=inplace and no_grad_needed(x, a, b))


class ResBlock(nn.Module):
    """Pre-activation residual block of two 3x3 convolutions.

    ``h = conv1(act1(x)); h = conv2(act2(h)); out = h + shortcut(x)``, where the shortcut is a
    1x1 convolution when the width changes and the identity otherwise.
    """

    def __init__(
        self, in_ch: int, out_ch: int, condition_dim: int, scale: bool, momentum: float
    ) -> None:
        super().__init__()
        self.act1 = NormAct(in_ch, condition_dim, scale, momentum)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False)
        self.act2 = NormAct(out_ch, condition_dim, scale, momentum)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1, bias=False)
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else None

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        h = self.conv1(self.act1(x, condition))
        h = self.conv2(self.act2(h, condition, inplace=True))  # conv1's output is dead
        res = x if self.shortcut is None else self.shortcut(x)
        if not self.act1.fused or self.training:
            return h + res
        # conv2's output is a fresh tensor that autograd does not need: add in place.
        return h.add_(res)


class EncoderLevel(nn.Module):
    """Residual block, then average pooling; returns (pooled, skip)."""

    def __init__(self, in_ch, out_ch, pool, condition_dim, scale, momentum) -> None:
        super().__init__()
        self.block = ResBlock(in_ch, out_ch, condition_dim, scale, momentum)
        self.pool = tuple(pool)

    def forward(self, x: Tensor, condition: Tensor) -> tuple[Tensor, Tensor]:
        skip = self.block(x, condition)
        if self.pool == (1, 1):
            return skip, skip
        return F.avg_pool2d(skip, self.pool), skip


class DecoderLevel(nn.Module):
    """Activation, transposed-conv upsampling, concatenation with the skip, residual block.

    The output has the skip's width.
    """

    def __init__(self, in_ch, skip_ch, pool, condition_dim, scale, momentum) -> None:
        super().__init__()
        self.act = NormAct(in_ch, condition_dim, scale, momentum)
        self.up = nn.ConvTranspose2d(in_ch, skip_ch, kernel_size=pool, stride=pool, bias=False)
        self.block = ResBlock(2 * skip_ch, skip_ch, condition_dim, scale, momentum)

    def forward(self, x: Tensor, skip: Tensor, condition: Tensor) -> Tensor:
        if self.training or not self.act.fused:
            x = self.up(self.act(x, condition))
            return self.block(torch.cat((x, skip), dim=1), condition)
        # x is the previous level's output and dead after this: activate it in place, and
        # write the upsampled tensor straight into the concatenation buffer.
        x = self.act(x, condition, inplace=True)
        return self.block(upsample_into(self.up, x, skip), condition)
