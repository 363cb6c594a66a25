"""Configuration of the separation network."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import check_keys

FILM_MODES = ("shift", "scale_shift")


def _number(name: str, value: Any) -> float:
    """``value`` as a float, or a ValueError naming the ``ResUNetConfig`` field."""
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"ResUNetConfig.{name} must be a number, got {value!r}") from None


@dataclass(frozen=True)
class ResUNetConfig:
    """Hyper-parameters of the FiLM-conditioned ResUNet.

    The defaults are the released AudioSep "ResUNet30" (32 kHz, 2048-point STFT, hop 320,
    512-d condition, shift-only FiLM).

    Attributes
    ----------
    sample_rate : int
        Rate of the waveforms the network reads and writes, in Hz.
    n_fft : int
        STFT size; also the Hann window length.
    hop_length : int
        STFT hop in samples.
    stem_channels : int
        Output width of the 1x1 convolution applied to the magnitude spectrogram.
    encoder_channels : tuple of int
        Output width of each encoder level; the bottleneck keeps the last width.
    pool_sizes : tuple of (int, int)
        (time, frequency) average-pooling factor after each encoder level; the decoder
        upsamples by the same factors in reverse.
    condition_dim : int
        Size of the query embedding the network is conditioned on.
    film : {"shift", "scale_shift"}
        "shift" adds a condition-dependent bias after each BatchNorm (the released model);
        "scale_shift" also multiplies by ``1 + scale(condition)``.
    bn_momentum : float
        BatchNorm momentum (PyTorch convention).
    input_level_db : float or None
        When set, the network computes its features from the mixture scaled to this RMS level
        (dB re full scale) and applies the mask to the unscaled STFT: the output keeps the
        input's level and the separation does not depend on the input's gain. ``None`` (the
        released model) feeds the mixture as it is.
    mask_exponent : float
        The magnitude mask is ``sigmoid(logit) ** mask_exponent``. 1 (the released model) is the
        plain sigmoid; below 1 softens the mask (small gains rise, 1 stays 1), above 1 sharpens
        it. Changes no weights: it calibrates a trained network's mask.
    """

    sample_rate: int = 32000
    n_fft: int = 2048
    hop_length: int = 320
    stem_channels: int = 32
    encoder_channels: tuple[int, ...] = (32, 64, 128, 256, 384, 384)
    pool_sizes: tuple[tuple[int, int], ...] = ((2, 2), (2, 2), (2, 2), (2, 2), (2, 2), (1, 2))
    condition_dim: int = 512
    film: str = "shift"
    bn_momentum: float = 0.01
    input_level_db: float | None = None
    mask_exponent: float = 1.0

    def __post_init__(self) -> None:
        # Normalise lists (from JSON/YAML) to tuples so configs compare and hash.
        object.__setattr__(self, "encoder_channels", tuple(int(c) for c in self.encoder_channels))
        object.__setattr__(
            self, "pool_sizes", tuple((int(t), int(f)) for t, f in self.pool_sizes)
        )
        if self.film not in FILM_MODES:
            raise ValueError(f"ResUNetConfig.film must be one of {FILM_MODES}, got {self.film!r}")
        if len(self.encoder_channels) != len(self.pool_sizes):
            raise ValueError(
                "ResUNetConfig.encoder_channels and pool_sizes must have the same length "
                f"(got {len(self.encoder_channels)} and {len(self.pool_sizes)})"
            )
        if self.input_level_db is not None:
            level = _number("input_level_db", self.input_level_db)
            if not -80.0 <= level <= 0.0:
                raise ValueError(
                    f"ResUNetConfig.input_level_db is an RMS level in dB re full scale and must be in "
                    f"[-80, 0] (or None to feed the mixture unscaled), got {self.input_level_db!r}")
            object.__setattr__(self, "input_level_db", level)
        exponent = _number("mask_exponent", self.mask_exponent)
        if not 0.0 < exponent <= 4.0:
            raise ValueError(
                f"ResUNetConfig.mask_exponent raises the sigmoid magnitude mask to this power and must be "
                f"in (0, 4] (1 keeps the plain mask), got {self.mask_exponent!r}")
        object.__setattr__(self, "mask_exponent", exponent)
        for name in ("sample_rate", "n_fft", "hop_length", "stem_channels", "condition_dim"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ResUNetConfig.{name} must be positive, got {getattr(self, name)}")
        if self.freq_bins % self.freq_downsample:
            raise ValueError(
                f"n_fft // 2 = {self.freq_bins} frequency bins are not divisible by the product of "
                f"the frequency pool sizes ({self.freq_downsample}); change n_fft or pool_sizes"
            )

    @property
    def freq_bins(self) -> int:
        """Frequency bins the convolutions see (the Nyquist bin is dropped)."""
        return self.n_fft // 2

    @property
    def time_downsample(self) -> int:
        out = 1
        for t, _ in self.pool_sizes:
            out *= t
        return out

    @property
    def freq_downsample(self) -> int:
        out = 1
        for _, f in self.pool_sizes:
            out *= f
        return out

    @property
    def context_frames(self) -> int:
        """STFT frames on each side of a frame that can change its output (half the receptive
        field): every 3x3 convolution reaches one step further at its level's time stride (two
        per residual block, one block per level on the way down and one on the way up, one in the
        bottleneck), each pooling its size less one, and the STFT window half a window."""
        reach, stride = 0, 1
        for t, _ in self.pool_sizes:
            reach += (2 + (t - 1) + 2) * stride  # encoder block, pooling, decoder block
            stride *= t
        return reach + 2 * stride + self.n_fft // (2 * self.hop_length)  # bottleneck; STFT window

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["encoder_channels"] = list(self.encoder_channels)
        d["pool_sizes"] = [list(p) for p in self.pool_sizes]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ResUNetConfig":
        check_keys(d, [f.name for f in dataclasses.fields(cls)], "separation_net")
        return cls(**dict(d))
