"""CLIP text encoder (OpenAI CLIP ViT-B-32 text tower): the paper's alternative QueryNet.

The model runs as ``transformers.CLIPTextModelWithProjection``: token + position embeddings,
causal pre-LayerNorm transformer, final LayerNorm, the end-of-text token's state projected to the
joint embedding space (``text_embeds``, 512-d for ViT-B-32). Weights come from an open_clip
state dict (converted by :mod:`audiosep.query.clip_convert`), a transformers CLIP folder, or a
Hugging Face hub id. The BPE tokenizer comes from a folder (``vocab.json`` + ``merges.txt``, or
``tokenizer.json``) or a hub id.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import Tensor

from .base import QueryEncoder

DEFAULT_CHECKPOINT = "openai/clip-vit-base-patch32"
_OPTIONS = ("checkpoint", "tokenizer", "num_heads", "hidden_act", "cache_size")


def _is_state_dict_file(source: str | Path) -> bool:
    return Path(source).is_file()


class ClipTextEncoder(QueryEncoder):
    """CLIP text embeddings as text queries.

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
    hidden_act : str
        MLP activation of an open_clip checkpoint: ``"quick_gelu"`` (OpenAI weights) or ``"gelu"``.
    cache_size : int
        Number of text embeddings kept in the LRU cache.
    """

    kind = "clip"
    embedding_dim = 512
    audio_sample_rate = None

    def __init__(
        self,
        checkpoint: str | Path = DEFAULT_CHECKPOINT,
        tokenizer: str | Path | None = None,
        num_heads: int | None = None,
        hidden_act: str = "quick_gelu",
        cache_size: int = 4096,
    ) -> None:
        super().__init__(cache_size=cache_size)
        self.checkpoint = str(checkpoint)
        self.tokenizer_source = str(tokenizer) if tokenizer is not None else None
        self.num_heads = num_heads
        self.hidden_act = hidden_act
        self.tokenizer = None
        self.model = None

    # -- QueryEncoder ---------------------------------------------------------------------
    def _build(self) -> None:
        from transformers import CLIPTextModelWithProjection, CLIPTokenizer

        from .clip_convert import clip_text_model_from_open_clip, load_open_clip_state_dict

        from_file = _is_state_dict_file(self.checkpoint)
        tok_source = self.tokenizer_source
        if tok_source is None:
            if from_file:
                raise ValueError(
                    f"{self.checkpoint} is a state dict without a tokenizer; pass tokenizer= a folder with "
                    "CLIP's vocab.json and merges.txt (or a hub id such as 'openai/clip-vit-base-patch32')"
                )
            tok_source = self.checkpoint
        self.tokenizer = CLIPTokenizer.from_pretrained(tok_source, local_files_only=Path(tok_source).is_dir())
        if from_file:
            self.model = clip_text_model_from_open_clip(
                load_open_clip_state_dict(self.checkpoint),
                num_heads=self.num_heads,
                hidden_act=self.hidden_act,
                eos_token_id=self.tokenizer.eos_token_id,
                bos_token_id=self.tokenizer.bos_token_id,
            )
        else:
            self.model = CLIPTextModelWithProjection.from_pretrained(
                self.checkpoint, local_files_only=Path(self.checkpoint).is_dir()
            ).float()
        config = self.model.config
        if len(self.tokenizer) > config.vocab_size:
            raise ValueError(
                f"the tokenizer at {tok_source} has {len(self.tokenizer)} tokens but the CLIP model only "
                f"{config.vocab_size}; pass the tokenizer that belongs to {self.checkpoint}"
            )
        self.embedding_dim = int(config.projection_dim)
        self._context = int(config.max_position_embeddings)

    def _embed_text(self, texts: list[str]) -> Tensor:
        # Padded to the longest query only: with the causal mask, tokens after the end-of-text
        # token cannot change its state, so this equals open_clip's fixed 77-token padding.
        ids = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self._context, return_tensors="pt"
        )
        return self.model(input_ids=ids["input_ids"].to(self.device)).text_embeds  # [N, E]

    def config_dict(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"kind": self.kind, "checkpoint": self.checkpoint}
        if self.tokenizer_source is not None:
            cfg["tokenizer"] = self.tokenizer_source
        if self.num_heads is not None:
            cfg["num_heads"] = self.num_heads
        if self.hidden_act != "quick_gelu":
            cfg["hidden_act"] = self.hidden_act
        return cfg

    @classmethod
    def from_config(cls, config: dict[str, Any], root: str | None = None) -> "ClipTextEncoder":
        config = {k: v for k, v in config.items() if k != "kind"}
        unknown = set(config) - set(_OPTIONS)
        if unknown:
            raise ValueError(
                f"unknown 'clip' query-encoder options {sorted(unknown)}; allowed: {', '.join(_OPTIONS)}"
            )
        for key in ("checkpoint", "tokenizer"):
            value = config.get(key)
            if value is not None and root is not None and not Path(value).is_absolute():
                candidate = Path(root) / value
                if candidate.exists():  # otherwise a hub id
                    config[key] = str(candidate)
        return cls(**config)

    def save_pretrained(self, directory: str | Path) -> dict[str, Any]:
        """Write the text model (transformers format, safetensors) and tokenizer files.

        Returns
        -------
        dict
            ``{"kind": "clip", "checkpoint": ".", "tokenizer": "."}``.
        """
        self.ensure_built()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        return {"kind": self.kind, "checkpoint": ".", "tokenizer": "."}


__all__ = ["ClipTextEncoder", "DEFAULT_CHECKPOINT"]
