"""Conversion between the reference AudioSep state-dict layout and ours.

The reference stores the network under ``ss_model.base.<module path>`` and the FiLM linears under
``ss_model.film.<a->b->betaN>``. Its decoder levels also hold a BatchNorm (``bn2``) and a FiLM
linear (``beta2``) that its forward pass never uses; they are dropped on import and written as
identity values on export. The STFT/ISTFT DFT buffers are not needed with ``torch.stft``.
"""
from __future__ import annotations

import re
from typing import Mapping

import torch
from torch import Tensor

from .config import ResUNetConfig
from .our_layout import LayoutError
from .our_layout import infer_config as infer_from_ours

__all__ = ["LayoutError", "PREFIX", "is_reference_layout", "infer_config", "from_reference", "to_reference"]

PREFIX = "ss_model."

_BN_STATS = ("weight", "bias", "running_mean", "running_var")
_RES_PARTS = {"bn1": "act1.norm", "bn2": "act2.norm", "conv1": "conv1", "conv2": "conv2",
              "shortcut": "shortcut"}


def is_reference_layout(state: Mapping[str, Tensor]) -> bool:
    return any(k.startswith(("ss_model.base.", "base.bn0.", "base.pre_conv.")) for k in state)


def _strip(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Keep the network keys, without the ``ss_model.`` prefix."""
    out = {}
    for key, value in state.items():
        if key.startswith(PREFIX):
            key = key[len(PREFIX):]
        if key.startswith(("base.", "film.")):
            out[key] = value
    return out


def _res_path(block: str, part: str) -> str | None:
    # part: "bn1.weight", "conv1.weight", "shortcut.bias", ...
    head, _, tail = part.partition(".")
    return f"{block}.{_RES_PARTS[head]}.{tail}" if head in _RES_PARTS else None


def _map_base(key: str) -> str | None:
    """Reference ``base.*`` key -> our key; None for keys we deliberately drop."""
    rest = key[len("base."):]
    if rest.startswith(("stft.", "istft.")) or rest.endswith("num_batches_tracked"):
        return None
    if rest.startswith("bn0."):
        return "input_norm." + rest[4:]
    if rest.startswith("pre_conv."):
        return "stem." + rest[9:]
    if rest.startswith("after_conv."):
        return "head." + rest[11:]
    m = re.fullmatch(r"encoder_block(\d+)\.conv_block1\.(.+)", rest)
    if m:
        return _res_path(f"encoder.{int(m[1]) - 1}.block", m[2])
    m = re.fullmatch(r"conv_block7a\.conv_block1\.(.+)", rest)
    if m:
        return _res_path("bottleneck", m[1])
    m = re.fullmatch(r"decoder_block(\d+)\.(.+)", rest)
    if m:
        i, part = int(m[1]) - 1, m[2]
        if part.startswith("conv1."):
            return f"decoder.{i}.up.{part[6:]}"
        if part.startswith("bn1."):
            return f"decoder.{i}.act.norm.{part[4:]}"
        if part.startswith("bn2."):
            return None  # unused by the reference forward pass
        if part.startswith("conv_block2."):
            return _res_path(f"decoder.{i}.block", part[len("conv_block2."):])
    return key  # unknown: reported as unexpected by the caller


def _map_film(key: str) -> str | None:
    rest = key[len("film."):]
    path, _, param = rest.rpartition(".")
    parts = path.split("->")
    m = re.fullmatch(r"(encoder_block|decoder_block)(\d+)", parts[0])
    beta = parts[-1]
    if beta not in ("beta1", "beta2"):
        return key
    if parts[0] == "conv_block7a" and parts[1:-1] == ["conv_block1"]:
        return f"bottleneck.act{beta[-1]}.film.shift.{param}"
    if m and m[1] == "encoder_block" and parts[1:-1] == ["conv_block1"]:
        return f"encoder.{int(m[2]) - 1}.block.act{beta[-1]}.film.shift.{param}"
    if m and m[1] == "decoder_block":
        i = int(m[2]) - 1
        if parts[1:-1] == []:
            return f"decoder.{i}.act.film.shift.{param}" if beta == "beta1" else None
        if parts[1:-1] == ["conv_block2"]:
            return f"decoder.{i}.block.act{beta[-1]}.film.shift.{param}"
    return key


def infer_config(state: Mapping[str, Tensor], **overrides) -> ResUNetConfig:
    """Network configuration implied by the shapes of a reference-layout state dict.

    Sample rate and hop are not stored in the weights: they follow from ``n_fft`` for the
    known releases (2048 -> 32 kHz / 320, 1024 -> 16 kHz / 160) unless given in ``overrides``.
    """
    ours = from_reference(state)
    if "input_norm.weight" not in ours or "stem.weight" not in ours:
        raise LayoutError("not a reference AudioSep ResUNet state dict: no base.bn0 / base.pre_conv weights")
    return infer_from_ours(ours, **overrides)


def from_reference(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Our state dict (no ``num_batches_tracked``) from a reference-layout one.

    Keys that cannot be mapped are returned unchanged, so that loading reports them.
    """
    sd = _strip(state)
    out = {}
    for key, value in sd.items():
        new = _map_base(key) if key.startswith("base.") else _map_film(key)
        if new is not None:
            out[new] = value
    return out


def to_reference(state: Mapping[str, Tensor], config: ResUNetConfig) -> dict[str, Tensor]:
    """Reference-layout state dict (with ``ss_model.`` prefix) from ours.

    The decoder's unused ``bn2`` and ``beta2`` are written as identity BatchNorm and zero linear
    so the result has every network key of a released checkpoint (STFT buffers excepted).
    """
    if config.film != "shift":
        raise LayoutError("the reference layout has no FiLM scale; only film='shift' can be exported")
    # Build the inverse map by mapping every reference key our network would have.
    n = len(config.pool_sizes)
    ref_keys = ["base.bn0." + s for s in _BN_STATS] + ["base.pre_conv.weight", "base.pre_conv.bias",
                "base.after_conv.weight", "base.after_conv.bias"]

    def res_keys(prefix: str, has_shortcut: bool) -> list[str]:
        keys = [f"{prefix}.{bn}.{s}" for bn in ("bn1", "bn2") for s in _BN_STATS]
        keys += [f"{prefix}.conv1.weight", f"{prefix}.conv2.weight"]
        if has_shortcut:
            keys += [f"{prefix}.shortcut.weight", f"{prefix}.shortcut.bias"]
        return keys

    widths = (config.stem_channels,) + config.encoder_channels
    for k in range(1, n + 1):
        ref_keys += res_keys(f"base.encoder_block{k}.conv_block1", widths[k - 1] != widths[k])
        ref_keys += [f"film.encoder_block{k}->conv_block1->beta{j}.{p}" for j in (1, 2) for p in ("weight", "bias")]
        ref_keys += [f"base.decoder_block{k}.conv1.weight"]
        ref_keys += [f"base.decoder_block{k}.bn1.{s}" for s in _BN_STATS]
        ref_keys += res_keys(f"base.decoder_block{k}.conv_block2", True)
        ref_keys += [f"film.decoder_block{k}->beta1.{p}" for p in ("weight", "bias")]
        ref_keys += [f"film.decoder_block{k}->conv_block2->beta{j}.{p}" for j in (1, 2) for p in ("weight", "bias")]
    ref_keys += res_keys("base.conv_block7a.conv_block1", False)
    ref_keys += [f"film.conv_block7a->conv_block1->beta{j}.{p}" for j in (1, 2) for p in ("weight", "bias")]
    inverse = {(_map_base(rk) if rk.startswith("base.") else _map_film(rk)): rk for rk in ref_keys}
    out = {}
    for ours, value in state.items():
        if ours.endswith("num_batches_tracked"):
            continue
        if ours not in inverse:
            raise LayoutError(f"cannot export key {ours!r} to the reference layout")
        out[PREFIX + inverse[ours]] = value
    # The decoder's unused BatchNorm and FiLM linear.
    for k in range(1, n + 1):
        ch = state[f"decoder.{k - 1}.up.weight"].shape[0]
        bn = f"{PREFIX}base.decoder_block{k}.bn2."
        film = f"{PREFIX}film.decoder_block{k}->beta2."
        out[bn + "weight"], out[bn + "bias"] = torch.ones(ch), torch.zeros(ch)
        out[bn + "running_mean"], out[bn + "running_var"] = torch.zeros(ch), torch.ones(ch)
        out[film + "weight"] = torch.zeros(ch, config.condition_dim)
        out[film + "bias"] = torch.zeros(ch)
    return out
