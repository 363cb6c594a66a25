"""Reading weight files without running code from them: torch pickles and safetensors.

Every file audiosep reads tensors from goes through this module. :func:`load_torch_file` reads
every pickle layout ``torch.save`` has written -- the zip archive (the default since torch 1.6),
the legacy stream (``_use_new_zipfile_serialization=False``) and a bare ``pickle.dumps`` -- with
its own unpickler: a global named in the file resolves only to an allow-listed value (containers,
dtypes, devices and our own tensor rebuilders); any other name becomes an inert
:class:`Placeholder` class, so the training state of a Lightning checkpoint (hyper-parameters,
callbacks) is skipped while its tensors load, and nothing the file names is imported or called.
:func:`read_safetensors` reads a ``.safetensors`` file. Both raise :class:`WeightFileError` (one
line naming the file and what to do) for a file they cannot read.
"""
from __future__ import annotations

import collections
import io
import os
import pickle
import sys
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, Callable

import torch
from torch import Tensor

from .errors import AudiosepError

__all__ = ["load_torch_file", "read_safetensors", "Placeholder", "WeightFileError", "TorchScriptArchiveError"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # first pickle of a legacy torch.save stream
_LEGACY_PROTOCOL = 1001
_CHUNK = 1 << 24  # bytes copied per read when filling a storage
_RESAVE = "re-save it with torch.save(model.state_dict(), path) or convert it to safetensors"


class WeightFileError(AudiosepError, ValueError):
    """A weights file cannot be read (corrupt, truncated, empty, or not holding tensors)."""


class TorchScriptArchiveError(WeightFileError):
    """The file is a TorchScript archive (``torch.jit.save``), which holds code, not a state dict."""


class _RefusedObject(pickle.UnpicklingError):
    """The file is one pickled object of a class outside the allow-list (an exploit, an nn.Module)."""


class Placeholder:
    """Stands in for an object of a class the loader refused to import; it holds nothing."""

    qualname = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:  # dict-like SETITEMS opcodes
        pass

    def append(self, item: Any) -> None:  # list-like APPENDS opcodes
        pass

    def extend(self, items: Any) -> None:
        pass

    def __repr__(self) -> str:
        return f"<refused {self.qualname}>"


# -- storages and tensors -------------------------------------------------------------------------
class _Sealed:
    """A value the loader creates; a file's BUILD opcode cannot change it."""

    __slots__ = ()

    def __setstate__(self, state: Any) -> None:
        raise pickle.UnpicklingError("it tries to change a storage")


class _StorageType(_Sealed):
    """What a ``torch.<Name>Storage`` global in the file resolves to: only its dtype."""

    __slots__ = ("dtype",)

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype


class _Storage(_Sealed):
    """A storage read from the file: raw bytes (``Tensor[nbytes]`` of uint8) and their dtype."""

    __slots__ = ("bytes", "dtype")

    def __init__(self, nbytes: int, dtype: torch.dtype) -> None:
        self.bytes = torch.empty(nbytes, dtype=torch.uint8)  # filled from the file before use
        self.dtype = dtype


_STORAGE_DTYPES = {
    "DoubleStorage": torch.float64, "FloatStorage": torch.float32, "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16, "LongStorage": torch.int64, "IntStorage": torch.int32,
    "ShortStorage": torch.int16, "CharStorage": torch.int8, "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool, "ComplexDoubleStorage": torch.complex128,
    "ComplexFloatStorage": torch.complex64, "QUInt8Storage": torch.quint8, "QInt8Storage": torch.qint8,
    "QInt32Storage": torch.qint32, "QUInt4x2Storage": torch.quint4x2, "QUInt2x4Storage": torch.quint2x4,
    "UntypedStorage": torch.uint8,
}


def _ints(value: Any, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list, torch.Size)) or not all(type(v) is int for v in value):
        raise pickle.UnpicklingError(f"tensor {what} is not a tuple of integers")
    return tuple(value)


def _tensor(storage: Any, offset: Any, size: Any, stride: Any, dtype: torch.dtype | None = None) -> Tensor:
    """A tensor viewing ``storage``, after checking that the view stays inside it."""
    if not isinstance(storage, _Storage):
        raise pickle.UnpicklingError(f"tensor storage is a {type(storage).__name__}, not a storage")
    dtype = storage.dtype if dtype is None else dtype
    if not isinstance(dtype, torch.dtype):
        raise pickle.UnpicklingError("tensor dtype is not a torch dtype")
    size, stride = _ints(size, "size"), _ints(stride, "stride")
    if type(offset) is not int or offset < 0 or len(size) != len(stride) or min(size + stride, default=0) < 0:
        raise pickle.UnpicklingError("tensor offset, size or stride is invalid")
    element = dtype.itemsize
    end = 0 if 0 in size else offset + 1 + sum((n - 1) * s for n, s in zip(size, stride))
    if end * element > storage.bytes.numel():
        raise pickle.UnpicklingError("a tensor reaches past the end of its storage")
    return torch.empty(0, dtype=dtype).set_(storage.bytes.untyped_storage(), offset, size, stride)


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False,
                    backward_hooks: Any = None, metadata: Any = None) -> Tensor:
    if metadata:
        raise pickle.UnpicklingError("tensors with conjugate or negative bits are not supported")
    return _tensor(storage, offset, size, stride).requires_grad_(bool(requires_grad))


def _rebuild_tensor_v3(storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any,
                       backward_hooks: Any, dtype: Any, metadata: Any = None) -> Tensor:
    if metadata:
        raise pickle.UnpicklingError("tensors with conjugate or negative bits are not supported")
    return _tensor(storage, offset, size, stride, dtype).requires_grad_(bool(requires_grad))


def _rebuild_parameter(data: Any, requires_grad: Any, backward_hooks: Any, state: Any = None) -> Tensor:
    if not isinstance(data, Tensor):
        raise pickle.UnpicklingError("a parameter's data is not a tensor")
    return torch.nn.Parameter(data, requires_grad=bool(requires_grad))


def _encode(text: Any, encoding: str = "latin1") -> bytes:
    """``_codecs.encode``, as protocol-2 pickles use it for ``bytes``: latin-1 only."""
    if not isinstance(text, str) or encoding.replace("-", "").lower() not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError("only latin-1 encoded bytes are allowed")
    return text.encode("latin1")


def _storage_from_bytes(data: Any) -> Any:
    """``torch.storage._load_from_bytes``: a storage pickled on its own inside a bare pickle."""
    if not isinstance(data, (bytes, bytearray)):
        raise pickle.UnpicklingError("a pickled storage is not bytes")
    return _load_stream(io.BytesIO(bytes(data)), strict=True)


_ALLOWED: dict[str, Any] = {
    "collections.OrderedDict": collections.OrderedDict,
    "builtins.set": set, "builtins.frozenset": frozenset, "builtins.complex": complex,
    "builtins.slice": slice,
    "__builtin__.set": set, "__builtin__.frozenset": frozenset, "__builtin__.complex": complex,
    "_codecs.encode": _encode,
    "torch.Size": torch.Size,
    "torch.device": torch.device,
    "torch._utils._rebuild_tensor": _rebuild_tensor,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor,
    "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter,
    "torch.storage._load_from_bytes": _storage_from_bytes,
}


class _Unpickler(pickle.Unpickler):
    """Resolves globals only from :data:`_ALLOWED`, dtypes and storage types; others become
    :class:`Placeholder` subclasses (or, with ``strict``, an error)."""

    def __init__(self, file: BinaryIO, persistent: Callable[[Any], Any] | None, strict: bool) -> None:
        super().__init__(file, encoding="utf-8")
        self._persistent = persistent
        self._strict = strict

    def find_class(self, module: str, name: str) -> Any:
        qualname = f"{module}.{name}"
        if qualname in _ALLOWED:
            return _ALLOWED[qualname]
        if module in ("torch", "torch.cuda", "torch.storage") and name in _STORAGE_DTYPES:
            return _StorageType(_STORAGE_DTYPES[name])
        if module == "torch" and isinstance(vars(torch).get(name), torch.dtype):  # no lazy imports
            return vars(torch)[name]
        if self._strict:
            raise _RefusedObject(f"it names {qualname}, outside the allow-list of tensors, containers and numbers")
        return type(name, (Placeholder,), {"qualname": qualname})

    def persistent_load(self, pid: Any) -> Any:
        if self._persistent is None:
            raise pickle.UnpicklingError("it refers to storages outside the pickle")
        return self._persistent(pid)


def _storage_id(pid: Any) -> tuple[_StorageType, str, int, Any]:
    """``(type, key, numel, view)`` of a ``("storage", type, key, location, numel[, view])`` id."""
    if not isinstance(pid, tuple) or len(pid) not in (5, 6):
        raise pickle.UnpicklingError("malformed storage reference")
    kind, storage_type, key, _location, numel = pid[:5]
    kind = kind.decode("ascii") if isinstance(kind, bytes) else kind
    key = key.decode("ascii") if isinstance(key, bytes) else key
    if kind != "storage" or not isinstance(storage_type, _StorageType) or not isinstance(key, str) \
            or type(numel) is not int or numel < 0:
        raise pickle.UnpicklingError("malformed storage reference")
    return storage_type, key, numel, pid[5] if len(pid) == 6 else None


def _nbytes(dtype: torch.dtype, numel: int) -> int:
    return numel * dtype.itemsize


def _fill(src: BinaryIO, buf: Tensor) -> None:
    """Read ``buf.numel()`` bytes from ``src`` into the uint8 tensor ``buf``."""
    view = memoryview(buf.numpy()).cast("B")
    pos = 0
    while pos < len(view):
        n = src.readinto(view[pos:pos + _CHUNK])
        if not n:
            raise EOFError("the file ends inside a tensor's data")
        pos += n


def _to_native(storage: _Storage, byteorder: str) -> None:
    """Swap the bytes of each element in place if the file's byte order is not this machine's."""
    element = storage.dtype.itemsize // (2 if storage.dtype.is_complex else 1)
    if byteorder != sys.byteorder and element > 1 and storage.bytes.numel():
        storage.bytes.copy_(storage.bytes.view(-1, element).flip(1).reshape(-1))


# -- the three layouts ----------------------------------------------------------------------------
class _Storages(dict):
    """The storages read so far, by key; their total size may not exceed the file's."""

    def __init__(self, file_size: int) -> None:
        super().__init__()
        self.left = file_size

    def new(self, key: str, storage_type: _StorageType, numel: int) -> _Storage:
        nbytes = _nbytes(storage_type.dtype, numel)
        if nbytes > self.left:
            raise pickle.UnpicklingError(f"storage {key} is larger than the file")
        self.left -= nbytes
        self[key] = _Storage(nbytes, storage_type.dtype)
        return self[key]


def _read_record(f: BinaryIO, archive: zipfile.ZipFile, info: zipfile.ZipInfo, buf: Tensor) -> None:
    """Fill ``buf`` with one record; an uncompressed one (as torch writes) straight from ``f``."""
    if info.compress_type != zipfile.ZIP_STORED:
        with archive.open(info) as src:
            _fill(src, buf)
        return
    f.seek(info.header_offset)
    header = f.read(30)  # the local header: its name and extra field may differ from the directory's
    if len(header) < 30 or header[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"bad local header for {info.filename}")
    start = info.header_offset + 30 + int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little")
    f.seek(start)
    _fill(f, buf)


def _load_zip(f: BinaryIO, archive: zipfile.ZipFile, file_size: int, strict: bool) -> Any:
    names = set(archive.namelist())
    pickles = sorted(n for n in names if n.count("/") == 1 and n.endswith("/data.pkl"))
    if not pickles:
        raise pickle.UnpicklingError("the zip archive holds no data.pkl, so torch.save did not write it")
    prefix = pickles[0][: -len("data.pkl")]
    if prefix + "constants.pkl" in names or any(n.startswith(prefix + "code/") for n in names):
        raise TorchScriptArchiveError("is a TorchScript archive (torch.jit.save), which holds code")
    byteorder = "little"
    if prefix + "byteorder" in names:
        byteorder = archive.read(prefix + "byteorder").decode("ascii").strip()
    storages = _Storages(file_size)

    def persistent(pid: Any) -> _Storage:
        storage_type, key, numel, _ = _storage_id(pid)
        if key not in storages:
            record = f"{prefix}data/{key}"
            if record not in names or archive.getinfo(record).file_size != _nbytes(storage_type.dtype, numel):
                raise pickle.UnpicklingError(f"storage {key} is missing or has the wrong size")
            storage = storages.new(key, storage_type, numel)
            _read_record(f, archive, archive.getinfo(record), storage.bytes)
            _to_native(storage, byteorder)
        return storages[key]

    with archive.open(pickles[0]) as data:
        return _unpickle(data, persistent, strict)


def _load_legacy(f: BinaryIO, file_size: int, strict: bool) -> Any:
    """The stream after the magic number: version, system info, the object, storage keys, data."""
    if _Unpickler(f, None, True).load() != _LEGACY_PROTOCOL:
        raise pickle.UnpicklingError("unknown legacy protocol version")
    _Unpickler(f, None, True).load()  # system info: {"little_endian": ..., "type_sizes": ...}
    storages = _Storages(file_size)

    def persistent(pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) > 1 and pid[0] in ("module", b"module"):
            return pid[1]  # a module's class (already a placeholder) and its source: nothing to load
        storage_type, key, numel, view = _storage_id(pid)
        if view is not None:
            raise pickle.UnpicklingError("storage views (torch < 0.4) are not supported")
        return storages[key] if key in storages else storages.new(key, storage_type, numel)

    result = _unpickle(f, persistent, strict)
    keys = _Unpickler(f, None, True).load()
    if not isinstance(keys, list) or set(keys) != set(storages):
        raise pickle.UnpicklingError("the storage list does not match the tensors")
    for key in keys:  # each: int64 element count (little-endian), then the raw little-endian data
        storage, count = storages[key], f.read(8)
        if len(count) < 8:
            raise EOFError("the file ends before a tensor's data")
        if _nbytes(storage.dtype, int.from_bytes(count, "little")) != storage.bytes.numel():
            raise pickle.UnpicklingError(f"storage {key} has the wrong size")
        _fill(f, storage.bytes)
        _to_native(storage, "little")
    return result


def _unpickle(f: BinaryIO, persistent: Callable[[Any], Any] | None, strict: bool) -> Any:
    """One pickle from ``f``; refuses a pickle that is a single object of a refused class."""
    result = _Unpickler(f, persistent, strict).load()
    if isinstance(result, Placeholder):
        raise _RefusedObject(f"it holds a pickled {result.qualname} object instead of tensors")
    return result


def _load_stream(f: BinaryIO, strict: bool) -> Any:
    """Any of the three layouts, told apart by their first bytes."""
    head = f.read(512)
    file_size = f.seek(0, os.SEEK_END)
    f.seek(0)
    if not head:
        raise pickle.UnpicklingError("the file is empty")
    if head.startswith(b"PK\x03\x04"):
        with zipfile.ZipFile(f) as archive:
            return _load_zip(f, archive, file_size, strict)
    if head[257:262] == b"ustar":
        raise pickle.UnpicklingError("it is a tar archive from torch < 0.4, which is not supported")
    first = _unpickle(f, None, strict)
    if type(first) is int and first == _LEGACY_MAGIC:
        return _load_legacy(f, file_size, strict)
    return first  # a bare pickle.dumps of a state dict


def load_torch_file(path: str | os.PathLike, *, strict: bool = False) -> Any:
    """Read a ``torch.save`` or ``pickle.dumps`` file (``.ckpt``, ``.pt``, ``.bin``) onto the CPU.

    Parameters
    ----------
    path : path-like
    strict : bool
        Refuse a file that names any global outside the allow-list, instead of loading it with
        :class:`Placeholder` objects in place of those (use it for files only we write).

    Returns
    -------
    The unpickled object: tensors (on the CPU), dicts, lists and plain values; objects of
    refused classes are :class:`Placeholder` instances holding nothing.

    Raises
    ------
    WeightFileError
        If the file is empty, truncated, corrupt, a TorchScript archive, or holds a single object
        of a refused class (e.g. a pickled exploit or a whole ``nn.Module``).
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            return _load_stream(f, strict)
    except TorchScriptArchiveError as err:
        raise TorchScriptArchiveError(
            f"{path} {err}, not a state dict; save the weights with torch.save(model.state_dict(), path)"
        ) from None
    except _RefusedObject as err:
        raise WeightFileError(f"refused to load {path}: {err} (loading it could run code); {_RESAVE}") from None
    except (OSError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, TypeError,
            AttributeError, IndexError, KeyError, RuntimeError, OverflowError, MemoryError, RecursionError) as err:
        if isinstance(err, OSError) and not isinstance(err, zipfile.BadZipFile) and err.filename:
            raise  # not found, permission denied: the OS message names the file
        reason = str(err).strip() or type(err).__name__
        if isinstance(err, (EOFError, zipfile.BadZipFile)) or "truncated" in reason:
            reason = f"{reason}: the file is truncated or corrupt"
        raise WeightFileError(f"cannot read {path} as a PyTorch weights file ({reason}); {_RESAVE}") from None


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, Tensor], dict[str, str]]:
    """The tensors (on the CPU) and metadata of a ``.safetensors`` file.

    Raises
    ------
    WeightFileError
        If the file is empty, truncated or corrupt.
    """
    from safetensors import safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            return {k: f.get_tensor(k) for k in f.keys()}, meta
    except FileNotFoundError:
        raise
    except Exception as err:  # safetensors raises its own SafetensorError (not exported) or OSError
        if isinstance(err, OSError) and err.filename:
            raise
        if path.is_file() and path.stat().st_size == 0:
            reason = "the file is empty"
        else:
            reason = str(err).strip() or type(err).__name__
        raise WeightFileError(
            f"cannot read {path} as safetensors ({reason}); the file is truncated or corrupt: "
            "download or save it again"
        ) from None
