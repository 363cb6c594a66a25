"""``separate()``: the front door. Audio and text in, separated audio out.

>>> from audiosep import separate
>>> result = separate("mixture.wav", ["a dog barking", "speech"])   # doctest: +SKIP
>>> result.audio.shape        # [Q, C, T]                             # doctest: +SKIP
"""
from __future__ import annotations

import functools
import math
import os
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, Union

import numpy as np
import torch
from torch import Tensor

from . import pretrained
from .audio.io import load_audio, save_audio
from .chunking import aligned_sizes
from .devices import check_device, default_batch_size, resolve_device
from .model import AudioSep
from .outputs import check_outputs as _check_outputs, output_paths, residual_path
from .streaming import (ArraySink, FileSink, Sink, Source, array_source, file_source, level_gains, run_stream, scan,
                        silent_blocks)

#: Window length for long inputs (seconds). See :data:`DEFAULT_OVERLAP_SECONDS`.
DEFAULT_CHUNK_SECONDS = 20.0
#: Twice the cross-fade between neighbouring windows (seconds); the windows share this plus the
#: network's context on both sides of the fade (see ``_window_sizes``).
DEFAULT_OVERLAP_SECONDS = 0.5
#: Most (query x channel) rows sent through the network at once, by device type. On CPU one
#: row at a time is fastest (measured: a batch of 4 ten-second rows took 1.7x as long as four
#: single rows, its activations no longer fitting the caches); GPUs gain from batching.
AudioLike = Union[str, os.PathLike, np.ndarray, Tensor]
QueryLike = Union[str, Sequence[str], Tensor]

_MODEL_CACHE: dict[tuple[str, str], "object"] = {}
_CACHE_LOCK = threading.Lock()


@dataclass
class Separation:
    """Result of :func:`separate`.

    Attributes
    ----------
    audio : Tensor or ndarray
        ``[C, T]`` (or ``[T]`` for 1-D input) for a single string query; ``[Q, C, T]`` (or
        ``[Q, T]``) for a list of queries or a ``Tensor[N, D]`` of embeddings. numpy when the
        input was numpy, else torch (on the input tensor's device). float32.
    residual : same as ``audio``, or None
        ``mixture - audio`` per query, when asked for.
    sample_rate : int
        The input's sample rate (the output has the input's length too).
    queries : list of str
        The queries, in output order (``"embedding-<i>"`` for precomputed embeddings).
    """

    audio: Tensor | np.ndarray
    residual: Tensor | np.ndarray | None
    sample_rate: int
    queries: list[str]
    _single: bool = field(default=False, repr=False)
    _squeezed: bool = field(default=False, repr=False)

    def save(self, path_or_dir: str | os.PathLike, *, overwrite: bool = False) -> list[Path]:
        """Write one file per query (and per residual).

        A path with an audio suffix is used as is for a single query; otherwise it is a folder
        and files are named ``<query-slug>.wav`` (``<query-slug>_residual.wav``).
        """
        paths = output_paths(path_or_dir, self.queries, "separated")
        _check_outputs(paths, self.queries, self.residual is not None, overwrite)  # all of them, before writing any
        return _write(self, paths, overwrite)


# -- public -------------------------------------------------------------------------------------
def separate(
    audio: AudioLike,
    query: QueryLike,
    *,
    sample_rate: int | None = None,
    model=None,
    device: str | torch.device | None = None,
    residual: bool = False,
    chunk_seconds: float | None = DEFAULT_CHUNK_SECONDS,
    overlap_seconds: float = DEFAULT_OVERLAP_SECONDS,
    batch_size: int | None = None,
    bf16: bool = False,
    output: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    overwrite: bool = False,
    progress: bool = False,
) -> Separation:
    """Separate the sound(s) described by ``query`` from ``audio``.

    Parameters
    ----------
    audio : path, ndarray or Tensor
        A file (any format soundfile reads), or samples ``[T]`` (mono) or ``[C, T]``
        (channels first; transpose soundfile's ``[T, C]``). Every channel is separated on its
        own and the layout is kept. Integer PCM arrays are scaled to [-1, 1) as files are; the
        output is float32. Never modified.
    query : str, list of str, or Tensor[N, D]
        Text description(s) or precomputed query embeddings. All queries (times all channels)
        run as one batch of at most ``batch_size`` rows.
    sample_rate : int, optional
        Rate of array input (required for arrays; files carry their own). Any rate works: the
        audio is resampled to the model's rate and the result back to this one, same length.
    model : AudioSep, str or path, optional
        A model, a bundle name (see ``audiosep.list_models()``) or a saved folder; default
        :data:`audiosep.pretrained.DEFAULT_MODEL`. Loaded models are cached per (name, device).
    device : {"cuda", "mps", "cpu"}, optional
        Default: cuda if available, else mps, else cpu (an ``AudioSep`` passed in without
        ``device`` stays where it is).
    residual : bool
        Also return ``mixture - separated`` for every query.
    chunk_seconds, overlap_seconds : float
        Inputs longer than ``chunk_seconds`` are processed in windows of about that length,
        cross-faded over half of ``overlap_seconds``; beside the fade each window keeps half the
        network's reach of context (``ResUNetConfig.context_frames``), so the result matches
        the single pass (>= 40 dB SNR, also across level changes: a level-normalised network
        gets the whole input's gain in every window). Each window runs once and the input
        streams through, so memory does not grow with its length. Window starts are rounded
        to the network's pooling grid (``hop_length * time_downsample`` samples) so a window
        computes the same frames as a single pass and only its edges differ. With the
        defaults (20 s, 0.5 s) the overlaps add ~24% of work for the released model and ~18%
        for ``audiosep-offline-small`` (3.8 s and 3.1 s of overlap).
        ``chunk_seconds=None`` runs one pass over the whole input.
    batch_size : int, optional
        Most (query x channel) rows per network call; default :data:`audiosep.devices.DEFAULT_BATCH_SIZE` for
        the device (1 on CPU, 8 on CUDA).
    bf16 : bool
        bfloat16 autocast; GPU only (ValueError on CPU, where it is slow and gains nothing).
    output : path or list of paths, optional
        Files to write, one per query (``.wav``, ``.flac`` or ``.ogg``); residuals go beside them
        as ``<stem>_residual<suffix>``. All are checked before any work is done. They are
        written while the input is read (memory does not grow with its length) and appear only
        when complete; the result's ``audio``/``residual`` are then read back from them when
        first used.
    overwrite : bool
        Replace existing output files (otherwise FileExistsError before computing anything).
    progress : bool
        tqdm bar over windows.

    Returns
    -------
    Separation
        See :class:`Separation` for shapes.

    Raises
    ------
    ValueError
        Empty query, missing ``sample_rate``, wrong shape, zero-length or non-finite audio.
    FileNotFoundError, audiosep.audio.io.AudioFileError
        Missing or unreadable audio file.
    FileExistsError
        An output exists and ``overwrite`` is False.
    """
    texts, single = _check_query(query)
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if chunk_seconds is not None and (chunk_seconds <= 0 or not 0 <= overlap_seconds < chunk_seconds):
        raise ValueError(
            f"need 0 <= overlap_seconds < chunk_seconds, got {overlap_seconds} and {chunk_seconds}; "
            "use a shorter overlap, or chunk_seconds=None for one pass"
        )
    outputs = None
    if output is not None:
        outputs = _check_outputs(output, texts, residual, overwrite, source=audio)

    source, kind, squeeze, ref = _open_input(audio, sample_rate)
    net_model = cond = None
    if scan(source).peak == 0:
        warnings.warn("the input is silent (all zeros); the separated audio is silence too", stacklevel=2)
    else:
        net_model = _resolve_model(model, device)
        if bf16 and net_model.device.type == "cpu":
            raise ValueError("bf16=True needs a GPU (cuda or mps); on CPU leave bf16=False")
        cond = net_model.embed(query if isinstance(query, Tensor) else texts)  # [Q, D]
        batch_size = batch_size or default_batch_size(net_model.device)
    sizes = (len(texts), source.channels, source.length, residual, source)
    run = functools.partial(_run, net_model, source, cond, chunk_seconds, overlap_seconds, batch_size, bf16, progress)
    meta = dict(sample_rate=source.sample_rate, queries=texts, _single=single, _squeezed=squeeze)
    if outputs is None:
        sink = ArraySink(*sizes)
        run(sink)
        res = None if sink.res is None else _format(sink.res, kind, squeeze, single, ref)
        return Separation(audio=_format(sink.audio, kind, squeeze, single, ref), residual=res, **meta)
    res_paths = [residual_path(p) for p in outputs] if residual else None
    with FileSink(outputs, res_paths, source.sample_rate, overwrite, *sizes) as sink:
        run(sink)
    return _WrittenSeparation(outputs, res_paths, (kind, squeeze, single, ref), **meta)


class _WrittenSeparation(Separation):
    """A :class:`Separation` written to files while it was computed: ``audio`` and ``residual``
    are read back from those files on first use, so separating into files holds no whole output."""

    def __init__(self, paths: list[Path], residual_paths: list[Path] | None, layout: tuple, **meta) -> None:
        self._files = {"audio": paths, "residual": residual_paths}
        self._layout = layout
        self._loaded: dict[str, object] = {}
        super().__init__(audio=None, residual=None, **meta)

    def _read(self, name: str):
        if name not in self._loaded and self._files[name] is not None:
            x = torch.stack([load_audio(p)[0] for p in self._files[name]])  # [Q, C, T]
            self._loaded[name] = _format(x, *self._layout)
        return self._loaded.get(name)

    def _store(self, name: str, value) -> None:  # the dataclass __init__ sets None: the files hold it
        if value is not None:
            self._loaded[name] = value

    audio = property(lambda self: self._read("audio"), lambda self, v: self._store("audio", v))
    residual = property(lambda self: self._read("residual"), lambda self, v: self._store("residual", v))


def clear_model_cache() -> None:
    """Forget models loaded by name or path."""
    with _CACHE_LOCK:
        _MODEL_CACHE.clear()


# -- steps --------------------------------------------------------------------------------------
def _check_query(query: QueryLike) -> tuple[list[str], bool]:
    if isinstance(query, Tensor):
        if query.dim() not in (1, 2) or query.numel() == 0:
            raise ValueError(
                f"query embeddings must be Tensor[D] or Tensor[N, D], got shape {tuple(query.shape)}"
            )
        if not torch.isfinite(query).all():
            raise ValueError("query embeddings contain NaN or Inf; recompute them")
        n = 1 if query.dim() == 1 else query.shape[0]
        return [f"embedding-{i}" for i in range(n)], query.dim() == 1
    if isinstance(query, str):
        texts, single = [query], True
    elif isinstance(query, Sequence) and all(isinstance(q, str) for q in query):
        texts, single = list(query), False
    else:
        raise ValueError(
            f"query must be a string, a list of strings or a Tensor[N, D] of embeddings, got {type(query).__name__}"
        )
    if not texts:
        raise ValueError("no query given: pass at least one description, e.g. 'a dog barking'")
    for t in texts:
        if not t.strip():
            raise ValueError(f"empty query {t!r}: describe the sound to separate, e.g. 'a dog barking'")
    return texts, single


def _open_input(audio: AudioLike, sample_rate: int | None):
    """-> (Source, container kind, was 1-D, reference tensor). Nothing is read or copied yet."""
    if isinstance(audio, (str, os.PathLike)):
        source = file_source(audio)
        if sample_rate is not None and sample_rate != source.sample_rate:
            raise ValueError(
                f"{audio} is at {source.sample_rate} Hz but sample_rate={sample_rate} was given; "
                "drop sample_rate for files"
            )
        return source, "path", False, None
    if not isinstance(audio, (np.ndarray, Tensor)):
        raise ValueError(f"audio must be a file path, a numpy array or a torch tensor, got {type(audio).__name__}")
    if sample_rate is None:
        raise ValueError("sample_rate is required for array input, e.g. separate(x, q, sample_rate=44100)")
    if isinstance(sample_rate, bool) or not float(sample_rate).is_integer() or int(sample_rate) <= 0:
        raise ValueError(f"sample_rate must be a positive whole number of Hz (e.g. 44100), got {sample_rate!r}")
    kind = "numpy" if isinstance(audio, np.ndarray) else "torch"
    if audio.dtype in (bool, np.bool_, torch.bool):
        raise ValueError("audio must hold numbers (float or integer PCM), got a boolean array")
    if np.iscomplexobj(audio) if kind == "numpy" else audio.is_complex():
        raise ValueError("audio must be real-valued samples, got a complex array")
    if audio.ndim not in (1, 2):
        raise ValueError(f"audio must be [T] (mono) or [C, T] (channels first), got shape {tuple(audio.shape)}")
    squeeze = audio.ndim == 1
    x = audio[None] if squeeze else audio
    if x.shape[0] > x.shape[1] and x.shape[1] > 0:
        raise ValueError(
            f"audio of shape {tuple(x.shape)} has more channels than samples; audio must be "
            "[C, T] (channels first); for soundfile's [T, C] layout pass audio.T"
        )
    if x.shape[-1] == 0 or x.shape[0] == 0:
        raise ValueError("the audio is empty (zero samples); pass a non-empty recording")
    return array_source(x, int(sample_rate), _as_float), kind, squeeze, (audio if kind == "torch" else None)


def _as_float(audio: np.ndarray | Tensor) -> Tensor:
    """A float32 CPU copy; integer PCM is scaled to [-1, 1) as audio files are read."""
    if isinstance(audio, np.ndarray):
        audio = torch.from_numpy(np.array(audio))
    if audio.is_floating_point():
        return audio.detach().to("cpu", torch.float32).clone()
    if audio.dtype == torch.uint8:  # 8-bit PCM is unsigned, centred on 128
        return (audio.detach().to("cpu", torch.float32) - 128.0) / 128.0
    scale = float(torch.iinfo(audio.dtype).max) + 1.0
    return audio.detach().to("cpu", torch.float64).div(scale).to(torch.float32)


def _resolve_model(model, device):
    if isinstance(model, AudioSep):
        if device is not None and check_device(device) != model.device:
            model = model.to(device)
        return model.eval()
    if model is None:
        model = pretrained.DEFAULT_MODEL
    if not isinstance(model, (str, os.PathLike)):
        raise ValueError(f"model must be an AudioSep, a bundle name or a folder, got {type(model).__name__}")
    dev = resolve_device(device)
    path = Path(model)
    key_name = str(path.resolve()) if path.exists() else str(model)
    key = (key_name, str(dev))
    with _CACHE_LOCK:
        cached = _MODEL_CACHE.get(key)
    if cached is None:
        cached = AudioSep.from_pretrained(model, device=dev).eval()
        with _CACHE_LOCK:
            _MODEL_CACHE[key] = cached
    return cached


@torch.inference_mode()
def _run(model, source: Source, cond: Tensor | None, chunk_seconds, overlap_seconds, batch_size, bf16, progress,
         sink: Sink) -> None:
    """Separate ``source`` into ``sink``; ``model=None``: the input is silent, so is the output.

    cond: Tensor[Q, D]. Windows run at the model's rate; ``sink`` gets Tensor[Q, C, n] blocks at
    the input's rate."""
    if model is None:
        mixture = source.blocks()
        for zeros in silent_blocks(source, sink.queries):
            sink.feed(zeros, mixture)
        sink.finish(mixture)
        return
    dev, msr, net = model.device, model.sample_rate, model.separation_net
    n_ch, n_q = source.channels, cond.shape[0]
    min_length = math.ceil(net.config.n_fft * source.sample_rate / msr)  # one STFT window
    gains = None
    if net.config.input_level_db is not None:  # the whole input's level, for every window alike
        gains = level_gains(source, msr, min_length, net.config.input_level_db).repeat(n_q).to(dev)
    cond = cond.to(dev, torch.float32).repeat_interleave(n_ch, dim=0)  # row q * C + c

    def run_window(seg: Tensor) -> Tensor:  # [C, l] -> [Q, C, l]
        rows = seg.to(dev)[None].expand(n_q, -1, -1).reshape(n_q * n_ch, 1, -1)
        outs = []
        for i in range(0, rows.shape[0], batch_size):
            g = None if gains is None else gains[i : i + batch_size]
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=bf16):
                y = model(rows[i : i + batch_size], cond[i : i + batch_size], level_gain=g)
            outs.append(y.float())
        return torch.cat(outs).reshape(n_q, n_ch, -1)

    sizes = (None, 0, 0) if chunk_seconds is None else _window_sizes(model, chunk_seconds, overlap_seconds)
    run_stream(source, msr, min_length, run_window, *sizes, sink, progress)


def _window_sizes(model, chunk_seconds: float, overlap_seconds: float) -> tuple[int, int, int]:
    """Window, overlap and fade in model-rate samples, aligned to the network's frame/pool grid.

    The fade is half the requested overlap; on each side of it a window keeps at least three
    quarters of the network's reach (:attr:`ResUNetConfig.context_frames`) as context. Measured
    with the bundled model, worst second around a seam against the single pass: 29 dB with half
    the reach, 70 dB with three quarters, float rounding (~150 dB) with all of it; the work on
    a 60 s input is 1.15, 1.23 and 1.29 times one pass (20 s windows).
    """
    msr = model.sample_rate
    cfg = getattr(model.separation_net, "config", None)
    hop = getattr(cfg, "hop_length", 0)
    align = hop * getattr(cfg, "time_downsample", 1) if hop else 1
    context = (3 * getattr(cfg, "context_frames", 0) + 3) // 4 * hop
    window = max(int(round(chunk_seconds * msr)), 1)
    requested = min(int(round(overlap_seconds * msr)), window - 1)
    margin = max((requested - requested // 2) // 2, context)
    overlap = 2 * margin + requested // 2
    window, overlap = aligned_sizes(max(window, overlap + align), overlap, align, hop)
    return window, overlap, overlap - 2 * margin


def _format(x: Tensor, kind: str, squeeze: bool, single: bool, ref):
    """x: Tensor[Q, C, T] -> the caller's layout and container."""
    if squeeze:
        x = x[:, 0]
    if single:
        x = x[0]
    if kind == "numpy":
        return x.numpy()
    if kind == "torch" and ref is not None:
        return x.to(ref.device)
    return x


def _write(result: Separation, paths: list[Path], overwrite: bool) -> list[Path]:
    def as_qct(a) -> Tensor:  # back to Tensor[Q, C, T]
        t = torch.as_tensor(a).detach().cpu()
        if result._single:
            t = t[None]
        return t[:, None] if result._squeezed else t

    est = as_qct(result.audio)
    res = None if result.residual is None else as_qct(result.residual)
    written = []
    for i, p in enumerate(paths):
        written.append(save_audio(p, est[i], result.sample_rate, overwrite=overwrite))
        if res is not None:
            written.append(save_audio(residual_path(p), res[i], result.sample_rate, overwrite=overwrite))
    return written
