"""Reading and writing audio files (soundfile), channels first, whole or block by block.

Layout: audio in memory is ``Tensor[C, T]`` float32 (channels first); soundfile's ``[T, C]`` is
transposed on load and back on save.

Written sample formats (chosen so that nothing the network produces is lost where the container
allows it):

* ``.wav``  -> 32-bit float (values outside [-1, 1] are kept),
* ``.flac`` -> 24-bit PCM (clipped to [-1, 1]),
* ``.ogg``  -> Vorbis (clipped to [-1, 1]).
"""
from __future__ import annotations

import contextlib
import errno
import os
import struct
import warnings
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import soundfile
import torch
from torch import Tensor

from ..files import atomic_path
from ..errors import AudiosepError

# suffix -> (soundfile format, subtype, clip to [-1, 1])
WRITE_FORMATS = {
    ".wav": ("WAV", "FLOAT", False),
    ".flac": ("FLAC", "PCM_24", True),
    ".ogg": ("OGG", "VORBIS", True),
}
#: Frames per block when a file is read or written piece by piece.
BLOCK_FRAMES = 1 << 16


class AudioFileError(AudiosepError, ValueError):
    """An audio file that cannot be read or written (unreadable, unsupported, empty)."""


def readable_formats() -> list[str]:
    """File formats soundfile (libsndfile) can read here, e.g. ``["FLAC", "OGG", "WAV", ...]``."""
    return sorted(soundfile.available_formats())


class AudioReader:
    """An audio file opened for reading block by block; see :func:`open_audio`.

    Attributes
    ----------
    path : Path
    sample_rate, channels : int
    frames : int
        Frames present in the file (a truncated file holds fewer than its header declares; the
        reader then warns once, naming the file and both counts).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        with _open_sound_file(path) as f:
            self.sample_rate, self.channels, self.frames = int(f.samplerate), int(f.channels), int(f.frames)
            declared = _declared_wav_frames(path) if f.format in ("WAV", "WAVEX") else None
        if self.frames == 0:
            raise AudioFileError(f"{path} holds no samples (zero-length audio); pass a non-empty recording")
        if declared is not None and declared > self.frames:
            warnings.warn(
                f"{path} is truncated: its header declares {declared} frames but only {self.frames} are "
                f"present ({declared - self.frames} missing); using the {self.frames} frames read",
                UserWarning,
                stacklevel=3,
            )

    def blocks(self, frames: int = BLOCK_FRAMES) -> Iterator[Tensor]:
        """Yield the file as ``Tensor[C, n]`` float32 blocks of at most ``frames`` frames."""
        with _open_sound_file(self.path) as f:
            try:
                for block in f.blocks(blocksize=frames, dtype="float32", always_2d=True):
                    yield torch.from_numpy(np.ascontiguousarray(block.T))
            except (RuntimeError, soundfile.SoundFileError) as err:
                raise AudioFileError(
                    f"cannot decode {self.path} ({err}); the file is damaged; re-export or convert it"
                ) from None


def open_audio(path: str | os.PathLike) -> AudioReader:
    """Open an audio file for reading in blocks (nothing is decoded until :meth:`AudioReader.blocks`).

    Raises
    ------
    FileNotFoundError
        ``path`` (or the target of the symlink it is) does not exist.
    AudioFileError
        A folder, a symlink loop, no permission to read, not decodable or no samples.
    """
    return AudioReader(check_audio_path(path))


def check_audio_path(path: str | os.PathLike) -> Path:
    """``path`` as a Path if it names something that can be opened as a file; else the one-line
    error :func:`open_audio` gives (missing, dangling link, symlink loop, no permission, a folder)."""
    path = Path(path)
    try:
        os.stat(path)
    except OSError as err:
        raise _stat_error(path, err) from None
    if path.is_dir():
        raise AudioFileError(f"{path} is a folder, not an audio file; pass the path of a sound file")
    return path


def load_audio(path: str | os.PathLike) -> tuple[Tensor, int]:
    """Read an audio file.

    Parameters
    ----------
    path : path
        Any format libsndfile reads (WAV, FLAC, OGG/Vorbis, MP3 with libsndfile >= 1.1, ...).

    Returns
    -------
    audio : Tensor[C, T]
        float32, channels first (a mono file gives ``C = 1``).
    sample_rate : int

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    AudioFileError
        If the file cannot be read or decoded or holds no samples (see :func:`open_audio`).
    """
    reader = open_audio(path)
    out = torch.empty(reader.channels, reader.frames)
    n = 0
    for block in reader.blocks():
        out[:, n : n + block.shape[1]] = block
        n += block.shape[1]
    return out[:, :n], reader.sample_rate


@contextlib.contextmanager
def open_writer(
    path: str | os.PathLike, sample_rate: int, channels: int, *, overwrite: bool = False
) -> Iterator[Callable[[Tensor], None]]:
    """Write an audio file block by block, atomically: nothing appears at ``path`` unless the
    ``with`` block completes.

    Yields ``write(block)`` taking ``Tensor[C, n]`` (or ndarray) blocks in order.
    """
    path = Path(path)
    fmt, subtype, clip = _write_format(path)
    with atomic_path(path, overwrite=overwrite) as tmp:
        with soundfile.SoundFile(str(tmp), "w", int(sample_rate), int(channels), subtype=subtype, format=fmt) as f:

            def write(block: Tensor | np.ndarray) -> None:
                data = _as_channels_first(block)
                f.write(np.ascontiguousarray((np.clip(data, -1.0, 1.0) if clip else data).T))

            yield write


def save_audio(
    path: str | os.PathLike,
    audio: Tensor | np.ndarray,
    sample_rate: int,
    *,
    overwrite: bool = False,
) -> Path:
    """Write audio atomically; the format follows the suffix (``.wav``, ``.flac``, ``.ogg``).

    Parameters
    ----------
    path : path
    audio : Tensor[C, T] or Tensor[T] (or the same as a numpy array)
    sample_rate : int
    overwrite : bool
        Replace an existing file; otherwise :class:`FileExistsError`.

    Returns
    -------
    Path
        ``path``.
    """
    _write_format(Path(path))
    data = _as_channels_first(audio)
    with open_writer(path, sample_rate, data.shape[0], overwrite=overwrite) as write:
        write(data)
    return Path(path)


# -- helpers ------------------------------------------------------------------------------------
def _write_format(path: Path) -> tuple[str, str, bool]:
    try:
        return WRITE_FORMATS[path.suffix.lower()]
    except KeyError:
        raise AudioFileError(
            f"cannot write {path}: unknown suffix {path.suffix!r}; use one of {', '.join(WRITE_FORMATS)}"
        ) from None


def _as_channels_first(audio: Tensor | np.ndarray) -> np.ndarray:
    if isinstance(audio, Tensor):
        audio = audio.detach().to("cpu", torch.float32).numpy()
    data = np.asarray(audio, dtype=np.float32)
    if data.ndim == 1:
        data = data[None]
    if data.ndim != 2:
        raise ValueError(f"audio to save must be [C, T] or [T], got shape {data.shape}")
    return data


def _stat_error(path: Path, err: OSError) -> Exception:
    if err.errno == errno.ELOOP:
        return AudioFileError(f"{path} is a symlink loop (a link that points back to itself); make it point to a sound file")
    if err.errno == errno.EACCES:
        return AudioFileError(f"permission denied: cannot open {path}; give yourself read access to it and its folders")
    if path.is_symlink():
        return FileNotFoundError(f"audio file not found: {path} is a symlink to {os.readlink(path)}, which does not exist")
    return FileNotFoundError(f"audio file not found: {path}; check the path")


@contextlib.contextmanager
def _open_sound_file(path: Path) -> Iterator[soundfile.SoundFile]:
    try:
        handle = open(path, "rb")
    except PermissionError:
        raise AudioFileError(
            f"permission denied: cannot read {path}; give yourself read access (e.g. chmod u+r {path})"
        ) from None
    with handle:
        try:
            f = soundfile.SoundFile(handle)
        except (RuntimeError, TypeError, soundfile.SoundFileError) as err:
            raise AudioFileError(
                f"cannot read {path} as audio ({err}); supported formats: "
                f"{', '.join(readable_formats())}; convert the file, e.g. to WAV or FLAC"
            ) from None
        with f:
            yield f


def _declared_wav_frames(path: Path) -> int | None:
    """Frames a RIFF/WAVE header declares (its ``data`` chunk size), or None when unknown."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        block_align = None
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            tag, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if tag == b"fmt ":
                fmt = f.read(size)
                block_align = struct.unpack("<H", fmt[12:14])[0] if len(fmt) >= 14 else None
                f.seek(size % 2, os.SEEK_CUR)
            elif tag == b"data":
                if not block_align or size in (0, 0xFFFFFFFF):  # streamed WAVs leave the size open
                    return None
                return size // block_align
            else:
                f.seek(size + size % 2, os.SEEK_CUR)
