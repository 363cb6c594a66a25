"""STFT front end and back end of the separation network (``torch.stft``/``torch.istft``)."""
from __future__ import annotations

import torch
from torch import Tensor, nn

_MAG_FLOOR = 1e-10  # magnitude = sqrt(max(re^2 + im^2, floor)), as the released model


class Spectral(nn.Module):
    """Centred, reflect-padded Hann STFT and its inverse.

    Parameters
    ----------
    n_fft : int
        FFT size and window length.
    hop_length : int
        Hop in samples.
    """

    def __init__(self, n_fft: int, hop_length: int) -> None:
        super().__init__()
        self.n_fft = n_fft
        self.hop_length = hop_length
        # Not a persistent buffer: it is derived from n_fft and never stored in checkpoints.
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, wav: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Magnitude and phase of ``wav``.

        Parameters
        ----------
        wav : Tensor[B, L]

        Returns
        -------
        mag, cos, sin : Tensor[B, T, F]
            ``F = n_fft // 2 + 1`` and ``T = L // hop_length + 1``.
        """
        spec = torch.stft(
            wav,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window.to(wav.dtype),
            center=True,
            pad_mode="reflect",
            return_complex=True,
        ).transpose(1, 2)
        re, im = spec.real, spec.imag
        mag = (re * re + im * im).clamp_min(_MAG_FLOOR).sqrt()
        return mag, re / mag, im / mag

    def inverse(self, real: Tensor, imag: Tensor, length: int) -> Tensor:
        """Waveform from a complex spectrogram given as real and imaginary parts.

        Parameters
        ----------
        real, imag : Tensor[B, T, F]
        length : int
            Number of output samples.

        Returns
        -------
        Tensor[B, length]
        """
        spec = torch.complex(real, imag).transpose(1, 2)
        return torch.istft(
            spec,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window.to(real.dtype),
            center=True,
            length=length,
        )
