"""Reading and writing audio files (soundfile), channels first.

Layout: audio in memory is ``Tensor[C, T]`` float32 (channels first); soundfile's ``[T, C]`` is
transposed on load and back on save.

Written sample formats (chosen so that nothing the network produces is lost where the container
allows it):

* ``.wav``  -> 32-bit float (values outside [-1, 1] are kept),
* ``.flac`` -> 24-bit PCM (clipped to [-1, 1]),
* ``.ogg``  -> Vorbis (clipped to [-1, 1]).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
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


class AudioFileError(AudiosepError, ValueError):
    """An audio file that cannot be read or written (unreadable, unsupported, empty)."""


def readable_formats() -> list[str]:
    """File formats soundfile (libsndfile) can read here, e.g. ``["FLAC", "OGG", "WAV", ...]``."""
    import soundfile

    return sorted(soundfile.available_formats())


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
        If the file cannot be decoded or holds no samples.
    """
    import soundfile

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"audio file not found: {path}; check the path")
    if path.is_dir():
        raise AudioFileError(f"{path} is a folder, not an audio file; pass the path of a sound file")
    try:
        data, sr = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, TypeError, soundfile.SoundFileError) as err:
        raise AudioFileError(
            f"cannot read {path} as audio ({err}); supported formats: "
            f"{', '.join(readable_formats())}; convert the file, e.g. to WAV or FLAC"
        ) from None
    if data.shape[0] == 0:
        raise AudioFileError(f"{path} holds no samples (zero-length audio); pass a non-empty recording")
    return torch.from_numpy(np.ascontiguousarray(data.T)), int(sr)


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
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_FORMATS:
        raise AudioFileError(
            f"cannot write {path}: unknown suffix {path.suffix!r}; use one of {', '.join(WRITE_FORMATS)}"
        )
    fmt, subtype, clip = WRITE_FORMATS[suffix]
    if isinstance(audio, Tensor):
        audio = audio.detach().to("cpu", torch.float32).numpy()
    data = np.asarray(audio, dtype=np.float32)
    if data.ndim == 1:
        data = data[None]
    if data.ndim != 2:
        raise ValueError(f"audio to save must be [C, T] or [T], got shape {data.shape}")
    if clip:
        data = np.clip(data, -1.0, 1.0)
    import soundfile

    with atomic_path(path, overwrite=overwrite) as tmp:
        soundfile.write(str(tmp), np.ascontiguousarray(data.T), int(sample_rate), subtype=subtype, format=fmt)
    return path
