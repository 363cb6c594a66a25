"""Fused inference kernels of the ResUNet, written with plain PyTorch ops.

The network spends its time in 3x3 convolutions and in full-tensor elementwise passes over
activations of up to ``32 x 1024 x 1024`` floats per item (128 MB). These helpers remove
passes and allocations without changing the function computed:

* :func:`affine_act` applies eval-mode BatchNorm + FiLM as one ``addcmul`` and LeakyReLU in
  place (2 passes instead of 3, and in place when the input is dead);
* :func:`upsample_into` runs a transposed convolution whose kernel equals its stride as a
  single matrix product and writes it, with the skip connection, straight into the
  concatenation buffer (no separate ``cat``);
* :func:`stem_into` runs the 1-input-channel 1x1 stem convolution as a broadcast
  multiply-add that writes the channels-last layout the convolutions prefer.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

NEG_SLOPE = 0.01


def no_grad_needed(*tensors: Tensor) -> bool:
    """True when autograd will not record an op on ``tensors`` (so in-place reuse is safe)."""
    return not torch.is_grad_enabled() or not any(t.requires_grad for t in tensors)


def affine_act(x: Tensor, a: Tensor, b: Tensor, inplace: bool = False) -> Tensor:
    """``leaky_relu(x * a + b)`` in two passes.

    Parameters
    ----------
    x : Tensor[B, C, T, F]
    a, b : Tensor[B, C, 1, 1]
        Per-item, per-channel scale and offset.
    inplace : bool
        Overwrite ``x``; the caller guarantees that ``x`` is not needed afterwards and that no
        gradient flows through it.

    Returns
    -------
    Tensor[B, C, T, F]
        In the memory format of ``x``.
    """
    if inplace:
        out = x
    elif torch.is_grad_enabled() and (x.requires_grad or a.requires_grad or b.requires_grad):
        return F.leaky_relu_(torch.addcmul(b, x, a), NEG_SLOPE)  # autograd refuses ``out=``
    else:
        out = torch.empty_like(x)
    torch.addcmul(b, x, a, out=out)
    return F.leaky_relu_(out, NEG_SLOPE)


def upsample_into(up: nn.ConvTranspose2d, x: Tensor, skip: Tensor) -> Tensor:
    """``cat((up(x), skip), dim=1)`` for a bias-free transposed conv with kernel == stride.

    Each input pixel maps to its own ``kt x kf`` output patch, so the transposed convolution
    is one matrix product ``[B*T*F, Cin] @ [Cin, kt*kf*Cout]`` followed by a strided copy into
    the output buffer.

    Parameters
    ----------
    up : nn.ConvTranspose2d
        ``kernel_size == stride``, no padding, no bias, ``groups == 1``.
    x : Tensor[B, Cin, T, F]
    skip : Tensor[B, Cout, T * kt, F * kf]

    Returns
    -------
    Tensor[B, 2 * Cout, T * kt, F * kf]
        Channels-last.
    """
    kt, kf = up.kernel_size
    if (
        up.bias is not None
        or tuple(up.stride) != (kt, kf)
        or tuple(up.padding) != (0, 0)
        or tuple(up.output_padding) != (0, 0)
        or up.groups != 1
    ):
        return torch.cat((up(x), skip), dim=1)
    batch, c_in, frames, bins = x.shape
    c_out = up.out_channels
    if tuple(skip.shape) != (batch, c_out, frames * kt, bins * kf):
        raise ValueError(
            f"skip must be Tensor[{batch}, {c_out}, {frames * kt}, {bins * kf}] to match the "
            f"upsampled input, got shape {tuple(skip.shape)}"
        )
    weight = up.weight.to(x.dtype).permute(0, 2, 3, 1).reshape(c_in, kt * kf * c_out)
    y = torch.matmul(x.permute(0, 2, 3, 1), weight)  # [B, T, F, kt*kf*Cout]
    out = torch.empty(
        (batch, 2 * c_out, frames * kt, bins * kf),
        dtype=y.dtype,
        device=x.device,
        memory_format=torch.channels_last,
    )
    nhwc = out.permute(0, 2, 3, 1)  # [B, T*kt, F*kf, 2*Cout], contiguous
    up_view = nhwc[..., :c_out].view(batch, frames, kt, bins, kf, c_out)  # a view
    up_view.copy_(y.view(batch, frames, bins, kt, kf, c_out).permute(0, 1, 3, 2, 4, 5))
    nhwc[..., c_out:].copy_(skip.permute(0, 2, 3, 1))
    return out


def stem_into(stem: nn.Conv2d, x: Tensor) -> Tensor:
    """A 1x1 convolution from one input channel, as ``x * w + b`` in channels-last layout.

    x: Tensor[B, 1, T, F] -> Tensor[B, C, T, F] (channels-last).
    """
    batch, _, frames, bins = x.shape
    weight = stem.weight.to(x.dtype).view(1, -1, 1, 1)
    bias = torch.zeros_like(weight) if stem.bias is None else stem.bias.to(x.dtype).view(1, -1, 1, 1)
    if torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad or bias.requires_grad):
        return torch.addcmul(bias, x, weight).contiguous(memory_format=torch.channels_last)
    out = torch.empty(
        (batch, weight.shape[1], frames, bins),
        dtype=x.dtype,
        device=x.device,
        memory_format=torch.channels_last,
    )
    return torch.addcmul(bias, x, weight, out=out)


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse instead of returning it to the system.

    Activations of this network are 10-800 MB each; glibc serves such blocks with ``mmap`` and
    unmaps them on free, so every new activation page-faults afresh (on a 2-core machine this
    costs about a third of the CPU time of a forward pass, and two thirds of a CPU training
    step). With the heap kept, memory is reused; the process's resident size then stays at its
    peak. This is process-wide, so the library never calls it by itself: the command-line tools
    (``audiosep``, ``audiosep-bench``, ``audiosep-train``) opt in; ``AUDIOSEP_KEEP_HEAP=0``
    turns it off there.

    Returns
    -------
    bool
        True if the setting was applied (glibc on Linux), False otherwise.
    """
    import ctypes
    import os
    import sys

    if not sys.platform.startswith("linux") or os.environ.get("AUDIOSEP_KEEP_HEAP", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4
        return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))
    except (OSError, AttributeError):
        return False
