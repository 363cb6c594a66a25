"""The FiLM-conditioned ResUNet that masks the mixture's STFT."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .blocks import DecoderLevel, EncoderLevel, NormAct, ResBlock
from .config import ResUNetConfig
from .fused import stem_into
from .spectral import Spectral

SILENT_RMS = 1e-5  # -100 dBFS: the quietest level input_level_db scales up from


class ResUNet(nn.Module):
    """Query-conditioned separation network (the AudioSep "ResUNet30" family).

    It predicts, per time-frequency bin, a magnitude mask and a phase rotation, applies them to
    the mixture's STFT and returns the waveform of the queried source.

    Parameters
    ----------
    config : ResUNetConfig

    Notes
    -----
    By default the network runs its *fused* path: channels-last activations and, in eval
    mode, BatchNorm + FiLM folded into one per-channel affine with in-place LeakyReLU (see
    :mod:`audiosep.nn.fused`). ``set_fused(False)`` selects the plain module-by-module
    computation (the reference's structure); both compute the same function.
    """

    fused = True

    def __init__(self, config: ResUNetConfig | None = None) -> None:
        super().__init__()
        cfg = self.config = config or ResUNetConfig()
        scale = cfg.film == "scale_shift"
        args = (cfg.condition_dim, scale, cfg.bn_momentum)
        self.spectral = Spectral(cfg.n_fft, cfg.hop_length)
        self.input_norm = nn.BatchNorm2d(cfg.n_fft // 2 + 1, momentum=cfg.bn_momentum)
        self.stem = nn.Conv2d(1, cfg.stem_channels, 1)
        widths = (cfg.stem_channels,) + cfg.encoder_channels
        self.encoder = nn.ModuleList(
            EncoderLevel(widths[i], widths[i + 1], cfg.pool_sizes[i], *args)
            for i in range(len(cfg.pool_sizes))
        )
        self.bottleneck = ResBlock(widths[-1], widths[-1], *args)
        self.decoder = nn.ModuleList(
            # input: the level below (or the bottleneck); output: this level's skip width
            DecoderLevel(widths[min(i + 2, len(widths) - 1)], widths[i + 1], cfg.pool_sizes[i], *args)
            for i in reversed(range(len(cfg.pool_sizes)))
        )
        self.head = nn.Conv2d(cfg.stem_channels, 3, 1)
        self.reset_parameters()

    def set_fused(self, enabled: bool = True) -> "ResUNet":
        """Choose the fused fast path (default) or the plain module-by-module forward.

        Both compute the same function (to float32 rounding); the plain path is kept as a
        baseline for tests and benchmarks. Returns ``self``.
        """
        self.fused = bool(enabled)
        for m in self.modules():
            if isinstance(m, NormAct):
                m.fused = self.fused
        return self

    def reset_parameters(self) -> None:
        """Xavier-uniform convolutions and linears with zero bias; BatchNorm as identity."""
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                m.reset_parameters()
                m.reset_running_stats()
        for name, m in self.named_modules():
            if isinstance(m, nn.Linear) and name.endswith("film.shift"):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def logits(self, mag: Tensor, condition: Tensor) -> Tensor:
        """Mask logits from the magnitude spectrogram.

        Parameters
        ----------
        mag : Tensor[B, T, F]
            Magnitude STFT, ``F = n_fft // 2 + 1``.
        condition : Tensor[B, D]

        Returns
        -------
        Tensor[B, 3, T', F - 1]
            Logits of the magnitude mask and of the phase rotation (real, imaginary), with
            ``T'`` the frame count padded to a multiple of ``config.time_downsample``.
        """
        cfg = self.config
        frames = mag.shape[1]
        x = self.input_norm(mag.transpose(1, 2).unsqueeze(-1)).squeeze(-1).transpose(1, 2)
        pad = -frames % cfg.time_downsample
        x = F.pad(x, (0, 0, 0, pad))[:, None, :, : cfg.freq_bins]  # [B, 1, T', F-1]
        if self.fused:  # channels-last from here on: oneDNN/cuDNN convolutions prefer it
            x = stem_into(self.stem, x)
        else:
            x = self.stem(x)
        skips = []
        for level in self.encoder:
            x, skip = level(x, condition)
            skips.append(skip)
        x = self.bottleneck(x, condition)
        for level, skip in zip(self.decoder, reversed(skips)):
            x = level(x, skip, condition)
        return self.head(x).contiguous()

    def forward(self, mixture: Tensor, condition: Tensor, level_gain: Tensor | None = None) -> Tensor:
        """Separate the source described by ``condition`` from ``mixture``.

        Parameters
        ----------
        mixture : Tensor[B, 1, L]
            Mono waveform at ``config.sample_rate``; any length ``L >= 1`` (inputs shorter
            than the STFT window are zero-padded to it and the output trimmed back).
        condition : Tensor[B, D]
            Query embedding, ``D = config.condition_dim``.
        level_gain : Tensor[B], optional
            With ``config.input_level_db`` set: the gain that brings each mixture to that level,
            default :meth:`level_gain` of ``mixture``. A caller running a long signal in windows
            passes the whole signal's gain so that every window is scaled alike.

        Returns
        -------
        Tensor[B, 1, L]
        """
        dim = self.config.condition_dim
        if mixture.dim() != 3 or mixture.shape[1] != 1:
            raise ValueError(
                f"mixture must be Tensor[B, 1, L] (mono waveforms), got shape {tuple(mixture.shape)}; "
                "for a Tensor[L] use mixture[None, None], for Tensor[B, L] use mixture[:, None]"
            )
        if condition.dim() != 2 or condition.shape != (mixture.shape[0], dim):
            raise ValueError(
                f"condition must be Tensor[B, D] = Tensor[{mixture.shape[0]}, {dim}] (one query "
                f"embedding per mixture), got shape {tuple(condition.shape)}"
            )
        length = mixture.shape[-1]
        gain = None
        if self.config.input_level_db is not None:
            # Computed on the mixture brought to the level: the same as masking the unscaled STFT
            # with features of the scaled one, and finite for any finite input.
            gain = (self.level_gain(mixture) if level_gain is None else level_gain).to(mixture.dtype)[:, None, None]
            mixture = mixture * gain
        if length <= self.config.n_fft // 2:  # reflect padding needs more than half a window
            mixture = F.pad(mixture, (0, self.config.n_fft - length))
        mag, cos, sin = self.spectral(mixture[:, 0])
        logits = self.logits(mag, condition.to(mag.dtype))
        out = self.apply_mask(logits, mag, cos, sin, mixture.shape[-1])[:, None, :length]
        return out if gain is None else out / gain

    def level_gain(self, mixture: Tensor) -> Tensor:
        """Tensor[B]: the gain that brings each ``mixture: Tensor[B, 1, L]`` to ``config.input_level_db``
        RMS. Near-silent mixtures (below -100 dBFS) get the gain of a -100 dBFS one."""
        x = mixture.float()
        peak = x.abs().amax(dim=(1, 2)).clamp_min(SILENT_RMS)  # scaled first: no overflow in the square
        rms = (x / peak[:, None, None]).pow(2).mean(dim=(1, 2)).sqrt() * peak
        return gain_for_rms(rms, self.config.input_level_db).to(mixture.dtype)


    def apply_mask(self, logits: Tensor, mag: Tensor, cos: Tensor, sin: Tensor, length: int) -> Tensor:
        """Waveform from mask logits and the mixture's STFT.

        logits: Tensor[B, 3, T', F-1]; mag, cos, sin: Tensor[B, T, F] -> Tensor[B, length].
        """
        frames = mag.shape[1]
        # in the STFT's precision (float32 under fp16 autocast too): the phase normalisation below
        # squares tanh values, which underflow to 0 in float16 (0 / 0 = NaN)
        logits = F.pad(logits[:, :, :frames].to(mag.dtype), (0, 1))  # the Nyquist bin gets zero logits
        exponent = self.config.mask_exponent
        # sigmoid ** p as exp(p * logsigmoid): where sigmoid underflows to 0, 0 ** p has a NaN gradient
        if exponent == 1.0:
            gain = torch.sigmoid(logits[:, 0])
        else:
            gain = torch.exp(exponent * F.logsigmoid(logits[:, 0]))
        rot_re, rot_im = torch.tanh(logits[:, 1]), torch.tanh(logits[:, 2])
        norm = (rot_re * rot_re + rot_im * rot_im).sqrt().clamp_min(1e-10)
        rot_re, rot_im = rot_re / norm, rot_im / norm
        out_mag = F.relu(mag * gain)
        real = out_mag * (cos * rot_re - sin * rot_im)
        imag = out_mag * (sin * rot_re + cos * rot_im)
        return self.spectral.inverse(real, imag, length)


def gain_for_rms(rms: Tensor, level_db: float) -> Tensor:
    """The gain that brings signals of RMS ``rms`` to ``level_db`` dBFS (near-silence is
    treated as -100 dBFS, so silence stays silence without a division by zero)."""
    return 10.0 ** (level_db / 20.0) / rms.clamp_min(SILENT_RMS)
