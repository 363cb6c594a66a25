"""LAION-CLAP checkpoints -> ``transformers`` ``ClapModel`` weights.

Two released files carry the CLAP weights AudioSep uses:

* the LAION-CLAP training checkpoint ``music_speech_audioset_epoch_15_esc_89.98.pt``:
  ``{"epoch": ..., "state_dict": {"module.text_branch.*", "module.audio_branch.*", ...}}``;
* the AudioSep Lightning checkpoint, whose ``state_dict`` holds the same weights under
  ``query_encoder.model.<laion key>``.

:func:`laion_state_from_checkpoint` finds the LAION keys in either, and
:func:`convert_laion_clap_state_dict` renames them to the ``ClapModel`` layout. Keys that only
matter for training or classification (the MLP ``*_transform`` heads, the HTSAT class head, the
torchlibrosa STFT / mel weights, buffers the model rebuilds) are dropped; any key the converter
does not know is an error.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

import torch
from torch import Tensor

# HTSAT-base + RoBERTa-base, 512-d joint space: the CLAP model AudioSep was trained with.
# Audio tower values are those of LAION-CLAP's "HTSAT-base" (create_htsat_model, model_name "base";
# the same as the transformers conversion "laion/larger_clap_music_and_speech"); text tower values
# are roberta-base's (layer_norm_eps 1e-5, vocabulary 50265, 514 positions).
HTSAT_BASE_AUDIO = {
    "spec_size": 256,
    "num_mel_bins": 64,
    "patch_size": 4,
    "patch_stride": [4, 4],
    "patch_embeds_hidden_size": 128,
    "depths": [2, 2, 12, 2],
    "num_attention_heads": [4, 8, 16, 32],
    "window_size": 8,
    "mlp_ratio": 4.0,
    "hidden_size": 1024,  # 128 * 2**3 features out of the last stage
    "enable_fusion": False,
    "layer_norm_eps": 1e-5,
}
ROBERTA_BASE_TEXT = {
    "vocab_size": 50265,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 514,
    "type_vocab_size": 1,
    "layer_norm_eps": 1e-5,
    "pad_token_id": 1,
    "bos_token_id": 0,
    "eos_token_id": 2,
}
DEFAULT_CLAP_CONFIG = {
    "text_config": ROBERTA_BASE_TEXT,
    "audio_config": HTSAT_BASE_AUDIO,
    "projection_dim": 512,
    "projection_hidden_act": "relu",
}

AUDIOSEP_PREFIX = "query_encoder.model."
_AUDIO = "audio_model.audio_encoder."
_BLOCK = r"audio_branch\.layers\.(\d+)\.blocks\.(\d+)\."
_LIN = r"(weight|bias)"
_TEXT_LAYER = (
    r"attention\.self\.(query|key|value)|attention\.output\.(dense|LayerNorm)|intermediate\.dense"
    r"|output\.(dense|LayerNorm)"
)

# (pattern on the laion key, replacement) in order; replacement None drops the key, "qkv" splits it.
_RULES: list[tuple[str, str | None]] = [
    # text tower: RoBERTa module names are kept by ClapTextModel
    (r"text_branch\.embeddings\.(position_ids|token_type_ids)", None),  # buffers, rebuilt
    (rf"text_branch\.embeddings\.((word|position|token_type)_embeddings\.weight|LayerNorm\.{_LIN})",
     r"text_model.embeddings.\1"),
    (rf"text_branch\.encoder\.layer\.(\d+)\.(({_TEXT_LAYER})\.{_LIN})", r"text_model.encoder.layer.\1.\2"),
    (rf"text_branch\.pooler\.dense\.{_LIN}", r"text_model.pooler.dense.\1"),
    # projections: Sequential(Linear, ReLU, Linear)
    (rf"(text|audio)_projection\.0\.{_LIN}", r"\1_projection.linear1.\2"),
    (rf"(text|audio)_projection\.2\.{_LIN}", r"\1_projection.linear2.\2"),
    (r"logit_scale_(a|t)", r"logit_scale_\1"),
    (r"(text|audio)_transform\..*", None),  # contrastive-training MLPs, not part of the embedding
    # audio tower (HTSAT)
    (r"audio_branch\.(spectrogram_extractor|logmel_extractor)\..*", None),  # computed by ClapLogMel
    (r"audio_branch\.(tscam_conv|head)\..*", None),  # AudioSet classification head
    (r"audio_branch\.bn0\.(weight|bias|running_mean|running_var|num_batches_tracked)",
     _AUDIO + r"batch_norm.\1"),
    (rf"audio_branch\.patch_embed\.(proj|norm)\.{_LIN}", _AUDIO + r"patch_embed.\1.\2"),
    (rf"{_BLOCK}norm1\.{_LIN}", _AUDIO + r"layers.\1.blocks.\2.layernorm_before.\3"),
    (rf"{_BLOCK}norm2\.{_LIN}", _AUDIO + r"layers.\1.blocks.\2.layernorm_after.\3"),
    (rf"{_BLOCK}attn\.qkv\.{_LIN}", "qkv"),
    (rf"{_BLOCK}attn\.relative_position_bias_table",
     _AUDIO + r"layers.\1.blocks.\2.attention.self.relative_position_bias_table"),
    (rf"{_BLOCK}(attn\.relative_position_index|attn_mask)", None),  # buffers, rebuilt
    (rf"{_BLOCK}attn\.proj\.{_LIN}", _AUDIO + r"layers.\1.blocks.\2.attention.output.dense.\3"),
    (rf"{_BLOCK}mlp\.fc1\.{_LIN}", _AUDIO + r"layers.\1.blocks.\2.intermediate.dense.\3"),
    (rf"{_BLOCK}mlp\.fc2\.{_LIN}", _AUDIO + r"layers.\1.blocks.\2.output.dense.\3"),
    (rf"audio_branch\.layers\.(\d+)\.downsample\.(reduction\.weight|norm\.{_LIN})",
     _AUDIO + r"layers.\1.downsample.\2"),
    (rf"audio_branch\.norm\.{_LIN}", _AUDIO + r"norm.\1"),
]
_COMPILED: list[tuple[re.Pattern[str], str | None]] = [(re.compile(p), r) for p, r in _RULES]

# ClapModel entries a LAION checkpoint does not (or need not) provide: rebuilt by the model itself.
REBUILT_KEYS = re.compile(
    r"text_model\.embeddings\.(position_ids|token_type_ids)"
    r"|audio_model\.audio_encoder\.layers\.\d+\.blocks\.\d+\.attention\.self\.relative_position_index"
)


def convert_laion_clap_state_dict(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename LAION-CLAP (non-fusion, HTSAT + RoBERTa) weights to the ``ClapModel`` layout.

    Parameters
    ----------
    state : mapping of str to Tensor
        LAION-CLAP ``CLAP`` module keys (``text_branch.*``, ``audio_branch.*``,
        ``text_projection.0.weight``, ...), with or without the ``module.`` prefix of DDP training.

    Returns
    -------
    dict of str to Tensor
        ``transformers.ClapModel`` keys. The fused HTSAT ``attn.qkv`` projection is split into
        ``query`` / ``key`` / ``value``.

    Raises
    ------
    ValueError
        If some keys have no mapping (e.g. a fusion CLAP or a PANN audio tower), listing them.
    """
    out: dict[str, Tensor] = {}
    unmapped: list[str] = []
    for key, value in state.items():
        name = key[len("module."):] if key.startswith("module.") else key
        for pattern, repl in _COMPILED:
            match = pattern.fullmatch(name)
            if match is None:
                continue
            if repl == "qkv":
                layer, block, kind = match.groups()
                prefix = f"{_AUDIO}layers.{layer}.blocks.{block}.attention.self."
                for part, chunk in zip(("query", "key", "value"), value.chunk(3, dim=0)):
                    out[f"{prefix}{part}.{kind}"] = chunk.clone()
            elif repl is not None:
                out[match.expand(repl)] = value
            break
        else:
            unmapped.append(key)
    if unmapped:
        shown = ", ".join(unmapped[:12]) + (f", ... ({len(unmapped)} in all)" if len(unmapped) > 12 else "")
        raise ValueError(
            f"{len(unmapped)} CLAP weights have no transformers counterpart: {shown}. Only the non-fusion "
            "LAION-CLAP with an HTSAT audio tower and a RoBERTa text tower (the model AudioSep uses) is "
            "supported; check that the file is music_speech_audioset_epoch_15_esc_89.98.pt or an AudioSep checkpoint"
        )
    return out


def laion_state_from_checkpoint(checkpoint: Any) -> dict[str, Tensor]:
    """The LAION-CLAP weights inside a loaded checkpoint object.

    Accepts a LAION-CLAP training checkpoint (``{"state_dict": {"module.<key>": ...}}``), a bare
    LAION state dict, or an AudioSep Lightning checkpoint (``query_encoder.model.<key>``).

    Returns
    -------
    dict of str to Tensor
        LAION keys without any ``module.`` / ``query_encoder.model.`` prefix.
    """
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, Mapping) else None
    if not isinstance(state, Mapping):
        raise ValueError(
            f"expected a checkpoint dict with a 'state_dict' or a state dict, got {type(checkpoint).__name__}"
        )
    if any(k.startswith(AUDIOSEP_PREFIX) for k in state):
        state = {k[len(AUDIOSEP_PREFIX):]: v for k, v in state.items() if k.startswith(AUDIOSEP_PREFIX)}
    state = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}
    if not any(k.startswith("text_branch.") for k in state):
        sample = ", ".join(list(state)[:5])
        raise ValueError(
            "no LAION-CLAP weights found (expected 'text_branch.*' and 'audio_branch.*' keys, or "
            f"'{AUDIOSEP_PREFIX}*' in an AudioSep checkpoint); the file starts with: {sample}"
        )
    return {k: v for k, v in state.items() if isinstance(v, Tensor)}


def load_clap_weights(model: torch.nn.Module, state: Mapping[str, Tensor], source: str = "checkpoint") -> None:
    """Load converted weights into a ``ClapModel``, requiring every learned weight to be present.

    Raises
    ------
    ValueError
        If weights are missing, unexpected, or of the wrong shape (the architecture in the
        encoder config does not match the checkpoint).
    """
    own = model.state_dict()
    wrong = [f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}" for k, v in state.items()
             if k in own and own[k].shape != v.shape]
    unexpected = [k for k in state if k not in own]
    missing = [k for k in own if k not in state and not REBUILT_KEYS.fullmatch(k)]
    if wrong or unexpected or missing:
        parts = [f"{name}: {', '.join(keys[:6])}{' ...' if len(keys) > 6 else ''}"
                 for name, keys in (("shape mismatch", wrong), ("unexpected", unexpected), ("missing", missing))
                 if keys]
        raise ValueError(
            f"the CLAP weights in {source} do not fit the configured architecture ({'; '.join(parts)}); "
            "pass the matching 'model_config' (the default is HTSAT-base + RoBERTa-base)"
        )
    model.load_state_dict(dict(state), strict=False)

