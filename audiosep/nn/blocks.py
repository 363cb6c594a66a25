"""Building blocks of the ResUNet: FiLM, residual conv block, encoder and decoder levels."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NEG_SLOPE = 0.01


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

    def __init__(self, channels: int, condition_dim: int, scale: bool, momentum: float) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, momentum=momentum)
        self.film = FiLM(condition_dim, channels, scale)

    def forward(self, x: Tensor, condition: Tensor) -> Tensor:
        return F.leaky_relu(self.film(self.norm(x), condition), NEG_SLOPE)


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
        h = self.conv2(self.act2(h, condition))
        return h + (x if self.shortcut is None else self.shortcut(x))


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
        x = self.up(self.act(x, condition))
        return self.block(torch.cat((x, skip), dim=1), condition)
