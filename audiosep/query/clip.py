"""CLIP text encoder (OpenAI CLIP ViT-B-32 text tower): the paper's alternative QueryNet.

The model runs as ``transformers.CLIPTextModelWithProjection``: token + position embeddings,
causal pre-LayerNorm transformer, final LayerNorm, the end-of-text token's state projected to the
joint embedding space (``text_embeds``, 512-d for ViT-B-32). Weights come from an open_clip
state dict (converted by :mod:`audiosep.query.clip_convert`), a transformers CLIP folder, or a
Hugging Face hub id. The BPE tokenizer comes from a folder (``vocab.json`` + ``merges.txt``, or
``tokenizer.json``) or a hub id. Text is cleaned as open_clip cleans it
(:func:`audiosep.query.tokenizers.clean_clip_text`) before tokenisation.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor
from transformers import CLIPTextModelWithProjection, CLIPTokenizer

from ..errors import check_keys
from .base import QueryEncoder
from .clip_convert import (
    clip_text_model_from_open_clip,
    load_open_clip_state_dict,
    open_clip_hidden_act,
    open_clip_vocab_size,
)
from .tokenizers import clean_clip_text, load_tokenizer, quiet_transformers

DEFAULT_CHECKPOINT = "openai/clip-vit-base-patch32"
_OPTIONS = ("checkpoint", "tokenizer", "num_heads", "hidden_act", "cache_size")
_TOKENIZER_FILES = "vocab.json + merges.txt, or tokenizer.json"


class ClipTextEncoder(QueryEncoder):
    """CLIP text embeddings as text queries (the model is loaded at construction).

    Parameters
    ----------
    checkpoint : str or Path
        An open_clip state-dict file (``.pt``/``.bin``/``.safetensors``; vision weights are
        ignored), a transformers CLIP folder (``CLIPModel`` or ``CLIPTextModelWithProjection``),
        or a hub id (needs network). Default: ``openai/clip-vit-base-patch32``.
    tokenizer : str or Path, optional
        Folder or hub id of the CLIP BPE tokenizer. Default: the checkpoint when it is a folder
        or hub id; required for an open_clip state-dict file.
    num_heads : int, optional
        Attention heads of an open_clip checkpoint (not stored in it); default ``width // 64``.
    hidden_act : str, optional
        MLP activation of an open_clip state-dict file, which does not record it:
        ``"quick_gelu"`` (OpenAI weights, open_clip ``-quickgelu`` models) or ``"gelu"`` (e.g.
        LAION ViT-B-32); :func:`audiosep.query.clip_convert.open_clip_activation` gives it from
        an open_clip model name and pretrained tag. Default: read from the
        ``open_clip_config.json`` beside the file; an error when there is none.
    cache_size : int
        Number of text embeddings kept in the LRU cache.
    """

    kind = "clip"
    audio_sample_rate = None

    def __init__(
        self,
        checkpoint: str | Path = DEFAULT_CHECKPOINT,
        tokenizer: str | Path | None = None,
        num_heads: int | None = None,
        hidden_act: str | None = None,
        cache_size: int = 4096,
    ) -> None:
        checkpoint = str(checkpoint)
        from_file = Path(checkpoint).is_file()
        if tokenizer is None and from_file:
            raise ValueError(
                f"{checkpoint} is a state dict without a tokenizer; pass tokenizer= a folder with "
                "CLIP's vocab.json and merges.txt (or a hub id such as 'openai/clip-vit-base-patch32')"
            )
        tok_source = str(tokenizer) if tokenizer is not None else checkpoint
        if from_file:
            state = load_open_clip_state_dict(checkpoint)
            hidden_act = open_clip_hidden_act(checkpoint, hidden_act)
            tok = load_tokenizer(CLIPTokenizer, tok_source, open_clip_vocab_size(state), _TOKENIZER_FILES)
            model = clip_text_model_from_open_clip(  # open_clip pools the highest id, transformers the eos id
                state, num_heads=num_heads, hidden_act=hidden_act,
                eos_token_id=tok.eos_token_id, bos_token_id=tok.bos_token_id,
            )
        else:
            with quiet_transformers():
                model = CLIPTextModelWithProjection.from_pretrained(
                    checkpoint, local_files_only=Path(checkpoint).is_dir()
                ).float()
            tok = load_tokenizer(CLIPTokenizer, tok_source, int(model.config.vocab_size), _TOKENIZER_FILES)
        config = model.config
        super().__init__(int(config.projection_dim), cache_size=cache_size)
        self.checkpoint = checkpoint
        self.tokenizer_source = str(tokenizer) if tokenizer is not None else None
        self.num_heads = num_heads
        self.hidden_act = hidden_act if from_file else None  # a transformers folder records its own
        self.model = model
        self.tokenizer = tok
        self._context = int(config.max_position_embeddings)
        self.freeze()

    # -- QueryEncoder ---------------------------------------------------------------------
    def _embed_text(self, texts: list[str]) -> Tensor:
        # Padded to the longest query only: with the causal mask, tokens after the end-of-text
        # token cannot change its state, so this equals open_clip's fixed 77-token padding.
        ids = self.tokenizer(
            [clean_clip_text(t) for t in texts],
            padding=True, truncation=True, max_length=self._context, return_tensors="pt",
        )
        return self.model(input_ids=ids["input_ids"].to(self.device)).text_embeds  # [N, E]

    def config_dict(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"kind": self.kind, "checkpoint": self.checkpoint}
        if self.tokenizer_source is not None:
            cfg["tokenizer"] = self.tokenizer_source
        if self.num_heads is not None:
            cfg["num_heads"] = self.num_heads
        if self.hidden_act is not None:
            cfg["hidden_act"] = self.hidden_act
        return cfg

    @classmethod
    def from_config(cls, config: dict[str, Any], root: str | None = None) -> "ClipTextEncoder":
        config = {k: v for k, v in config.items() if k != "kind"}
        check_keys(config, _OPTIONS, "query_encoder")
        for key in ("checkpoint", "tokenizer"):
            value = config.get(key)
            if value is not None and root is not None and not Path(value).is_absolute():
                candidate = Path(root) / value
                if candidate.exists():  # otherwise a hub id
                    config[key] = str(candidate)
        return cls(**config)

    def save_pretrained(self, directory: str | Path) -> dict[str, Any]:
        """Write the text model (transformers format, safetensors, its activation in
        ``config.json``) and the tokenizer files.

        Returns
        -------
        dict
            ``{"kind": "clip", "checkpoint": ".", "tokenizer": "."}``.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        return {"kind": self.kind, "checkpoint": ".", "tokenizer": "."}


__all__ = ["ClipTextEncoder", "DEFAULT_CHECKPOINT"]
