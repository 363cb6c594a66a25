"""Finding the reference item lists (metadata CSVs), downloading them when needed.

The lists belong to the reference repository (Audio-AGI/AudioSep, ``evaluation/metadata/``, MIT
licence) and are not shipped with ``audiosep``. :func:`find_metadata` looks, in order, at

1. an explicit path (``--metadata``),
2. the data root and ``<data-root>/metadata/``,
3. ``evaluation/metadata/`` beside the data root (the reference keeps ``evaluation/data/`` and
   ``evaluation/metadata/`` side by side),
4. the cache, ``$AUDIOSEP_CACHE/benchmarks`` or ``~/.cache/audiosep/benchmarks``,

and finally downloads the file from the reference repository into the cache.
"""
from __future__ import annotations

import os
import urllib.error
import urllib.request
from pathlib import Path

from ..files import atomic_path
from .errors import MetadataError

METADATA_URL = "https://raw.githubusercontent.com/Audio-AGI/AudioSep/main/evaluation/metadata/"
URL_ENV = "AUDIOSEP_BENCH_METADATA_URL"  # base URL override (a mirror, or a local copy in tests)


def metadata_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """``<cache>/benchmarks``, with the cache resolved as for pretrained models."""
    from ..hub import cache_root

    return cache_root(cache_dir) / "benchmarks"


def metadata_base_url() -> str:
    """Base URL of the reference item lists (``$AUDIOSEP_BENCH_METADATA_URL`` overrides it)."""
    url = os.environ.get(URL_ENV) or METADATA_URL
    return url if url.endswith("/") else url + "/"


def candidate_paths(filename: str, data_root: str | os.PathLike | None) -> list[Path]:
    """Local places searched for ``filename``, in order (the cache last)."""
    paths = []
    if data_root is not None:
        root = Path(data_root)
        paths += [root / filename, root / "metadata" / filename, root.parent / "metadata" / filename]
    paths.append(metadata_cache_dir() / filename)
    return paths


def download_metadata(filename: str, dest_dir: str | os.PathLike, *, base_url: str | None = None,
                      timeout: float = 60.0) -> Path:
    """Fetch ``filename`` from the reference repository into ``dest_dir`` (atomically).

    Raises
    ------
    MetadataError
        If the download fails or the answer is not a CSV.
    """
    url = (base_url or metadata_base_url())
    url = (url if url.endswith("/") else url + "/") + filename
    dest = Path(dest_dir) / filename
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = response.read()
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise MetadataError(
            f"cannot download the item list {filename} from {url} ({err}); download it by hand from "
            f"the reference repository (evaluation/metadata/{filename}) and pass it with --metadata, "
            f"or put it in {dest.parent}"
        ) from None
    head = data[:200].decode("utf-8", errors="replace")
    first_line = head.splitlines()[0] if head else ""
    if "," not in first_line or first_line.lstrip().startswith("<"):
        raise MetadataError(
            f"{url} did not return a CSV item list (starts with {first_line[:60]!r}); "
            f"download evaluation/metadata/{filename} from the reference repository by hand and pass "
            "it with --metadata"
        )
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
    return dest


def find_metadata(filename: str, data_root: str | os.PathLike | None = None, *,
                  explicit: str | os.PathLike | None = None, download: bool = True,
                  base_url: str | None = None) -> Path:
    """Path of the item list ``filename``, downloading it into the cache if nowhere local.

    Parameters
    ----------
    filename : str
        E.g. ``"clotho_eval.csv"``.
    data_root : path, optional
        The benchmark data root (``evaluation/data`` in the reference layout).
    explicit : path, optional
        A path given by the user; it must exist.
    download : bool
        Allow the download from the reference repository.
    base_url : str, optional
        Overrides :func:`metadata_base_url`.
    """
    if explicit is not None:
        path = Path(explicit).expanduser()
        if path.is_dir():
            raise MetadataError(f"--metadata {path} is a folder; pass the item list CSV itself")
        if not path.is_file():
            raise MetadataError(f"metadata file {path} does not exist; check the --metadata path")
        return path
    searched = candidate_paths(filename, data_root)
    for path in searched:
        if path.is_file():
            return path
    if not download:
        raise MetadataError(
            f"item list {filename} not found (looked in {', '.join(str(p) for p in searched)}) and "
            "downloads are off; pass --metadata PATH or allow the download"
        )
    return download_metadata(filename, metadata_cache_dir(), base_url=base_url)
