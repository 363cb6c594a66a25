"""Output files of a separation: their names (``<stem>_<query-slug>.wav``) and the checks
made on them before any work is done."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence


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
    folder, holding ``<stem>_<query-slug><suffix>`` per query (duplicate slugs get ``-2``...).
    """
    from .audio.io import WRITE_FORMATS

    target_str = os.fspath(target)
    path = Path(target_str)
    is_dir = target_str.endswith(("/", os.sep)) or path.is_dir() or not path.suffix
    if not is_dir and path.suffix.lower() not in WRITE_FORMATS:
        raise ValueError(
            f"cannot write {path}: unsupported output format {path.suffix!r} (supported: "
            f"{', '.join(sorted(WRITE_FORMATS))}); for a folder, end the path with '/'"
        )
    if not is_dir:
        if len(queries) != 1:
            raise ValueError(
                f"{path} is a single file but there are {len(queries)} queries; "
                "pass a folder (ending with '/') to get one file per query"
            )
        return [path]
    seen: dict[str, int] = {}
    paths = []
    for q in queries:
        slug = slugify(q)
        seen[slug] = seen.get(slug, 0) + 1
        if seen[slug] > 1:
            slug = f"{slug}-{seen[slug]}"
        paths.append(path / f"{stem}_{slug}{suffix}")
    return paths


def residual_path(path: Path) -> Path:
    """``out/mix_a-dog.wav -> out/mix_a-dog_residual.wav``."""
    return path.with_name(f"{path.stem}_residual{path.suffix}")


def check_outputs(output, texts: list[str], residual: bool, overwrite: bool) -> list[Path]:
    if isinstance(output, (str, os.PathLike)):
        paths = [Path(output)]
    else:
        paths = [Path(p) for p in output]
    if len(paths) != len(texts):
        raise ValueError(f"output has {len(paths)} path(s) for {len(texts)} queries; give one path per query")
    from .audio.io import WRITE_FORMATS

    everything = paths + ([residual_path(p) for p in paths] if residual else [])
    for p in everything:
        if p.suffix.lower() not in WRITE_FORMATS:
            raise ValueError(f"cannot write {p}: use a {', '.join(WRITE_FORMATS)} file name")
    if len(set(everything)) != len(everything):
        raise ValueError(f"output paths collide: {[str(p) for p in everything]}; give distinct names")
    if not overwrite:
        existing = [str(p) for p in everything if p.exists()]
        if existing:
            raise FileExistsError(
                f"output exists: {', '.join(existing)}; pass overwrite=True (CLI: --force) to replace it"
            )
    return paths
