"""Query encoders: text (and audio examples) -> conditioning embeddings."""
from __future__ import annotations

import importlib
from typing import Any, Mapping

from .base import QueryEncoder

# kind -> "module:Class", imported only when used: the encoders import transformers, which takes
# seconds, and `import audiosep` must not.
ENCODERS = {
    "clap": "audiosep.query.clap:ClapEncoder",
    "clip": "audiosep.query.clip:ClipTextEncoder",
    "minilm": "audiosep.query.minilm:MiniLMEncoder",
    "hashed": "audiosep.query.hashed:HashedTextEncoder",  # model-free, for tests and smoke runs
}


def encoder_class(kind: str) -> type[QueryEncoder]:
    if kind not in ENCODERS:
        raise ValueError(f"unknown query encoder {kind!r}; known: {', '.join(sorted(ENCODERS))}")
    module, cls = ENCODERS[kind].split(":")
    return getattr(importlib.import_module(module), cls)


def build_query_encoder(config: Mapping[str, Any], root: str | None = None) -> QueryEncoder:
    """Build the encoder a ``config_dict()`` describes (its model loaded, frozen, in eval mode).

    ``root`` is the folder relative paths in the config refer to (a saved model's folder).
    """
    config = dict(config)
    kind = config.pop("kind", None)
    return encoder_class(kind).from_config(config, root=root)


__all__ = ["QueryEncoder", "build_query_encoder", "encoder_class", "ENCODERS"]
