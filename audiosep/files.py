"""Writing files safely.

* :func:`atomic_path`: write to a hidden temporary file beside the target
  (``.<name>.<pid>.<random>.part``), then rename it onto the target, so a reader sees the old
  file or the whole new one. A writer killed outright (SIGKILL, power loss) can leave its
  ``.part`` file behind; the next write to the same target removes it.
* :func:`check_writable`: the checks made on an output path before any work is done (empty
  path, a folder that is a file, a name too long for the file system, no permission).
* :func:`removed_on_error`: files a failed or interrupted block created are removed again.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Iterable, Iterator

from .errors import UsageError

#: Suffix of the temporary files :func:`atomic_path` writes.
PART_SUFFIX = ".part"
#: Fallbacks when the file system does not say (Linux and macOS values).
_NAME_MAX, _PATH_MAX = 255, 4096
#: Bytes a temporary name adds to the target's name: ``.`` + ``.<pid>.`` + 8 random + ``.part``.
_PART_OVERHEAD = 1 + 2 + 10 + 8 + len(PART_SUFFIX)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder; on success move it onto ``path``.

    On error the temporary file is removed and ``path`` is left as it was. With
    ``overwrite=False`` an existing ``path`` raises :class:`FileExistsError` before any work.
    Temporary files of earlier writes to ``path`` whose process is gone are removed first.
    """
    path = Path(path)
    if not overwrite and path.exists():
        raise FileExistsError(f"{path} exists; pass overwrite=True (CLI: --force) to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{_part_stem(path)}.{os.getpid()}.", suffix=PART_SUFFIX, dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes 0600, and some writers (safetensors) make the file anew with 0600:
        # give the finished file the usual mode
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def remove_stale_parts(path: str | os.PathLike) -> list[Path]:
    """Remove the ``.part`` files :func:`atomic_path` left for ``path`` in processes that are gone.

    Only files named as our temporary files for this very target are considered, and only
    those whose writer (the pid in the name) no longer runs on this machine (a folder shared
    with writers on other machines is not supported). Returns the removed files.
    """
    path = Path(path)
    prefix = f".{_part_stem(path)}."
    pattern = re.compile(rf"{re.escape(prefix)}(\d+)\.[a-z0-9_]{{8}}{re.escape(PART_SUFFIX)}")
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(path.parent):
            match = pattern.fullmatch(entry.name) if entry.name.startswith(prefix) else None
            if match and entry.is_file(follow_symlinks=False) and not _pid_alive(int(match.group(1))):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def check_writable(path: str | os.PathLike) -> Path:
    """``path`` as a Path, or a one-line :class:`~audiosep.errors.UsageError` saying why it
    cannot be written: empty, under a regular file, a name or path too long for the file
    system, no permission to write in its folder (tried with a nameless temporary file), or
    an existing folder. Leaves nothing behind."""
    text = os.fspath(path)
    if not text:
        raise UsageError("the output path is empty; give a file (e.g. out.wav) or a folder (e.g. out/)")
    path = Path(text)
    folder = existing_folder(path.parent)
    if not os.path.isdir(folder):
        raise UsageError(f"cannot write {path}: {folder} is a file, not a folder; choose an output path outside it")
    limit = name_max(folder)
    for part in path.relative_to(folder).parts:  # the names still to be created
        size = len(os.fsencode(part))
        if size > limit:
            raise UsageError(
                f"cannot write {path}: the name {part[:40]!r}... is {size} bytes, longer than the "
                f"{limit} this file system allows; choose a shorter name"
            )
    full = len(os.fsencode(os.path.abspath(path)))
    if full >= _pathconf(folder, "PC_PATH_MAX", _PATH_MAX):
        raise UsageError(f"cannot write {path}: the path is {full} bytes, too long for this file system; "
                         "choose a shorter output path")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write {path}: no permission to write in {folder}; choose another output "
                         "folder or change its permissions")
    try:  # a read-only or special file system (e.g. /proc) that access() does not report
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise UsageError(f"cannot write {path}: creating a file in {folder} fails ({err.strerror or err}); "
                         "choose another output folder") from None
    if os.path.isdir(path):
        raise UsageError(f"cannot write {path}: it is a folder; give a file name, or end the path with '/' "
                         "to write into it")
    return path


@contextlib.contextmanager
def removed_on_error(paths: Iterable[str | os.PathLike]) -> Iterator[None]:
    """If the block fails (Ctrl-C included), remove the files among ``paths`` that did not
    exist on entry, and the folders it created for them if left empty, so an interrupted
    run leaves no partial set of outputs. Files that existed before are never removed."""
    paths = [Path(p) for p in paths]
    fresh = [p for p in paths if not os.path.lexists(p)]
    new_dirs = {d for p in paths for d in p.parents if not os.path.lexists(d)}
    try:
        yield
    except BaseException:
        for p in fresh:
            if p.is_file():
                with contextlib.suppress(OSError):
                    p.unlink()
        for d in sorted(new_dirs, key=lambda d: len(d.parts), reverse=True):
            with contextlib.suppress(OSError):
                d.rmdir()  # only succeeds when empty
        raise


def existing_folder(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (``.`` for a relative path)."""
    path = Path(path)
    while not os.path.exists(path) and path != path.parent:
        path = path.parent
    return path


def name_max(path: str | os.PathLike) -> int:
    """Longest file name (bytes) the file system holding ``path`` (or its nearest existing
    ancestor) allows; 255 when it does not say."""
    return _pathconf(existing_folder(Path(path)), "PC_NAME_MAX", _NAME_MAX)


def shorten_name(name: str, limit: int) -> str:
    """``name`` if it fits in ``limit`` bytes, else its start and a short hash of the whole
    (``<start>-<8 hex>``): deterministic, and distinct names stay distinct."""
    raw = os.fsencode(name)
    if len(raw) <= limit:
        return name
    digest = hashlib.sha256(raw).hexdigest()[:8]
    start = raw[: max(limit - len(digest) - 1, 0)].decode("utf-8", "ignore").rstrip("-_ .")
    return f"{start}-{digest}"


def _part_stem(path: Path) -> str:
    """The target's name as it appears in its temporary files (shortened to fit the limit)."""
    return shorten_name(path.name, name_max(path.parent) - _PART_OVERHEAD)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # someone else's live process (or unknowable): leave its file alone
    return True


def _pathconf(path: Path, name: str, default: int) -> int:
    try:
        return int(os.pathconf(path, name))
    except (OSError, ValueError, AttributeError):
        return default


def _umask() -> int:
    """The process umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
