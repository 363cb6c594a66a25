"""Fetching Debian packages and streaming the audio out of them.

A ``.deb`` is never unpacked to disk: ``dpkg-deb --fsys-tarfile`` pipes its file-system tar into
:mod:`tarfile` in stream mode, and only members with an audio suffix (or archives that may hold
audio: ``.zip``/``.wz`` and OpenTTD's ``.cat``) are read into memory. Paths inside archives are written
``archive!inner/path`` so that every clip keeps a precise origin for attribution.
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

AUDIO_SUFFIXES = (".wav", ".ogg", ".flac", ".mp3", ".opus", ".oga")
ZIP_SUFFIXES = (".zip", ".wz")  # Warzone 2100 keeps its data in zip files named .wz
INNER = "!"


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


def _cat_members(archive: str, data: bytes) -> Iterator[Member]:
    """Entries of an OpenTTD sound ``.cat``: a table of (offset, size) pairs, then entries that
    each hold a length-prefixed title and a RIFF WAV."""
    first = struct.unpack_from("<I", data, 0)[0] & 0x7FFFFFFF
    for i in range(first // 8):
        offset, size = struct.unpack_from("<II", data, 8 * i)
        offset &= 0x7FFFFFFF
        name_len = data[offset]
        title = data[offset + 1: offset + 1 + name_len].split(b"\0")[0].decode("utf-8", "replace")
        wav = data[offset + 1 + name_len: offset + size]
        # the title is "Name". Original ... -- keep only the quoted name for labelling
        name = title.split('"')[1] if title.count('"') >= 2 else title
        safe = "".join(c if c.isalnum() or c in " -_()" else " " for c in name).strip()
        yield Member(f"{archive}{INNER}{i:03d} {safe}.wav", wav)


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
                if path in extra or (is_audio(lower) and want(path)):
                    yield Member(path, tar.extractfile(info).read())
                elif lower.endswith(".cat"):
                    for m in _cat_members(path, tar.extractfile(info).read()):
                        if want(m.path):
                            yield m
                elif lower.endswith(ZIP_SUFFIXES):
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


def list_audio_paths(deb: Path) -> list[str]:
    """All audio paths in a package (inside archives too), without keeping their data."""
    paths: list[str] = []

    def record(path: str) -> bool:
        paths.append(path)
        return False

    for _ in iter_members(deb, want=record):
        pass
    return paths
