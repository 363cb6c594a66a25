"""Configuration implied by a state dict in our own layout (``ResUNet.state_dict()``).

Also home of :class:`LayoutError`, raised for a state dict that fits no known layout
(:mod:`.reference_layout` converts the reference layout to this one and imports from here).
"""
from __future__ import annotations

import re
from typing import Mapping

from torch import Tensor

from .config import ResUNetConfig
from ..errors import AudiosepError

# n_fft -> (sample_rate, hop) of the known released configurations.
KNOWN_STFT = {2048: (32000, 320), 1024: (16000, 160)}


class LayoutError(AudiosepError, ValueError):
    """A state dict does not match the expected network layout."""


def infer_config(state: Mapping[str, Tensor], **overrides) -> ResUNetConfig:
    """Network configuration implied by the shapes of one of our state dicts.

    Sample rate and hop follow from ``n_fft`` for the known releases unless given.
    """
    try:
        n_fft = (state["input_norm.weight"].shape[0] - 1) * 2
        stem = state["stem.weight"].shape[0]
        levels = sorted(
            int(m[1]) for k in state if (m := re.fullmatch(r"encoder\.(\d+)\.block\.conv1\.weight", k))
        )
        widths = tuple(state[f"encoder.{i}.block.conv1.weight"].shape[0] for i in levels)
        pools = tuple(tuple(state[f"decoder.{len(levels) - 1 - i}.up.weight"].shape[2:]) for i in levels)
        condition_dim = state["encoder.0.block.act1.film.shift.weight"].shape[1]
    except KeyError as err:
        raise LayoutError(f"not an audiosep ResUNet state dict: missing key {err}") from None
    film = "scale_shift" if "encoder.0.block.act1.film.scale.weight" in state else "shift"
    rate, hop = KNOWN_STFT.get(n_fft, (None, None))
    kwargs = dict(sample_rate=rate, hop_length=hop, n_fft=n_fft, stem_channels=stem,
                  encoder_channels=widths, pool_sizes=pools, condition_dim=condition_dim, film=film)
    kwargs.update(overrides)
    if kwargs["sample_rate"] is None or kwargs["hop_length"] is None:
        raise LayoutError(
            f"n_fft={n_fft}: sample_rate and hop_length are not stored in a bare state dict; "
            "pass them (or a ResUNetConfig) explicitly"
        )
    return ResUNetConfig(**kwargs)
