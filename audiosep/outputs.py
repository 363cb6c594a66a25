"""Output files of a separation: their names (``<stem>_<query-slug>.wav``) and the checks
made on them before any work is done."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from .audio.io import WRITE_FORMATS
from .errors import UsageError
from .files import check_writable, name_max, shorten_name

#: Added to a target's stem to name its residual (``mix_a-dog.wav -> mix_a-dog_residual.wav``).
RESIDUAL_SUFFIX = "_residual"
_EMPTY = "the output path is empty; give a file (e.g. out.wav) or a folder (e.g. out/)"


def slugify(text: str, max_len: int = 60) -> str:
    """File-name-safe form of a query: ``"A dog, barking!" -> "a-dog-barking"``."""
    out, dash = [], False
    for ch in text.lower():
        if ch.isascii() and ch.isalnum():
            out.append(ch)
            dash = False
        elif not dash and out:
            out.append("-")
            dash = True
    slug = "".join(out).strip("-")[:max_len].strip("-")
    return slug or "query"


def output_paths(target: str | os.PathLike, queries: Sequence[str], stem: str, suffix: str = ".wav") -> list[Path]:
    """Output files for ``queries``.

    ``target`` is a file when it has a suffix (a format we write) and one query; otherwise a
    folder, holding ``<stem>_<query-slug><suffix>`` per query. Names are distinct: a slug
    already taken (``"a dog!"`` and ``"a dog?"``) gets ``-2``, ``-3``...; a name too long for
    the file system (with room for :data:`RESIDUAL_SUFFIX`) is cut and given a short hash of
    the whole, so the same inputs always give the same names.
    """
    target_str = os.fspath(target)
    if not target_str:
        raise UsageError(_EMPTY)
    path = Path(target_str)
    is_dir = target_str.endswith(("/", os.sep)) or os.path.isdir(path) or not path.suffix
    if not is_dir and path.suffix.lower() not in WRITE_FORMATS:
        raise UsageError(
            f"cannot write {path}: unsupported output format {path.suffix!r} (supported: "
            f"{', '.join(sorted(WRITE_FORMATS))}); for a folder, end the path with '/'"
        )
    if not is_dir:
        if len(queries) != 1:
            raise UsageError(
                f"{path} is a single file but there are {len(queries)} queries; "
                "pass a folder (ending with '/') to get one file per query"
            )
        return [path]
    limit = name_max(path) - len(os.fsencode(RESIDUAL_SUFFIX + suffix))
    taken: set[str] = set()
    paths = []
    for q in queries:
        base = f"{stem}_{slugify(q)}"
        name, n = shorten_name(base, limit), 1
        while name.casefold() in taken:  # casefold: distinct on case-insensitive file systems too
            n += 1
            name = shorten_name(f"{base}-{n}", limit)
        taken.add(name.casefold())
        paths.append(path / f"{name}{suffix}")
    return paths


def residual_path(path: Path) -> Path:
    """``out/mix_a-dog.wav -> out/mix_a-dog_residual.wav``."""
    return path.with_name(f"{path.stem}{RESIDUAL_SUFFIX}{path.suffix}")


def check_outputs(
    output, texts: list[str], residual: bool, overwrite: bool, source=None, *, force: str = "overwrite=True (CLI: --force)"
) -> list[Path]:
    """The files ``output`` names (one per query), checked before any work is done.

    Refused with a one-line error: an empty path, a count that does not match the queries, a
    format we do not write, two outputs (residuals included) that are the same file, an output
    that is the input file ``source`` (even with ``overwrite``), a path that cannot be written
    (see :func:`audiosep.files.check_writable`), and an existing file unless ``overwrite``
    (the message says to pass ``force``).
    """
    raw = [output] if isinstance(output, (str, os.PathLike)) else list(output)
    if any(not os.fspath(p) for p in raw):
        raise UsageError(_EMPTY)
    paths = [Path(p) for p in raw]
    if len(paths) != len(texts):
        raise UsageError(f"output has {len(paths)} path(s) for {len(texts)} queries; give one path per query")
    everything = paths + ([residual_path(p) for p in paths] if residual else [])
    for p in everything:
        if p.suffix.lower() not in WRITE_FORMATS:
            raise UsageError(f"cannot write {p}: use a {', '.join(WRITE_FORMATS)} file name")
    seen: dict[str, Path] = {}
    for p in everything:
        other = seen.setdefault(_identity(p), p)
        if other is not p:
            raise UsageError(f"output paths collide: {other} and {p} are the same file; give distinct names")
    if isinstance(source, (str, os.PathLike)):
        for p in everything:
            if _same_file(p, Path(source)):
                raise UsageError(
                    f"output {p} is the input file {source}; write the result elsewhere "
                    "(the input is never overwritten, not even with --force / overwrite=True)"
                )
    for p in everything:
        check_writable(p)
    if not overwrite:
        existing = [str(p) for p in everything if os.path.exists(p)]
        if existing:
            raise FileExistsError(
                f"output exists: {', '.join(existing)}; pass {force} to replace it"
            )
    return paths


def _identity(path: Path) -> str:
    return os.path.normcase(os.path.realpath(path))


def _same_file(a: Path, b: Path) -> bool:
    """Same file by inode when both exist (hard links, symlinks), else by resolved path."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return _identity(a) == _identity(b)
