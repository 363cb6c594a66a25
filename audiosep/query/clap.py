"""The CLAP query encoder (``kind = "clap"``): LAION-CLAP HTSAT-base + RoBERTa-base, 512-d.

The network is ``transformers.ClapModel``; its weights come from one of

* ``checkpoint``: the released LAION-CLAP file ``music_speech_audioset_epoch_15_esc_89.98.pt`` or
  an AudioSep Lightning ``.ckpt`` (``query_encoder.model.*``), converted on load by
  :mod:`audiosep.query.clap_convert` (read with :func:`audiosep.weight_files.load_torch_file`);
* ``pretrained``: a transformers-format folder (what :meth:`ClapEncoder.save_pretrained` writes)
  or a Hugging Face repo id.

Text queries are tokenised with the RoBERTa byte-level BPE (``tokenizer``: a folder holding
``vocab.json`` + ``merges.txt`` or ``tokenizer.json``, or a repo id such as ``"roberta-base"``),
truncated at 512 tokens like the reference, but padded only to the longest query of the batch:
with the attention mask the embedding is the same as with the reference's padding to 512.

Audio queries go through :mod:`audiosep.query.clap_features` (10 s window, repeat-padding,
log-mel) and the HTSAT tower.
"""
from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor
from transformers import ClapConfig, ClapModel, RobertaTokenizer

from ..errors import check_keys
from .base import QueryEncoder
from .clap_convert import (
    DEFAULT_CLAP_CONFIG,
    convert_laion_clap_state_dict,
    laion_state_from_checkpoint,
    load_clap_weights,
)
from .clap_features import ClapFeatureConfig, ClapLogMel, fit_clip
from .tokenizers import load_tokenizer, quiet_transformers

AUDIO_BATCH = 8  # audio examples per HTSAT forward pass (bounds peak memory)


def _skip_weight_init() -> Any:
    """transformers' context that skips random initialisation (weights are loaded right after)."""
    try:
        from transformers.initialization import no_init_weights  # transformers >= 5
    except ImportError:
        try:
            from transformers.modeling_utils import no_init_weights  # transformers 4.x
        except ImportError:
            return contextlib.nullcontext()
    return no_init_weights()


def build_clap_model(model_config: Mapping[str, Any] | None = None, *, initialise: bool = True) -> "torch.nn.Module":
    """A ``transformers.ClapModel`` (default: HTSAT-base + RoBERTa-base).

    With ``initialise=False`` the weights are left uninitialised (about 10x faster to build);
    only use it when every weight is loaded afterwards.
    """
    config = ClapConfig(**dict(model_config or DEFAULT_CLAP_CONFIG))
    with contextlib.nullcontext() if initialise else _skip_weight_init():
        return ClapModel(config)


def load_clap_model(path: str | os.PathLike, model_config: Mapping[str, Any] | None = None) -> "torch.nn.Module":
    """Read a LAION-CLAP ``.pt`` or an AudioSep ``.ckpt`` into a ``transformers.ClapModel``.

    Parameters
    ----------
    path : path-like
        ``music_speech_audioset_epoch_15_esc_89.98.pt`` (``{"state_dict": {"module.<key>": ...}}``)
        or an AudioSep Lightning checkpoint (``state_dict["query_encoder.model.<key>"]``).
    model_config : mapping, optional
        ``ClapConfig`` arguments; default HTSAT-base + RoBERTa-base (:data:`DEFAULT_CLAP_CONFIG`).

    Returns
    -------
    transformers.ClapModel
        In eval mode.
    """
    from ..weight_files import load_torch_file

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"CLAP checkpoint {path} not found; download music_speech_audioset_epoch_15_esc_89.98.pt "
            "(or an AudioSep .ckpt) and pass its path"
        )
    state = convert_laion_clap_state_dict(laion_state_from_checkpoint(load_torch_file(path)))
    model = build_clap_model(model_config, initialise=False)
    load_clap_weights(model, state, source=str(path))  # refuses to leave any learned weight unset
    return model.eval()


def _resolve(path: str | None, root: str | None) -> str | None:
    if path is None or root is None or os.path.isabs(path):
        return path
    joined = os.path.join(root, path)
    return joined if os.path.exists(joined) else path


class ClapEncoder(QueryEncoder):
    """Frozen LAION-CLAP text and audio encoder, the query network of AudioSep.

    The model and tokenizer are loaded at construction, so a wrong file fails there.

    Parameters
    ----------
    checkpoint : path-like, optional
        LAION-CLAP ``.pt`` or AudioSep ``.ckpt`` holding the CLAP weights.
    pretrained : str, optional
        transformers-format ``ClapModel`` folder or repo id (instead of ``checkpoint``).
    tokenizer : str
        Folder with roberta-base's ``vocab.json`` + ``merges.txt`` (or ``tokenizer.json``),
        or a repo id.
    model_config : mapping, optional
        ``ClapConfig`` arguments for ``checkpoint``; default HTSAT-base + RoBERTa-base.
    features : mapping, optional
        :class:`ClapFeatureConfig` fields for the audio front end; default LAION-CLAP's.
    max_length : int
        Text queries are truncated to this many tokens (512 as in the reference).
    cache_size : int
        Text embeddings kept in memory.
    """

    kind = "clap"
    audio_sample_rate = 48000

    def __init__(
        self,
        checkpoint: str | os.PathLike | None = None,
        *,
        pretrained: str | None = None,
        tokenizer: str | os.PathLike = "roberta-base",
        model_config: Mapping[str, Any] | None = None,
        features: Mapping[str, Any] | None = None,
        max_length: int = 512,
        cache_size: int = 4096,
    ) -> None:
        if (checkpoint is None) == (pretrained is None):
            raise ValueError(
                "give exactly one CLAP weight source: checkpoint= (a LAION-CLAP .pt or an AudioSep .ckpt) "
                "or pretrained= (a transformers ClapModel folder or repo id)"
            )
        features = ClapFeatureConfig.from_dict(features)
        if checkpoint is not None:
            model = load_clap_model(checkpoint, model_config)
        else:
            with quiet_transformers():
                model = ClapModel.from_pretrained(pretrained)
        audio_cfg = model.config.audio_config
        max_frames = audio_cfg.spec_size * (audio_cfg.spec_size // audio_cfg.num_mel_bins)
        if features.n_mels != audio_cfg.num_mel_bins or features.num_frames > max_frames:
            raise ValueError(
                f"the audio front end makes {features.num_frames} frames x {features.n_mels} mel bands, "
                f"but the HTSAT tower takes at most {max_frames} frames x {audio_cfg.num_mel_bins} bands; "
                "make 'features' match the model (the defaults fit HTSAT-base)"
            )
        super().__init__(int(model.config.projection_dim), cache_size=cache_size)
        self.checkpoint = None if checkpoint is None else str(checkpoint)
        self.pretrained = pretrained
        self.tokenizer_source = str(tokenizer)
        self.model_config = None if model_config is None else json.loads(json.dumps(dict(model_config)))
        self.features = features
        self.audio_sample_rate = features.sample_rate
        self.max_length = int(max_length)
        self.model = model
        self.front_end = ClapLogMel(features)
        self.tokenizer = load_tokenizer(
            RobertaTokenizer, tokenizer, int(model.config.text_config.vocab_size), "vocab.json + merges.txt"
        )
        self.freeze()

    # -- QueryEncoder -----------------------------------------------------------------------
    def _embed_text(self, texts: list[str]) -> Tensor:
        tokens = self.tokenizer(
            texts, padding="longest", truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        return self.text_embeddings(tokens["input_ids"], tokens["attention_mask"])

    def _embed_audio(self, audio: Tensor) -> Tensor:
        windows = fit_clip(audio, self.features.clip_samples)  # [N, clip_samples]
        out = [self.audio_embeddings(self.front_end(chunk)) for chunk in windows.split(AUDIO_BATCH)]
        return torch.cat(out)

    # -- raw model calls (unnormalised embeddings) ------------------------------------------
    def text_embeddings(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Projected RoBERTa pooler output, Tensor[N, D], of token ids Tensor[N, S] (not normalised)."""
        pooled = self.model.text_model(input_ids=input_ids, attention_mask=attention_mask).pooler_output
        return self.model.text_projection(pooled)

    def audio_embeddings(self, log_mel: Tensor) -> Tensor:
        """Projected HTSAT embedding, Tensor[N, D], of log-mel features Tensor[N, 1, T, n_mels]."""
        pooled = self.model.audio_model(input_features=log_mel).pooler_output
        return self.model.audio_projection(pooled)

    # -- configuration ------------------------------------------------------------------------
    def config_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "checkpoint": self.checkpoint,
            "pretrained": self.pretrained,
            "tokenizer": self.tokenizer_source,
            "model_config": self.model_config,
            "features": self.features.to_dict(),
            "max_length": self.max_length,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], root: str | None = None) -> "ClapEncoder":
        config = {k: v for k, v in config.items() if k != "kind"}
        for key in ("checkpoint", "pretrained", "tokenizer"):
            if key in config:
                config[key] = _resolve(config[key], root)
        known = {"checkpoint", "pretrained", "tokenizer", "model_config", "features", "max_length", "cache_size"}
        check_keys(config, known, "query_encoder")
        checkpoint = config.pop("checkpoint", None)
        return cls(checkpoint, **config)

    def save_pretrained(self, directory: "os.PathLike | str") -> dict[str, Any]:
        """Write the model (``config.json`` + ``model.safetensors``) and tokenizer files to ``directory``.

        Returns
        -------
        dict
            The config that rebuilds this encoder from ``directory`` (paths relative to it).
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        return {
            "kind": self.kind,
            "checkpoint": None,
            "pretrained": ".",
            "tokenizer": ".",
            "model_config": None,
            "features": self.features.to_dict(),
            "max_length": self.max_length,
        }

