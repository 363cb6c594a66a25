"""Loading PyTorch pickles without unrestricted unpickling.

Lightning checkpoints carry training state (hyper-parameters, callback state, loop state) that
can name arbitrary Python classes. ``torch.load(weights_only=True)`` refuses such files outright;
plain ``torch.load`` would import and call whatever they name. :func:`load_torch_file` first tries
the strict loader and, if the file names classes outside PyTorch's tensor allow-list, reads it
again with an unpickler that replaces every such class by an inert placeholder: no code from the
file runs, and the tensors come back intact.
"""
from __future__ import annotations

import pickle
import types
from pathlib import Path
from typing import Any

import torch


class Placeholder:
    """Stands in for an object of a class the loader refused to import."""

    qualname = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:  # dict-like BUILD opcodes
        pass

    def append(self, item: Any) -> None:  # list-like APPENDS opcodes
        pass

    def extend(self, items: Any) -> None:
        pass

    def __repr__(self) -> str:
        return f"<refused {self.qualname}>"


def _allowed() -> dict[str, Any]:
    from torch import _weights_only_unpickler as wou

    allowed = dict(wou._get_allowed_globals())
    allowed.update(wou._get_user_allowed_globals())
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    _allowed: dict[str, Any] = {}

    def find_class(self, module: str, name: str) -> Any:
        obj = self._allowed.get(f"{module}.{name}")
        if obj is not None:
            return obj
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        return type(name, (Placeholder,), {"qualname": f"{module}.{name}"})


def _restricted_pickle_module() -> types.ModuleType:
    module = types.ModuleType("audiosep_restricted_pickle")
    _RestrictedUnpickler._allowed = _allowed()
    module.Unpickler = _RestrictedUnpickler
    module.load = pickle.load  # unused by torch.load for zip files, present for completeness
    module.__name__ = "audiosep_restricted_pickle"
    return module


def load_torch_file(path: str | Path) -> Any:
    """Load a ``torch.save`` file (``.ckpt``, ``.pt``, ``.bin``) onto the CPU, safely.

    Objects of classes outside PyTorch's weights-only allow-list become :class:`Placeholder`
    instances; tensors, dicts, lists and plain values load as usual.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        pass
    return torch.load(
        path, map_location="cpu", weights_only=False, pickle_module=_restricted_pickle_module()
    )
