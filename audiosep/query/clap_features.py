"""The CLAP audio front end: 10 s window and the log-mel spectrogram HTSAT reads.

LAION-CLAP computes the features of its HTSAT audio tower inside the model, with torchlibrosa:
a periodic-Hann STFT (n_fft = win = 1024, hop 480, centred, reflect padding) at 48 kHz, the
power spectrogram, a librosa-style (Slaney scale, Slaney area normalisation) mel filterbank of
64 bands between 50 Hz and 14 kHz, and ``10 log10(max(x, 1e-10))`` with no ``top_db`` clipping.
This module computes the same thing with ``torch.stft`` and a filterbank built here, so neither
librosa nor torchlibrosa is needed at run time.

Clips are brought to exactly 10 s first. Shorter clips are "repeat-padded" as LAION-CLAP does
(tiled a whole number of times, then zero-padded to 10 s). Longer clips are cut to their centred
10 s window; the reference random-crops instead, which makes the embedding of a long example
change from call to call.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor, nn

from ..errors import check_keys


@dataclass(frozen=True)
class ClapFeatureConfig:
    """Parameters of the CLAP audio front end (defaults: LAION-CLAP HTSAT at 48 kHz)."""

    sample_rate: int = 48000
    clip_samples: int = 480000  # 10 s window
    n_fft: int = 1024
    hop_length: int = 480
    n_mels: int = 64
    fmin: float = 50.0
    fmax: float = 14000.0
    amin: float = 1e-10

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None) -> "ClapFeatureConfig":
        values = dict(values or {})
        check_keys(values, cls.__dataclass_fields__, "query_encoder.features")
        return cls(**values)

    @property
    def num_frames(self) -> int:
        """Frames of the log-mel spectrogram of one window (centred STFT)."""
        return self.clip_samples // self.hop_length + 1


def _hz_to_mel_slaney(hz: np.ndarray) -> np.ndarray:
    # linear below 1 kHz (200/3 Hz per mel), logarithmic above (27 mels per factor 6.4)
    hz = np.asarray(hz, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3.0, 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    mel = hz / f_sp
    high = hz >= min_log_hz
    mel[high] = min_log_mel + np.log(hz[high] / min_log_hz) / logstep
    return mel


def _mel_to_hz_slaney(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    f_sp, min_log_hz = 200.0 / 3.0, 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = math.log(6.4) / 27.0
    hz = mel * f_sp
    high = mel >= min_log_mel
    hz[high] = min_log_hz * np.exp(logstep * (mel[high] - min_log_mel))
    return hz


def slaney_mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> Tensor:
    """Triangular mel filters on the Slaney mel scale with Slaney (constant-area) normalisation.

    The same filters as ``librosa.filters.mel(sr, n_fft, n_mels, fmin, fmax)`` (its defaults
    ``htk=False, norm="slaney"``), transposed.

    Returns
    -------
    Tensor[n_fft // 2 + 1, n_mels]
        float32 weights; ``power_spectrum @ filters`` gives the mel spectrum.
    """
    if not 0 <= fmin < fmax <= sample_rate / 2:
        raise ValueError(f"need 0 <= fmin < fmax <= sample_rate / 2, got fmin={fmin}, fmax={fmax}, sr={sample_rate}")
    fft_hz = np.linspace(0.0, sample_rate / 2.0, n_fft // 2 + 1)  # [F]
    edges_hz = _mel_to_hz_slaney(np.linspace(_hz_to_mel_slaney(np.array([fmin]))[0],
                                             _hz_to_mel_slaney(np.array([fmax]))[0], n_mels + 2))
    widths = np.diff(edges_hz)  # [n_mels + 1]
    dist = edges_hz[:, None] - fft_hz[None, :]  # [n_mels + 2, F]
    rising = -dist[:-2] / widths[:-1, None]  # [n_mels, F]
    falling = dist[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]  # constant area per band
    return torch.from_numpy(weights.T.astype(np.float32))


def fit_clip(audio: Tensor, clip_samples: int) -> Tensor:
    """Bring every example to exactly ``clip_samples`` samples.

    Shorter examples are tiled ``clip_samples // L`` times and zero-padded at the end
    (LAION-CLAP's "repeatpad"); longer ones are cut to their centred window.

    Parameters
    ----------
    audio : Tensor[N, L]
    clip_samples : int

    Returns
    -------
    Tensor[N, clip_samples]
    """
    if audio.dim() != 2:
        raise ValueError(f"expected audio of shape [N, L], got {tuple(audio.shape)}")
    length = audio.shape[-1]
    if length == 0:
        raise ValueError("an audio query is empty (0 samples); pass at least a few milliseconds of audio")
    if length > clip_samples:
        start = (length - clip_samples) // 2
        return audio[:, start : start + clip_samples]
    if length < clip_samples:
        audio = audio.repeat(1, clip_samples // length)
        audio = nn.functional.pad(audio, (0, clip_samples - audio.shape[-1]))
    return audio


class ClapLogMel(nn.Module):
    """Waveform -> log-mel spectrogram, as LAION-CLAP's HTSAT front end computes it.

    Parameters
    ----------
    config : ClapFeatureConfig
    """

    def __init__(self, config: ClapFeatureConfig = ClapFeatureConfig()) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("window", torch.hann_window(config.n_fft, periodic=True), persistent=False)
        filters = slaney_mel_filterbank(config.sample_rate, config.n_fft, config.n_mels, config.fmin, config.fmax)
        self.register_buffer("mel_filters", filters, persistent=False)

    def forward(self, audio: Tensor) -> Tensor:
        """
        Parameters
        ----------
        audio : Tensor[N, L]
            Waveforms at ``config.sample_rate``.

        Returns
        -------
        Tensor[N, 1, T, n_mels]
            Log-mel power in dB, ``T = L // hop_length + 1``.
        """
        cfg = self.config
        spec = torch.stft(
            audio.float(), cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.n_fft, window=self.window,
            center=True, pad_mode="reflect", return_complex=True,
        )  # [N, F, T]
        power = spec.real.square() + spec.imag.square()
        mel = power.transpose(1, 2) @ self.mel_filters  # [N, T, n_mels]
        return (10.0 * torch.log10(mel.clamp_min(cfg.amin))).unsqueeze(1)
