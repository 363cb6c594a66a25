"""Band-limited resampling with soxr (very high quality): whole tensors or a stream of blocks."""
from __future__ import annotations

import numpy as np
import soxr
import torch
from torch import Tensor


def resample(audio: Tensor, orig_sr: int, target_sr: int) -> Tensor:
    """Resample along the last axis.

    Parameters
    ----------
    audio : Tensor[..., L]
    orig_sr, target_sr : int

    Returns
    -------
    Tensor[..., L']
        ``L' = round(L * target_sr / orig_sr)`` (soxr's count), same dtype and device.
    """
    if orig_sr == target_sr:
        return audio
    stream = StreamResampler(orig_sr, target_sr, audio.shape[:-1].numel() or 1)
    flat = audio.reshape(-1, audio.shape[-1])
    out = stream.process(flat, last=True)
    return out.reshape(*audio.shape[:-1], -1).to(device=audio.device, dtype=audio.dtype)


class StreamResampler:
    """Resample a signal that arrives in blocks; the blocks' outputs concatenate to exactly what
    :func:`resample` gives for the whole signal, holding only soxr's filter state in between.

    Parameters
    ----------
    orig_sr, target_sr : int
    channels : int
        Rows of every block, ``Tensor[channels, n]``.
    """

    def __init__(self, orig_sr: int, target_sr: int, channels: int) -> None:
        if orig_sr <= 0 or target_sr <= 0:
            raise ValueError(f"sample rates must be positive, got {orig_sr} and {target_sr}")
        self.channels = channels
        self._stream = None
        if orig_sr != target_sr:
            self._stream = soxr.ResampleStream(orig_sr, target_sr, channels, dtype="float64", quality="VHQ")

    def process(self, block: Tensor, last: bool = False) -> Tensor:
        """``block: Tensor[channels, n]`` -> the next ``Tensor[channels, m]`` float64 (CPU) of
        output; pass ``last=True`` with the final block (which may be empty) to flush."""
        block = block.detach().to("cpu", torch.float64)
        if self._stream is None:
            return block
        out = self._stream.resample_chunk(np.ascontiguousarray(block.numpy().T), last=last)
        return torch.from_numpy(np.ascontiguousarray(out.T))
