"""Overlapping windows with a cross-fade: run a length-preserving function on long signals.

The separation network is fully convolutional in time but its receptive field is long, so a
window's output is wrong near the window's edges. :func:`apply_chunked` runs ``fn`` once per
window, keeps each window's output away from its edges and cross-fades neighbours in the middle
of their overlap, so that every output sample comes from windows that saw at least
``(overlap - fade) / 2`` samples of context on both sides.

Layout of two neighbouring windows (``overlap`` samples shared, fade centred in it)::

    window i     |==============================|
    window i+1                        |==============================|
    weight i     1111111111111111111111\\\\\\000
    weight i+1                        000/////11111111111111111111111
                                         <fade>
                                      <--overlap-->

Weights of neighbours sum to one everywhere, so an identity ``fn`` is reproduced exactly.
Memory is bounded by one window (plus the output), whatever the input length.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor


@dataclass(frozen=True)
class Window:
    """One window: samples ``[start, stop)`` of the input and its fade-in/-out lengths."""

    start: int
    stop: int
    fade_in: tuple[int, int]   # (offset inside the window where the fade-in begins, length)
    fade_out: tuple[int, int]  # (offset inside the window where the fade-out begins, length)


def plan_windows(length: int, window: int, overlap: int, fade: int | None = None) -> list[Window]:
    """Cut ``length`` samples into windows of ``window`` samples sharing ``overlap`` samples.

    Windows start every ``window - overlap`` samples; the last one is cut at the end of the
    signal (it is never shifted back, so no sample is computed more than twice and the total
    work is ``length + (n - 1) * overlap``).

    Parameters
    ----------
    length : int
        Signal length in samples.
    window : int
        Window length in samples; a signal no longer than this is one window.
    overlap : int
        Samples shared by neighbouring windows, ``0 <= overlap < window``.
    fade : int, optional
        Length of the cross-fade, centred in the overlap, ``fade <= overlap``; default
        ``overlap // 2`` (the other half is context discarded on each side).

    Returns
    -------
    list of Window
    """
    if window <= 0:
        raise ValueError(f"window must be a positive number of samples, got {window}")
    if not 0 <= overlap < window:
        raise ValueError(f"overlap must be in [0, window) = [0, {window}), got {overlap}; shorten the overlap")
    fade = overlap // 2 if fade is None else fade
    if not 0 <= fade <= overlap:
        raise ValueError(f"fade must be in [0, overlap] = [0, {overlap}], got {fade}")
    if length <= window:
        return [Window(0, length, (0, 0), (length, 0))]
    stride = window - overlap
    margin = (overlap - fade) // 2  # discarded context before the fade starts
    starts = [0]
    while starts[-1] + window < length:
        starts.append(starts[-1] + stride)
    out = []
    for i, s in enumerate(starts):
        stop = min(s + window, length)
        fade_in = (margin, fade) if i > 0 else (0, 0)
        # the next window starts at s + stride; its fade-in begins `margin` samples later
        fade_out = (stride + margin, fade) if i + 1 < len(starts) else (stop - s, 0)
        out.append(Window(s, stop, fade_in, fade_out))
    return out


def aligned_sizes(window: int, overlap: int, align: int = 1, hop: int = 0) -> tuple[int, int]:
    """Round a requested window and overlap (samples) to what a strided network wants.

    Window starts become multiples of ``align`` (for the separation network
    ``hop_length * time_downsample``: then every window sees the same STFT frames and pooling
    grid as a single pass, and only the window edges differ). The window becomes
    ``k * align - hop`` samples, i.e. exactly ``k * align / hop`` STFT frames, so no frames
    are wasted on padding. The overlap returned is at least the one asked for.

    Parameters
    ----------
    window, overlap : int
        Requested sizes in samples, ``0 <= overlap < window``.
    align : int
        Start alignment in samples.
    hop : int
        STFT hop of the network (0 when the callable has no frames).

    Returns
    -------
    window, overlap : int
    """
    if window <= 0 or not 0 <= overlap < window:
        raise ValueError(
            f"need 0 <= overlap < window, got overlap {overlap} and window {window} samples; "
            "use a shorter overlap or a longer window"
        )
    stride = max(align, (window - overlap) // align * align)
    if align > 1:
        window = -(-(stride + overlap + hop) // align) * align - hop
    else:
        window = stride + overlap
    return window, window - stride


def window_weights(win: Window, dtype: torch.dtype = torch.float32, device=None) -> Tensor:
    """Cross-fade weights of one window, ``Tensor[stop - start]``, in [0, 1].

    The fades are raised-cosine (``sin^2``) ramps; a fade-out and the next window's fade-in
    sum to exactly one.
    """
    n = win.stop - win.start
    w = torch.ones(n, dtype=torch.float64)
    a, f = win.fade_in
    if f:
        w[:a] = 0
        w[a : a + f] = _ramp(f)
    elif a:
        w[:a] = 0
    b, f = win.fade_out
    if b < n:
        if f:
            w[b : b + f] = 1 - _ramp(f)
        w[b + f :] = 0
    return w.to(dtype=dtype, device=device)


def _ramp(n: int) -> Tensor:
    """Rising ramp of ``n`` samples, ``sin^2`` shaped, strictly between 0 and 1."""
    t = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    return torch.sin(0.5 * math.pi * t) ** 2


def apply_chunked(
    fn: Callable[[Tensor], Tensor],
    x: Tensor,
    window: int,
    overlap: int,
    fade: int | None = None,
    progress: bool = False,
) -> Tensor:
    """Apply a length-preserving ``fn`` to ``x`` window by window, cross-fading the results.

    Parameters
    ----------
    fn : callable
        Maps ``Tensor[..., l]`` (a window of ``x``) to ``Tensor[..., l]``; the output may have
        different leading dimensions (e.g. one row per query) as long as they do not depend on
        ``l``. Called exactly once per window.
    x : Tensor[..., L]
    window, overlap, fade : int
        In samples; see :func:`plan_windows`.
    progress : bool
        Show a tqdm bar over windows.

    Returns
    -------
    Tensor[..., L]
        With ``fn``'s leading dimensions. Equals ``fn(x)`` when ``L <= window``.
    """
    length = x.shape[-1]
    plan = plan_windows(length, window, overlap, fade)
    if len(plan) == 1:
        return fn(x)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(plan), unit="window", desc="separating")
    out: Tensor | None = None
    try:
        for win in plan:
            y = fn(x[..., win.start : win.stop])
            if y.shape[-1] != win.stop - win.start:
                raise ValueError(
                    f"fn must preserve the length of its input: got {y.shape[-1]} samples "
                    f"for a window of {win.stop - win.start}"
                )
            if out is None:
                out = y.new_zeros(*y.shape[:-1], length)
            w = window_weights(win, y.dtype, y.device)
            out[..., win.start : win.stop] += y * w
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return out
