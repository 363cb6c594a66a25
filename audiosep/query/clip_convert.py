"""Convert the text tower of an open_clip / OpenAI CLIP checkpoint to ``transformers`` layout.

open_clip (and OpenAI's non-TorchScript) CLIP state dicts name the text tower::

    token_embedding.weight                          [V, W]
    positional_embedding                            [C, W]
    transformer.resblocks.{i}.ln_1.{weight,bias}
    transformer.resblocks.{i}.attn.in_proj_weight   [3W, W]  fused q, k, v (in that order)
    transformer.resblocks.{i}.attn.in_proj_bias     [3W]
    transformer.resblocks.{i}.attn.out_proj.{weight,bias}
    transformer.resblocks.{i}.ln_2.{weight,bias}
    transformer.resblocks.{i}.mlp.c_fc.{weight,bias}     [4W, W]
    transformer.resblocks.{i}.mlp.c_proj.{weight,bias}   [W, 4W]
    ln_final.{weight,bias}
    text_projection                                 [W, E]   applied as x @ P

(``text.``-prefixed in open_clip's CustomTextCLIP, ``module.``-prefixed in DDP training
checkpoints). :func:`convert_open_clip_text` maps them onto ``CLIPTextModelWithProjection``;
``visual.*``, ``logit_scale`` and other non-text entries are ignored. The pooled token is the
end-of-text token, which OpenAI's vocabulary gives the highest id: open_clip takes the argmax of
the ids, transformers the first ``eos_token_id`` position, the same token for CLIP tokenizers.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping

from torch import Tensor
from transformers import CLIPTextConfig, CLIPTextModelWithProjection

from ..errors import AudiosepError
from ..weight_files import TorchScriptArchiveError, load_torch_file, read_safetensors

_BLOCK = re.compile(r"transformer\.resblocks\.(\d+)\.(.+)")
# open_clip resblock sub-key -> transformers encoder-layer sub-key (q/k/v are split separately)
_BLOCK_MAP = {
    "ln_1.weight": "layer_norm1.weight",
    "ln_1.bias": "layer_norm1.bias",
    "ln_2.weight": "layer_norm2.weight",
    "ln_2.bias": "layer_norm2.bias",
    "attn.out_proj.weight": "self_attn.out_proj.weight",
    "attn.out_proj.bias": "self_attn.out_proj.bias",
    "mlp.c_fc.weight": "mlp.fc1.weight",
    "mlp.c_fc.bias": "mlp.fc1.bias",
    "mlp.c_proj.weight": "mlp.fc2.weight",
    "mlp.c_proj.bias": "mlp.fc2.bias",
}
_TOP_MAP = {
    "token_embedding.weight": "text_model.embeddings.token_embedding.weight",
    "positional_embedding": "text_model.embeddings.position_embedding.weight",
    "ln_final.weight": "text_model.final_layer_norm.weight",
    "ln_final.bias": "text_model.final_layer_norm.bias",
}
ACTIVATIONS = ("quick_gelu", "gelu")
OPEN_CLIP_CONFIG = "open_clip_config.json"  # written beside open_clip weights on the hub
_IGNORED_TOP = {"logit_scale", "logit_bias", "attn_mask", "input_resolution", "context_length", "vocab_size"}


def load_open_clip_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Read an open_clip checkpoint (``.safetensors``, or a ``torch.save`` file) as a flat state dict.

    Training checkpoints (``{"state_dict": ...}``) are unwrapped and a DDP ``module.`` prefix
    removed. Torch pickles are read with :func:`audiosep.weight_files.load_torch_file`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"CLIP checkpoint {path} not found; pass the path of an open_clip state dict")
    if path.suffix == ".safetensors":
        state, _ = read_safetensors(path)
    else:
        try:
            state = load_torch_file(path)
        except TorchScriptArchiveError:
            raise TorchScriptArchiveError(
                f"{path} is a TorchScript archive (OpenAI's original ViT-B-32.pt); use the plain "
                "state dict instead, e.g. open_clip's 'open_clip_pytorch_model.bin' for ViT-B-32 'openai'"
            ) from None
    for key in ("state_dict", "model"):
        if isinstance(state, Mapping) and key in state and isinstance(state[key], Mapping):
            state = state[key]
    if not isinstance(state, Mapping):
        raise ValueError(f"{path} does not hold a state dict (got {type(state).__name__})")
    state = {k: v for k, v in state.items() if isinstance(v, Tensor)}
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _text_prefix(state: Mapping[str, Tensor]) -> str:
    for key in state:
        if key.endswith("token_embedding.weight") and not key.startswith("visual."):
            return key[: -len("token_embedding.weight")]
    raise KeyError(
        "no 'token_embedding.weight' in the state dict: this is not an open_clip CLIP checkpoint "
        "(transformers CLIP folders load directly; pass their folder instead)"
    )


def open_clip_activation(model_name: str, pretrained: str | None = None) -> str:
    """The MLP activation of an open_clip model: ``"quick_gelu"`` for OpenAI weights (pretrained
    tag ``"openai"``) and models named ``*-quickgelu``, else ``"gelu"`` (e.g. ``ViT-B-32`` with
    LAION weights).

    >>> open_clip_activation("ViT-B-32", "openai"), open_clip_activation("ViT-B-32", "laion2b_s34b_b79k")
    ('quick_gelu', 'gelu')
    """
    quick = model_name.lower().endswith("-quickgelu") or (pretrained or "").lower() == "openai"
    return "quick_gelu" if quick else "gelu"


def open_clip_hidden_act(checkpoint: str | Path, hidden_act: str | None = None) -> str:
    """The MLP activation for an open_clip state-dict file (which does not record it).

    ``hidden_act`` if given, else ``model_cfg.quick_gelu`` of the ``open_clip_config.json``
    beside the file (absent: GELU, as open_clip builds it).

    Raises
    ------
    AudiosepError
        For an unknown activation, or when neither tells it (a default would silently give
        wrong embeddings for one of the two kinds of weights).
    """
    if hidden_act is not None:
        if hidden_act not in ACTIVATIONS:
            raise AudiosepError(f"hidden_act must be one of {', '.join(ACTIVATIONS)}, got {hidden_act!r}")
        return hidden_act
    config_file = Path(checkpoint).parent / OPEN_CLIP_CONFIG
    if config_file.is_file():
        model_cfg = json.loads(config_file.read_text()).get("model_cfg", {})
        return "quick_gelu" if model_cfg.get("quick_gelu", False) else "gelu"
    raise AudiosepError(
        f"cannot tell the MLP activation of the CLIP weights {checkpoint}: open_clip state dicts do not "
        "record it; pass hidden_act='quick_gelu' (OpenAI weights, open_clip '-quickgelu' models) or 'gelu' "
        f"(e.g. LAION ViT-B-32), or put its {OPEN_CLIP_CONFIG} beside the file"
    )


def open_clip_vocab_size(state: Mapping[str, Tensor]) -> int:
    """Rows of the text tower's token embedding."""
    return int(text_tower(state)["token_embedding.weight"].shape[0])


def text_tower(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The text-tower entries of an open_clip state dict, prefix removed, others dropped."""
    prefix = _text_prefix(state)
    out = {}
    for key, value in state.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix):]
        if name.startswith("visual.") or name in _IGNORED_TOP:
            continue
        out[name] = value
    return out


def open_clip_text_config(
    state: Mapping[str, Tensor],
    *,
    hidden_act: str,
    num_heads: int | None = None,
    eos_token_id: int | None = None,
    bos_token_id: int | None = None,
) -> Any:
    """A ``CLIPTextConfig`` for the text tower in ``state`` (sizes read off the tensors).

    Parameters
    ----------
    hidden_act : str
        ``"quick_gelu"`` for OpenAI weights and ``-quickgelu`` open_clip models, ``"gelu"``
        otherwise (see :func:`open_clip_activation`); checkpoints do not record it.
    num_heads : int, optional
        Attention heads; not stored in checkpoints. Default ``width // 64`` as in OpenAI's CLIP
        (8 for ViT-B-32).
    eos_token_id, bos_token_id : int, optional
        Default: the last two ids of the vocabulary, as in OpenAI's (49407, 49406).
    """
    if hidden_act not in ACTIVATIONS:
        raise AudiosepError(f"hidden_act must be one of {', '.join(ACTIVATIONS)}, got {hidden_act!r}")
    tower = text_tower(state)
    vocab, width = tower["token_embedding.weight"].shape
    context = tower["positional_embedding"].shape[0]
    layers = 1 + max(int(m.group(1)) for k in tower if (m := _BLOCK.fullmatch(k)))
    proj = tower["text_projection"]
    heads = num_heads if num_heads is not None else max(1, width // 64)
    if width % heads:
        raise ValueError(f"width {width} is not divisible by num_heads={heads}; pass the right num_heads")
    eos = eos_token_id if eos_token_id is not None else vocab - 1
    return CLIPTextConfig(
        vocab_size=int(vocab),
        hidden_size=int(width),
        intermediate_size=int(tower["transformer.resblocks.0.mlp.c_fc.weight"].shape[0]),
        projection_dim=int(proj.shape[1]),
        num_hidden_layers=layers,
        num_attention_heads=heads,
        max_position_embeddings=int(context),
        hidden_act=hidden_act,
        layer_norm_eps=1e-5,
        eos_token_id=int(eos),
        bos_token_id=int(bos_token_id if bos_token_id is not None else vocab - 2),
        pad_token_id=int(eos),
    )


def convert_open_clip_text(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Map an open_clip state dict's text tower to ``CLIPTextModelWithProjection`` keys.

    Raises
    ------
    KeyError
        If the tower holds entries the transformers CLIP text model has no place for
        (layer scale, a projection bias, a class token...), naming them.
    """
    out: dict[str, Tensor] = {}
    unknown = []
    for name, value in text_tower(state).items():
        value = value.float()
        if name in _TOP_MAP:
            out[_TOP_MAP[name]] = value
        elif name == "text_projection":
            out["text_projection.weight"] = value.t().contiguous()  # x @ P == Linear with weight P^T
        elif name == "text_projection.weight":  # open_clip proj_type='linear' without bias
            out["text_projection.weight"] = value
        elif m := _BLOCK.fullmatch(name):
            i, sub = m.group(1), m.group(2)
            layer = f"text_model.encoder.layers.{i}."
            if sub in ("attn.in_proj_weight", "attn.in_proj_bias"):
                kind = "weight" if sub.endswith("weight") else "bias"
                for proj, part in zip("qkv", value.chunk(3, dim=0)):
                    out[f"{layer}self_attn.{proj}_proj.{kind}"] = part.contiguous()
            elif sub in _BLOCK_MAP:
                out[layer + _BLOCK_MAP[sub]] = value
            else:
                unknown.append(name)
        else:
            unknown.append(name)
    if unknown:
        raise KeyError(
            f"text-tower entries with no transformers CLIP equivalent: {sorted(unknown)[:8]}; "
            "only standard (OpenAI-style) CLIP text towers can be converted"
        )
    return out


def clip_text_model_from_open_clip(
    state: Mapping[str, Tensor] | str | Path,
    *,
    hidden_act: str,
    num_heads: int | None = None,
    eos_token_id: int | None = None,
    bos_token_id: int | None = None,
) -> Any:
    """Build a ``CLIPTextModelWithProjection`` (eval mode) from an open_clip state dict or file
    (``hidden_act``: see :func:`open_clip_text_config`)."""
    if isinstance(state, (str, Path)):
        state = load_open_clip_state_dict(state)
    config = open_clip_text_config(
        state,
        num_heads=num_heads,
        hidden_act=hidden_act,
        eos_token_id=eos_token_id,
        bos_token_id=bos_token_id,
    )
    model = CLIPTextModelWithProjection(config)
    missing, unexpected = model.load_state_dict(convert_open_clip_text(state), strict=False)
    missing = [k for k in missing if not k.endswith("position_ids")]
    if missing or unexpected:
        raise KeyError(
            f"converted CLIP text tower does not fit: missing {missing[:8]}, unexpected {unexpected[:8]}"
        )
    return model.eval()


__all__ = [
    "ACTIVATIONS",
    "clip_text_model_from_open_clip",
    "convert_open_clip_text",
    "load_open_clip_state_dict",
    "open_clip_activation",
    "open_clip_hidden_act",
    "open_clip_vocab_size",
    "open_clip_text_config",
    "text_tower",
]
