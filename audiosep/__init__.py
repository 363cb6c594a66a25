"""audiosep: separate the sound you describe from a recording.

>>> from audiosep import separate
>>> result = separate("mixture.wav", "a dog barking")        # doctest: +SKIP

Heavy modules (the network, query encoders, audio I/O) are imported on first use, so
``import audiosep`` is cheap.
"""
from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "separate": "audiosep.separation:separate",
    "Separation": "audiosep.separation:Separation",
    "AudioSep": "audiosep.model:AudioSep",
    "load_separation_net": "audiosep.checkpoint:load_separation_net",
    "save_separation_net": "audiosep.checkpoint:save_separation_net",
    "ResUNet": "audiosep.nn.resunet:ResUNet",
    "ResUNetConfig": "audiosep.nn.config:ResUNetConfig",
    "build_query_encoder": "audiosep.query:build_query_encoder",
    "list_models": "audiosep.pretrained:list_models",
    "load_bundle": "audiosep.model:load_bundle",
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attr = _LAZY[name].split(":")
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'audiosep' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
