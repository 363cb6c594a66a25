"""Band-limited resampling of tensors with soxr (high quality), keeping dtype and device."""
from __future__ import annotations

import numpy as np
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
        ``L' = ceil(L * target_sr / orig_sr)``, same dtype and device.
    """
    if orig_sr == target_sr:
        return audio
    if orig_sr <= 0 or target_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} and {target_sr}")
    import soxr

    shape = audio.shape
    flat = audio.detach().reshape(-1, shape[-1]).to("cpu", torch.float64).numpy()
    out = soxr.resample(np.ascontiguousarray(flat.T), orig_sr, target_sr, quality="VHQ").T
    out = np.ascontiguousarray(out).reshape(*shape[:-1], -1)
    return torch.from_numpy(out).to(device=audio.device, dtype=audio.dtype)
