"""Optional speech metrics (Voicebank-DEMAND): wide-band PESQ and STOI at 16 kHz.

They need the optional packages ``pesq`` and ``pystoi`` (``pip install "audiosep[bench]"``);
without them the columns are left out, with a warning that says so.
"""
from __future__ import annotations

import importlib.util
import math
import warnings

from torch import Tensor

SPEECH_RATE = 16000
_PACKAGES = {"pesq": "pesq", "stoi": "pystoi"}


def available_extras() -> set[str]:
    """The optional metrics whose package is installed."""
    return {m for m, pkg in _PACKAGES.items() if importlib.util.find_spec(pkg) is not None}


def usable_extras(wanted: tuple[str, ...] | list[str]) -> list[str]:
    """The metrics of ``wanted`` that can be computed here; warns, naming the extra to install,
    about the ones whose package is missing."""
    have = available_extras()
    missing = [m for m in wanted if m not in have]
    if missing:
        packages = " and ".join(_PACKAGES[m] for m in missing)
        warnings.warn(f"{', '.join(missing).upper()} column(s) left out: {packages} not installed; "
                      'pip install "audiosep[bench]" to score them', stacklevel=2)
    return [m for m in wanted if m in have]


def extra_scores(estimate: Tensor, target: Tensor, sample_rate: int, metrics: list[str]) -> dict[str, float]:
    """PESQ (wide-band) and/or STOI of one item, both computed at 16 kHz.

    Parameters
    ----------
    estimate, target : Tensor[L] at ``sample_rate``
    metrics : list of {"pesq", "stoi"}

    Returns
    -------
    dict
        NaN where the metric is undefined for the item (e.g. PESQ finds no speech).
    """
    if not metrics:
        return {}
    from ..audio.resample import resample

    est = resample(estimate.double(), sample_rate, SPEECH_RATE).numpy()
    ref = resample(target.double(), sample_rate, SPEECH_RATE).numpy()
    out = {}
    if "pesq" in metrics:
        from pesq import pesq

        try:
            out["pesq"] = float(pesq(SPEECH_RATE, ref, est, "wb"))
        except Exception:  # pesq raises on silence / too-short signals
            out["pesq"] = math.nan
    if "stoi" in metrics:
        from pystoi import stoi

        out["stoi"] = float(stoi(ref, est, SPEECH_RATE, extended=False))
    return out
