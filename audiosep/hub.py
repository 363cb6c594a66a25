"""Checksummed downloads of pretrained files into a local cache.

Layout: ``<cache>/<bundle>/<filename>``, where ``<cache>`` is the ``cache_dir`` argument, else
``$AUDIOSEP_CACHE``, else ``~/.cache/audiosep``. A file already in place whose sha256 matches is
used without touching the network; a verified hash is remembered in a small sidecar file
(``.<filename>.verified``) keyed by size and modification time, so multi-GB checkpoints are not
re-hashed on every load. Missing files are fetched with ``huggingface_hub.hf_hub_download`` into a
temporary folder beside the target, verified, and moved into place atomically.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import socket
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence
from .errors import AudiosepError

__all__ = [
    "RemoteFile",
    "PretrainedError",
    "WeightsUnavailableError",
    "ChecksumError",
    "cache_root",
    "sha256_file",
    "fetch_files",
]

log = logging.getLogger(__name__)

HF_ENDPOINT = "https://huggingface.co"
CACHE_ENV = "AUDIOSEP_CACHE"
_REPO_URL_PREFIX = {"model": "", "space": "spaces/", "dataset": "datasets/"}


class PretrainedError(AudiosepError, RuntimeError):
    """Base class of the errors raised while resolving pretrained models."""


class WeightsUnavailableError(PretrainedError):
    """Some files of a pretrained model are neither cached nor downloadable.

    Attributes
    ----------
    missing : list of (RemoteFile, reason)
    directory : Path
        Folder the files must be put in.
    """

    def __init__(self, message: str, missing: Sequence[tuple["RemoteFile", str]] = (), directory: Path | None = None) -> None:
        super().__init__(message)
        self.missing = list(missing)
        self.directory = directory

    def one_line(self) -> str:
        """The problem and the fix in one line (for command-line tools)."""
        names = ", ".join(f.filename for f, _ in self.missing)
        return (
            f"pretrained weights not available offline: {len(self.missing)} file(s) missing from "
            f"{self.directory} ({names}); download them there (`audiosep models --files NAME` "
            "lists their URLs) or set AUDIOSEP_CACHE to a folder that holds them"
        )


class ChecksumError(PretrainedError):
    """A downloaded file does not have the expected sha256 or size."""


@dataclass(frozen=True)
class RemoteFile:
    """One file of a pretrained model and where it comes from.

    Attributes
    ----------
    filename : str
        Path of the file inside the bundle's cache folder (may contain ``/``).
    repo_id : str or None
        Hugging Face repository, e.g. ``"Audio-AGI/AudioSep"``; None for a file that has no
        download location (it ships inside the package, see
        :data:`audiosep.pretrained.SHIPPED_DIR`).
    path_in_repo : str
        Path of the file inside that repository.
    repo_type : {"model", "space", "dataset"}
    revision : str
        Branch, tag or commit; a commit hash pins the bytes.
    sha256 : str or None
        Expected digest (lower-case hex). None when no published digest is known: then only the
        size is checked and the computed digest is logged so that it can be pinned.
    size : int or None
        Expected size in bytes, if known.
    """

    filename: str
    repo_id: str | None
    path_in_repo: str
    repo_type: str = "model"
    revision: str = "main"
    sha256: str | None = None
    size: int | None = None

    def __post_init__(self) -> None:
        if self.repo_type not in _REPO_URL_PREFIX:
            raise ValueError(f"repo_type must be one of {sorted(_REPO_URL_PREFIX)}, got {self.repo_type!r}")
        if self.sha256 is not None and (len(self.sha256) != 64 or self.sha256 != self.sha256.lower()):
            raise ValueError(f"{self.filename}: sha256 must be 64 lower-case hex digits, got {self.sha256!r}")

    @property
    def url(self) -> str | None:
        """Direct download URL (the one ``hf_hub_download`` resolves); None if not downloadable."""
        if self.repo_id is None:
            return None
        prefix = _REPO_URL_PREFIX[self.repo_type]
        return f"{HF_ENDPOINT}/{prefix}{self.repo_id}/resolve/{self.revision}/{self.path_in_repo}"


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``cache_dir``, else ``$AUDIOSEP_CACHE``, else ``~/.cache/audiosep``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "audiosep"


def sha256_file(path: str | os.PathLike, chunk_size: int = 1 << 22) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


# -- verification of files in place ------------------------------------------------------------
def _sidecar(path: Path) -> Path:
    return path.with_name(f".{path.name}.verified")


def _stamp(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _remember(path: Path, digest: str) -> None:
    with contextlib.suppress(OSError):
        _sidecar(path).write_text(json.dumps({**_stamp(path), "sha256": digest}))


def _cached_digest(path: Path) -> str:
    """sha256 of ``path``, from the sidecar if size and mtime are unchanged."""
    try:
        record = json.loads(_sidecar(path).read_text())
        if {k: record.get(k) for k in ("size", "mtime_ns")} == _stamp(path):
            return str(record["sha256"])
    except (OSError, ValueError, KeyError):
        pass
    digest = sha256_file(path)
    _remember(path, digest)
    return digest


def _problem(file: RemoteFile, path: Path, digest: str | None = None) -> str | None:
    """Why ``path`` is not a good copy of ``file`` (None if it is)."""
    size = path.stat().st_size
    if file.size is not None and size != file.size:
        return f"size {size} bytes, expected {file.size}"
    if file.sha256 is not None:
        digest = digest or _cached_digest(path)
        if digest != file.sha256:
            return f"sha256 {digest}, expected {file.sha256}"
    return None


def _discard(path: Path) -> None:
    for p in (path, _sidecar(path)):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


# -- download ----------------------------------------------------------------------------------
def _offline() -> bool:
    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().lower()
    return flag in ("1", "true", "yes", "on")


def _unreachable_reason(url: str) -> str | None:
    """Why ``url``'s host surely cannot be reached (its name does not resolve), else None.

    Saves the Hugging Face client's retries (over a minute per file) on machines with no
    network. With a proxy configured the proxy resolves names, so nothing is concluded.
    """
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return None
    host = urllib.parse.urlparse(url).hostname
    try:
        socket.getaddrinfo(host, 443)
    except (socket.gaierror, UnicodeError) as err:
        return f"no network: cannot resolve {host} ({err})"
    except OSError:
        return None
    return None


def _download(file: RemoteFile, target: Path) -> None:
    """Fetch ``file`` to ``target``: temporary folder, verify, atomic rename."""
    import huggingface_hub

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
    try:
        got = Path(
            huggingface_hub.hf_hub_download(
                file.repo_id,
                file.path_in_repo,
                repo_type=file.repo_type,
                revision=file.revision,
                local_dir=tmp_dir,
            )
        )
        digest = sha256_file(got)
        size = got.stat().st_size
        if (file.sha256 is not None and digest != file.sha256) or (file.size is not None and size != file.size):
            raise ChecksumError(
                f"downloaded {file.url} does not match its pinned checksum: expected sha256 "
                f"{file.sha256} ({file.size} bytes), got sha256 {digest} ({size} bytes). The file was "
                "deleted; retry, and if it persists the upstream file changed: report it"
            )
        os.replace(got, target)
        _remember(target, digest)
        if file.sha256 is None:
            log.warning("%s has no pinned sha256; downloaded copy has sha256=%s (%d bytes): pin it",
                        file.filename, digest, size)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def fetch_files(
    files: Sequence[RemoteFile],
    directory: str | os.PathLike,
    *,
    offline: bool | None = None,
) -> dict[str, Path]:
    """Make every file of ``files`` present and verified under ``directory``.

    Parameters
    ----------
    files : sequence of RemoteFile
    directory : path
        Folder the files live in (``<cache>/<bundle>``).
    offline : bool, optional
        Never use the network. Default: true when ``HF_HUB_OFFLINE`` is set.

    Returns
    -------
    dict
        ``filename -> absolute path`` of each verified file.

    Raises
    ------
    WeightsUnavailableError
        If some files are missing and cannot be downloaded; the message lists every missing file,
        its URL and the folder to put it in.
    ChecksumError
        If a downloaded file does not match its pinned sha256 or size (nothing is kept).
    """
    directory = Path(directory).expanduser().resolve()
    offline = _offline() if offline is None else offline
    found: dict[str, Path] = {}
    missing: list[tuple[RemoteFile, str]] = []
    network_down: str | None = None
    for file in files:
        target = directory / file.filename
        if target.is_file():
            problem = _problem(file, target)
            if problem is None:
                found[file.filename] = target
                continue
            log.warning("cached %s is damaged (%s); fetching it again", target, problem)
            _discard(target)
        if file.repo_id is None:
            missing.append((file, "no download location: it ships with the audiosep package; reinstall "
                                  "audiosep, or copy the file here from audiosep/weights/ of a checkout"))
            continue
        if offline:
            missing.append((file, "offline (HF_HUB_OFFLINE is set)"))
            continue
        network_down = network_down or _unreachable_reason(file.url)
        if network_down:
            missing.append((file, network_down))
            continue
        try:
            _download(file, target)
        except ChecksumError:
            raise
        except Exception as err:  # no network, hub errors, disk errors: report all files at once
            missing.append((file, f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"))
            continue
        found[file.filename] = target
    if missing:
        lines = [f"  {f.filename}\n      from {f.url or 'nowhere (no URL)'}\n      to   {directory / f.filename}\n      ({why})"
                 for f, why in missing]
        raise WeightsUnavailableError(
            f"{len(missing)} pretrained file(s) are not in the cache and could not be downloaded:\n"
            + "\n".join(lines)
            + f"\nDownload them on a machine with internet access and put them in {directory} "
            "(keeping the names above), or set AUDIOSEP_CACHE / cache_dir to a folder that holds them.",
            missing=missing,
            directory=directory,
        )
    return found
