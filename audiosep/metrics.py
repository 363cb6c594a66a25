"""Separation metrics exactly as the reference evaluation computes them.

* ``sdr``: a plain signal-to-noise ratio, ``10 log10(mean(s^2) / mean((est - s)^2))`` with each
  mean clipped below at 1e-10 (the reference calls it SDR; it is not BSS-eval SDR).
* ``si_sdr``: scale-invariant SDR without mean removal; the scale is
  ``a = (eps + <s, est>) / (<s, s> + eps)`` and the ratio ``(eps + |a s|^2) / (eps + |est - a s|^2)``
  with ``eps`` the float32 machine epsilon. This is torchmetrics' SI-SDR with ``zero_mean=False``.
* ``sdri`` / ``si_sdri``: improvement of the estimate over the unprocessed mixture.

All functions take ``Tensor[..., T]`` and reduce the last axis.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import Tensor

_MEAN_FLOOR = 1e-10


def _check(estimate: Tensor, target: Tensor) -> None:
    if estimate.shape != target.shape:
        raise ValueError(
            f"estimate and target must have the same shape, got {tuple(estimate.shape)} and "
            f"{tuple(target.shape)}; crop or pad the estimate to the target's length first"
        )


def sdr(estimate: Tensor, target: Tensor) -> Tensor:
    """Reference "SDR" (signal-to-noise ratio) in dB.

    Parameters
    ----------
    estimate, target : Tensor[..., T]

    Returns
    -------
    Tensor[...]
    """
    _check(estimate, target)
    estimate, target = estimate.double(), target.double()
    signal = (target**2).mean(-1).clamp_min(_MEAN_FLOOR)
    noise = ((estimate - target) ** 2).mean(-1).clamp_min(_MEAN_FLOOR)
    return 10.0 * (torch.log10(signal) - torch.log10(noise))


def si_sdr(estimate: Tensor, target: Tensor) -> Tensor:
    """Scale-invariant SDR in dB, no mean removal (the reference definition).

    Computed in float32, as the reference does, so that its epsilon is float32's.

    Parameters
    ----------
    estimate, target : Tensor[..., T]

    Returns
    -------
    Tensor[...]
    """
    _check(estimate, target)
    from torchmetrics.functional.audio import scale_invariant_signal_distortion_ratio

    return scale_invariant_signal_distortion_ratio(estimate.float(), target.float(), zero_mean=False)


@dataclass(frozen=True)
class SeparationScores:
    """Per-item scores in dB."""

    sdr: float
    sdr_mixture: float
    sdri: float
    si_sdr: float
    si_sdr_mixture: float
    si_sdri: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def score(estimate: Tensor, target: Tensor, mixture: Tensor) -> SeparationScores:
    """SDR, SDRi, SI-SDR and SI-SDRi of one item.

    Parameters
    ----------
    estimate, target, mixture : Tensor[T] (or any shape, flattened)
    """
    estimate, target, mixture = (x.reshape(-1) for x in (estimate, target, mixture))
    s, s_mix = float(sdr(estimate, target)), float(sdr(mixture, target))
    si, si_mix = float(si_sdr(estimate, target)), float(si_sdr(mixture, target))
    return SeparationScores(s, s_mix, s - s_mix, si, si_mix, si - si_mix)
