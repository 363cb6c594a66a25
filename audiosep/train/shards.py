"""Writing training clips into tar shards (``audiosep-train shard``).

A shard folder holds ``train-000000.tar``, ``train-000001.tar``, ... and ``index.json``.
Each clip is one sample of two tar members sharing a key (its 9-digit number, counted from 0
over the whole folder in manifest order, bad files left out):

* ``KEY.json`` -- ``{"caption": ..., "labels": [...], "path": original path, "audio": ext}``, plus
  ``"captions": [...]`` when the record has phrasings (training draws one per item, see
  :mod:`~audiosep.train.shard_data`);
* ``KEY.EXT``  -- the audio file's bytes exactly as stored (``EXT`` is its format as
  libsndfile names it: ``flac``, ``wav``, ``ogg``, ``mp3``, ...). Nothing is re-encoded, so
  sharding is lossless and fast, shards are as large as the files, and the trainer resamples
  (as it does for files) when it decodes.

``index.json`` -- what training reads instead of the manifests -- lists each shard's name,
clip count and size, the total, and the source manifests. Manifests are streamed
(:func:`~audiosep.train.manifest.iter_manifest`): a ``.jsonl`` or ``.csv`` manifest of millions of
clips is never held in memory.

Each shard is written atomically and a progress file (``.shard-progress.json``) records the
finished shards, so an interrupted run continues where it stopped when run again with the same
manifests and shard size; ``index.json`` is written last.
"""
from __future__ import annotations

import io
import json
import os
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import soundfile

from ..errors import AudiosepError, UsageError
from ..files import atomic_path
from .manifest import ClipRecord, iter_manifest

INDEX_FILE = "index.json"
PROGRESS_FILE = ".shard-progress.json"
INDEX_FORMAT = "audiosep-shards"
INDEX_VERSION = 1
SHARD_PATTERN = "train-{:06d}.tar"
MAX_REPORTED = 20  # bad files named one per line; more are only counted


class ShardError(AudiosepError, ValueError):
    """Shards that cannot be written or read (no usable clip, a stale or foreign index)."""


@dataclass
class ShardSummary:
    """What :func:`write_shards` did; :meth:`format` is the one-line report."""

    out_dir: Path
    clips: int = 0
    shards: int = 0
    bytes: int = 0
    skipped: int = 0
    resumed_clips: int = 0
    shard_list: list[dict[str, Any]] = field(default_factory=list)

    def format(self) -> str:
        resumed = f" ({self.resumed_clips} of them by an earlier run)" if self.resumed_clips else ""
        return (f"wrote {self.clips} clips{resumed} in {self.shards} shards ({self.bytes / 1e6:.1f} MB) and "
                f"{self.out_dir / INDEX_FILE}; skipped {self.skipped} bad audio file(s)")


def _audio_member(record: ClipRecord) -> tuple[bytes, str]:
    """The file's bytes and its format's extension, or :class:`ValueError` saying why not."""
    if not record.path.is_file():
        raise ValueError("file not found")
    try:
        info = soundfile.info(str(record.path))
    except (RuntimeError, TypeError, ValueError, soundfile.SoundFileError) as err:
        raise ValueError(f"cannot decode ({' '.join(str(err).split())})") from None
    if info.frames <= 0:
        raise ValueError("empty (zero frames)")
    return record.path.read_bytes(), str(info.format).lower()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def _settings(manifests: Sequence[Path], shard_size: int | None, shard_mb: float | None) -> dict[str, Any]:
    return {"manifests": [str(m) for m in manifests], "shard_size": shard_size, "shard_mb": shard_mb}


def _prepare(out: Path, settings: dict[str, Any], overwrite: bool) -> dict[str, Any] | None:
    """Check ``out``; returns the progress of an interrupted run to continue (or None)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder for the shards")
    entries = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    ours = [n for n in entries if n in (INDEX_FILE, PROGRESS_FILE) or
            (n.startswith("train-") and n.endswith(".tar")) or n.endswith(".part")]
    foreign = sorted(set(entries) - set(ours))
    if foreign:
        raise UsageError(f"--out {out} holds other files ({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}); "
                         "choose an empty or new folder for the shards")
    if overwrite:
        for name in ours:
            (out / name).unlink()
        return None
    if (out / INDEX_FILE).is_file():
        raise UsageError(f"--out {out} already holds shards ({INDEX_FILE}); pass --overwrite to replace them "
                         "or choose another folder")
    progress_file = out / PROGRESS_FILE
    if progress_file.is_file():
        progress = json.loads(progress_file.read_text())
        if progress.get("settings") != settings:
            raise UsageError(f"--out {out} holds an unfinished run with other settings ({progress.get('settings')}); "
                             "rerun with those to continue it, or pass --overwrite to start again")
        return progress
    if any(n.endswith(".tar") for n in ours):
        raise UsageError(f"--out {out} holds shards without {INDEX_FILE}; pass --overwrite to replace them")
    return None


def _records(manifests: Sequence[Path]) -> Iterator[ClipRecord]:
    for manifest in manifests:
        yield from iter_manifest(manifest)


def write_shards(manifests: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *,
                 shard_size: int | None = 1000, shard_mb: float | None = None, overwrite: bool = False,
                 progress: bool = True, report: Callable[[str], None] | None = None) -> ShardSummary:
    """Write the manifests' clips into tar shards and an index (see the module docstring).

    Parameters
    ----------
    manifests : sequence of path
        ``.json``, ``.jsonl`` or ``.csv`` manifests (:mod:`audiosep.train.manifest`).
    out_dir : path
        A new or empty folder, or the folder of an interrupted run with the same settings
        (it is continued), or (with ``overwrite``) a folder of earlier shards (they are removed).
    shard_size : int, optional
        Clips per shard (the last shard holds the rest).
    shard_mb : float, optional
        Or: start a new shard once a shard holds this many megabytes (10**6 bytes) of audio.
    overwrite : bool
    progress : bool
        Show a progress bar (on stderr).
    report : callable, optional
        Called with one line per bad audio file (the first :data:`MAX_REPORTED`); default: printed
        on stderr above the progress bar.

    Returns
    -------
    ShardSummary

    Raises
    ------
    UsageError
        A bad ``out_dir`` or shard size.
    ShardError
        When no clip has usable audio.
    """
    from tqdm import tqdm

    if (shard_size is None) == (shard_mb is None):
        raise UsageError("give one of --shard-size (clips per shard) and --shard-mb")
    if shard_size is not None and shard_size < 1:
        raise UsageError(f"--shard-size must be >= 1, got {shard_size}")
    if shard_mb is not None and not shard_mb > 0:
        raise UsageError(f"--shard-mb must be > 0, got {shard_mb:g}")
    paths = [Path(m).expanduser().absolute() for m in manifests]
    if not paths:
        raise UsageError("no manifests given; pass at least one .json, .jsonl or .csv file")
    for p in paths:  # every manifest exists before anything is written
        iter_manifest(p)
    out = Path(out_dir)
    settings = _settings(paths, shard_size, shard_mb)
    state = _prepare(out, settings, overwrite) or {"settings": settings, "records_read": 0, "skipped": 0, "shards": []}
    out.mkdir(parents=True, exist_ok=True)
    summary = ShardSummary(out_dir=out, skipped=state["skipped"], shard_list=list(state["shards"]))
    summary.resumed_clips = sum(s["count"] for s in summary.shard_list)
    limit_bytes = None if shard_mb is None else shard_mb * 1e6
    bar = tqdm(desc=f"sharding into {out}", unit=" clips", disable=not progress, dynamic_ncols=True)
    say = report or (lambda line: bar.write(line, file=sys.stderr))
    records = _records(paths)
    read = 0
    for _ in range(state["records_read"]):  # done by the interrupted run
        next(records)
        read += 1
    bar.update(read)
    key = summary.resumed_clips
    pending = True
    try:
        while pending:
            name = SHARD_PATTERN.format(len(summary.shard_list))
            count = size = 0
            with atomic_path(out / name) as tmp:
                with tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
                    for record in records:
                        read += 1
                        bar.update(1)
                        try:
                            audio, ext = _audio_member(record)
                        except ValueError as err:
                            summary.skipped += 1
                            if summary.skipped <= MAX_REPORTED:
                                say(f"skipped {record.path}: {err}")
                            elif summary.skipped == MAX_REPORTED + 1:
                                say("(further bad files are only counted)")
                            continue
                        meta = {"caption": record.caption, "labels": list(record.labels),
                                "path": str(record.path), "audio": ext}
                        if record.captions:
                            meta["captions"] = list(record.captions)
                        _add(tar, f"{key:09d}.json", json.dumps(meta, ensure_ascii=False).encode())
                        _add(tar, f"{key:09d}.{ext}", audio)
                        key, count, size = key + 1, count + 1, size + len(audio)
                        if count == shard_size or (limit_bytes is not None and size >= limit_bytes):
                            break
                    else:
                        pending = False
                if count == 0:
                    raise _Empty
            summary.shard_list.append({"name": name, "count": count, "bytes": (out / name).stat().st_size})
            state.update(records_read=read, skipped=summary.skipped, shards=summary.shard_list)
            with atomic_path(out / PROGRESS_FILE) as tmp:
                tmp.write_text(json.dumps(state))
    except _Empty:
        pass
    finally:
        bar.close()
    if not summary.shard_list:
        (out / PROGRESS_FILE).unlink(missing_ok=True)
        raise ShardError(f"none of the {read} clips of {', '.join(map(str, paths))} has usable audio "
                         "(see the lines above); fix the paths or the audio files")
    summary.clips = sum(s["count"] for s in summary.shard_list)
    summary.shards = len(summary.shard_list)
    summary.bytes = sum(s["bytes"] for s in summary.shard_list)
    index = {"format": INDEX_FORMAT, "version": INDEX_VERSION, "total": summary.clips,
             "shards": summary.shard_list, "manifests": settings["manifests"], "skipped": summary.skipped}
    with atomic_path(out / INDEX_FILE) as tmp:
        tmp.write_text(json.dumps(index, indent=1) + "\n")
    (out / PROGRESS_FILE).unlink(missing_ok=True)
    return summary


class _Empty(Exception):
    """The manifests ended exactly at a shard boundary: the started shard is dropped."""
