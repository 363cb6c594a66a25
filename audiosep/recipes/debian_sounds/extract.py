"""Fetching Debian packages and streaming the audio out of them.

A ``.deb`` is never unpacked to disk: ``dpkg-deb --fsys-tarfile`` pipes its file-system tar into
:mod:`tarfile` in stream mode, and only members with an audio suffix (or archives that may hold
audio: ``.zip``/``.wz`` and OpenTTD's ``.cat`` everywhere; ``.pk3``, ``.orgue``, Seven Kingdoms'
``.res`` and SoundFont ``.sf2`` where a package asks, see :mod:`.archives`) are read into memory.
Paths inside archives are written ``archive!inner/path`` so that every clip keeps a precise origin
for attribution. A malformed archive is skipped.
"""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ...errors import AudiosepError
from .archives import INNER, ArchiveError, cat_entries, res_entries, sf2_entries

AUDIO_SUFFIXES = (".wav", ".ogg", ".flac", ".mp3", ".opus", ".oga")
# Warzone 2100 keeps its data in zip files named .wz, UFO:AI in .pk3, GrandOrgue in .orgue
ZIP_SUFFIXES = (".zip", ".wz", ".pk3", ".orgue")
# Archives opened in every package; a PackageSpec may name more (``.res``, ``.sf2``, ``.pk3``,
# ``.orgue``) so that the original packages are read exactly as before.
DEFAULT_ARCHIVES = frozenset({".cat", ".zip", ".wz"})
_READERS = {".cat": cat_entries, ".res": res_entries, ".sf2": sf2_entries}


class PackageError(AudiosepError, RuntimeError):
    """A package that cannot be downloaded or read."""


@dataclass(frozen=True)
class Member:
    """One file taken out of a package.

    Attributes
    ----------
    path : str
        Path inside the package without the leading ``./`` (``a.zip!inner/b.ogg`` inside archives).
    data : bytes
    """

    path: str
    data: bytes


def is_audio(path: str) -> bool:
    return path.lower().endswith(AUDIO_SUFFIXES)


def copyright_path(package: str) -> str:
    """Where Debian keeps a package's licence statement."""
    return f"usr/share/doc/{package}/copyright"


def download(package: str, cache: Path) -> Path:
    """The package's ``.deb`` in ``cache``, fetched with ``apt-get download`` unless already there.

    Raises
    ------
    PackageError
        If apt cannot fetch it (run ``apt-get update`` first; the package must be in the sources).
    """
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob(f"{package}_*.deb"))
    if found:
        return found[-1]
    if shutil.which("apt-get") is None:
        raise PackageError(f"apt-get not found; put {package}_*.deb into {cache} by hand")
    os.chmod(cache, 0o777)  # apt's sandbox user must be able to write there
    proc = subprocess.run(["apt-get", "download", package], cwd=cache, capture_output=True, text=True)
    found = sorted(cache.glob(f"{package}_*.deb"))
    if proc.returncode != 0 or not found:
        raise PackageError(
            f"apt-get download {package} failed ({proc.stderr.strip()[-300:]}); "
            "run `apt-get update` and check that the package exists in your Debian release"
        )
    return found[-1]


def deb_field(deb: Path, field: str) -> str:
    """A control field of a ``.deb`` (e.g. ``Version``)."""
    out = subprocess.run(["dpkg-deb", "-f", str(deb), field], capture_output=True, text=True)
    if out.returncode != 0:
        raise PackageError(f"{deb}: cannot read field {field} ({out.stderr.strip()}); is it a valid .deb?")
    return out.stdout.strip()


def _zip_members(archive: str, file, want: Callable[[str], bool]) -> Iterator[Member]:
    with zipfile.ZipFile(file) as zf:
        for info in zf.infolist():
            inner = f"{archive}{INNER}{info.filename}"
            if not info.is_dir() and is_audio(info.filename) and want(inner):
                yield Member(inner, zf.read(info))


def iter_members(
    deb: Path,
    want: Callable[[str], bool] = lambda path: True,
    extra: frozenset[str] = frozenset(),
    tmpdir: Path | None = None,
    archives: frozenset[str] = DEFAULT_ARCHIVES,
) -> Iterator[Member]:
    """Stream the audio files (and the ``extra`` paths) out of a ``.deb``.

    Parameters
    ----------
    deb : Path
    want : callable
        ``want(path) -> bool`` is asked before an audio member is read, so unlabelled files cost
        no memory; archives are always opened and their inner audio files asked about.
    extra : frozenset of str
        Non-audio paths to yield too (e.g. the copyright file).
    tmpdir : Path, optional
        Where large zip archives are spooled (they need random access).
    archives : frozenset of str
        Suffixes of the archives to open (zip-like ones from :data:`ZIP_SUFFIXES` and those
        read by :mod:`.archives`); a malformed archive is skipped.

    Yields
    ------
    Member
    """
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                path = info.name[2:] if info.name.startswith("./") else info.name
                lower = path.lower()
                suffix = "." + lower.rsplit(".", 1)[-1] if "." in lower else ""
                if path in extra or (is_audio(lower) and want(path)):
                    yield Member(path, tar.extractfile(info).read())
                elif suffix in archives and suffix in _READERS:
                    try:
                        entries = list(_READERS[suffix](path, tar.extractfile(info).read()))
                    except (ArchiveError, struct.error):
                        continue
                    for inner, data in entries:
                        if want(inner):
                            yield Member(inner, data)
                elif suffix in archives and suffix in ZIP_SUFFIXES:
                    with tempfile.TemporaryFile(dir=tmpdir) as spool:
                        shutil.copyfileobj(tar.extractfile(info), spool, 1 << 20)
                        spool.seek(0)
                        try:
                            yield from _zip_members(path, spool, want)
                        except zipfile.BadZipFile:
                            continue
    finally:
        if proc.stdout is not None:
            proc.stdout.close()
        proc.wait()
    if proc.returncode not in (0, -13, 2):  # -13/2: we closed the pipe early (SIGPIPE)
        raise PackageError(f"dpkg-deb --fsys-tarfile {deb} failed with code {proc.returncode}; is the .deb complete?")


def list_audio_paths(deb: Path, archives: frozenset[str] = DEFAULT_ARCHIVES) -> list[str]:
    """All audio paths in a package (inside archives too), without keeping their data."""
    paths: list[str] = []

    def record(path: str) -> bool:
        paths.append(path)
        return False

    for _ in iter_members(deb, want=record, archives=archives):
        pass
    return paths
