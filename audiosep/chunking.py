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


class ChunkedStream:
    """:func:`apply_chunked` for a signal that arrives in blocks: feed it with :meth:`push`, get
    back the output samples that no later window can change.

    Holds at most one window of input and one window of output, whatever ``length`` is.

    Parameters
    ----------
    fn : callable
        As in :func:`apply_chunked`; called once per window, in order.
    length : int
        Total input samples that will be pushed.
    window, overlap, fade : int
        In samples; see :func:`plan_windows`.
    progress : bool
        Show a tqdm bar over windows.
    """

    def __init__(self, fn: Callable[[Tensor], Tensor], length: int, window: int, overlap: int,
                 fade: int | None = None, progress: bool = False) -> None:
        self.fn = fn
        self.length = length
        self.plan = plan_windows(length, window, overlap, fade)
        self._next = 0              # index of the next window to run
        self._pending: list[Tensor] = []  # input blocks from sample self._in_start on
        self._in_start = 0
        self._in_stop = 0
        self._out: Tensor | None = None   # weighted sums from sample self._out_start on
        self._out_start = 0
        self._bar = None
        if progress and len(self.plan) > 1:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=len(self.plan), unit="window", desc="separating")

    def push(self, x: Tensor) -> Tensor | None:
        """Add ``x: Tensor[..., n]``, the next input samples; return the next finished output
        samples ``Tensor[..., m]`` (with ``fn``'s leading dimensions), or None before the first."""
        if self._in_stop + x.shape[-1] > self.length:
            raise ValueError(f"pushed more than the {self.length} samples announced")
        self._pending.append(x)
        self._in_stop += x.shape[-1]
        done = []
        while self._next < len(self.plan) and self.plan[self._next].stop <= self._in_stop:
            done.append(self._run(self.plan[self._next]))
            self._next += 1
        done = [d for d in done if d is not None]
        return torch.cat(done, dim=-1) if len(done) > 1 else (done[0] if done else None)

    def close(self) -> None:
        """Close the progress bar (call once, also on errors)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _run(self, win: Window) -> Tensor | None:
        x = torch.cat(self._pending, dim=-1) if len(self._pending) > 1 else self._pending[0]
        y = self.fn(x[..., win.start - self._in_start : win.stop - self._in_start])
        if y.shape[-1] != win.stop - win.start:
            raise ValueError(
                f"fn must preserve the length of its input: got {y.shape[-1]} samples "
                f"for a window of {win.stop - win.start}"
            )
        y = y * window_weights(win, y.dtype, y.device) if len(self.plan) > 1 else y
        if self._out is None:
            self._out = y
        else:  # windows start in order and never before the output kept so far
            tail = win.stop - self._out_start - self._out.shape[-1]
            self._out = torch.nn.functional.pad(self._out, (0, tail))
            self._out[..., win.start - self._out_start :] += y
        nxt = self.plan[self._next + 1].start if self._next + 1 < len(self.plan) else self.length
        keep = nxt - self._in_start  # input before the next window is never read again
        self._pending = [x[..., keep:]]
        self._in_start = nxt
        cut = nxt - self._out_start
        ready, self._out = self._out[..., :cut], self._out[..., cut:]
        self._out_start = nxt
        if self._bar is not None:
            self._bar.update(1)
        return ready if ready.shape[-1] else None


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
    stream = ChunkedStream(fn, x.shape[-1], window, overlap, fade, progress)
    try:
        return stream.push(x)
    finally:
        stream.close()
