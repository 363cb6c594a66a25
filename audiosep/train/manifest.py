"""Training manifests: lists of (audio file, caption, labels) records.

Three formats, chosen by the file suffix:

* ``.json``  -- the reference format ``{"data": [{"wav": path, "caption": text}, ...]}``
  (a top-level list of such objects is accepted too);
* ``.jsonl`` -- one such object per line (blank lines are skipped);
* ``.csv``   -- a header row, then one record per row.

Accepted keys / column names (case-insensitive):

* audio path: ``path``, ``wav`` or ``audio`` (required);
* caption: ``caption`` or ``text``;
* labels: ``labels`` or ``label`` (optional). In CSV, and wherever labels are a string, several
  labels are separated by ``";"`` (commas are common inside AudioSet label names such as
  "Vehicle horn, car horn, honking", so they are not separators). In JSON they may also be a list;
* phrasings: ``captions`` (optional): other phrasings of the same sound, a list of strings in
  JSON, or ``";"``-separated in a string. Training draws one of them per item
  (:class:`~audiosep.train.dataset.ClipDataset`); validation uses ``caption``.

Other keys (e.g. ``package``, written by the Debian sounds recipe) are ignored.

A record needs a caption or at least one label; when the caption is missing or empty it is made
from the labels joined with ``", "``. Relative audio paths are resolved against the folder that
holds the manifest. Every error names the manifest, the record (JSON item, line or CSV row) and
the problem.
"""
from __future__ import annotations

import csv
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..errors import AudiosepError

PATH_KEYS = ("path", "wav", "audio")
CAPTION_KEYS = ("caption", "text")
LABEL_KEYS = ("labels", "label")
PHRASING_KEYS = ("captions",)
LABEL_SEPARATOR = ";"
SUFFIXES = (".json", ".jsonl", ".csv")
MAX_CHECKED = 10_000  # audio files whose existence check_audio_files looks at (evenly spread)


class ManifestError(AudiosepError, ValueError):
    """A manifest that cannot be read: unknown format, bad syntax, or a malformed record."""


@dataclass(frozen=True)
class ClipRecord:
    """One training clip.

    Attributes
    ----------
    path : Path
        Absolute path of the audio file.
    caption : str
        The text query describing the clip.
    labels : tuple of str
        Class labels (possibly empty); used to keep same-class clips apart when mixing.
    captions : tuple of str
        Phrasings training draws the item's query from (empty: always ``caption``).
    """

    path: Path
    caption: str
    labels: tuple[str, ...] = ()
    captions: tuple[str, ...] = ()


def _accepted() -> str:
    return (
        f"accepted names: audio path {'/'.join(PATH_KEYS)}, caption {'/'.join(CAPTION_KEYS)}, "
        f"labels {'/'.join(LABEL_KEYS)} (optional, separated by {LABEL_SEPARATOR!r}), "
        f"phrasings {'/'.join(PHRASING_KEYS)} (optional, a list or separated by {LABEL_SEPARATOR!r})"
    )


def _pick(entry: dict[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        if key in entry and entry[key] is not None:
            return entry[key]
    return None


def _parse_labels(value: Any, where: str, what: str = "labels") -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        parts = value.split(LABEL_SEPARATOR)
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        parts = list(value)
    else:
        raise ManifestError(f"{where}: {what} must be a string or a list of strings, got {value!r}")
    return tuple(p.strip() for p in parts if p.strip())


def _to_record(entry: Any, base: Path, where: str) -> ClipRecord:
    if not isinstance(entry, dict):
        raise ManifestError(f"{where}: expected an object with keys like 'wav' and 'caption', got {entry!r}")
    entry = {str(k).strip().lower(): v for k, v in entry.items()}
    path = _pick(entry, PATH_KEYS)
    if path is None or (isinstance(path, str) and not path.strip()):
        raise ManifestError(f"{where}: missing the audio path; {_accepted()}")
    if not isinstance(path, str):
        raise ManifestError(f"{where}: the audio path must be a string, got {path!r}")
    labels = _parse_labels(_pick(entry, LABEL_KEYS), where)
    caption = _pick(entry, CAPTION_KEYS)
    if caption is not None and not isinstance(caption, str):
        raise ManifestError(f"{where}: the caption must be a string, got {caption!r}")
    captions = tuple(dict.fromkeys(_parse_labels(_pick(entry, PHRASING_KEYS), where, "captions")))
    caption = (caption or "").strip()
    if not caption:
        if captions:
            caption = captions[0]
        elif not labels:
            raise ManifestError(f"{where}: missing the caption (and no labels to make one from); {_accepted()}")
        else:
            caption = ", ".join(labels)
    audio = Path(path.strip()).expanduser()
    if not audio.is_absolute():
        audio = base / audio
    return ClipRecord(path=Path(os.path.normpath(audio)), caption=caption, labels=labels, captions=captions)


def _json_entries(path: Path) -> Iterator[tuple[Any, str]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as err:
        raise ManifestError(f"{path}: invalid JSON at line {err.lineno} ({err.msg}); fix the syntax") from None
    items = doc.get("data") if isinstance(doc, dict) else doc
    if not isinstance(items, list):
        raise ManifestError(f'{path}: expected {{"data": [{{"wav": ..., "caption": ...}}, ...]}} or a list of records')
    for i, item in enumerate(items):
        yield item, f"{path}, data item {i}"


def _jsonl_entries(path: Path) -> Iterator[tuple[Any, str]]:
    with path.open(encoding="utf-8-sig") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as err:
                raise ManifestError(
                    f"{path}, line {lineno}: invalid JSON ({err.msg}); write one object per line"
                ) from None
            yield item, f"{path}, line {lineno}"


def _csv_entries(path: Path) -> Iterator[tuple[Any, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None:
            raise ManifestError(f"{path}: empty CSV; the first row must be a header; {_accepted()}")
        header = {str(n).strip().lower() for n in reader.fieldnames}
        if not header & set(PATH_KEYS):
            raise ManifestError(f"{path}: the header has no audio path column (got {reader.fieldnames}); {_accepted()}")
        if not header & (set(CAPTION_KEYS) | set(LABEL_KEYS) | set(PHRASING_KEYS)):
            raise ManifestError(f"{path}: the header has no caption column (got {reader.fieldnames}); {_accepted()}")
        for row in reader:
            if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
                continue
            yield row, f"{path}, row at line {reader.line_num}"


_READERS = {".json": _json_entries, ".jsonl": _jsonl_entries, ".csv": _csv_entries}


def iter_manifest(path: str | os.PathLike) -> Iterator[ClipRecord]:
    """The records of one manifest, one at a time (``.jsonl`` and ``.csv`` are read line by line,
    so a manifest of millions of clips is never held in memory; ``.json`` is one object and is
    parsed whole).

    Parameters
    ----------
    path : path
        The manifest; relative audio paths inside are resolved against its folder.

    Yields
    ------
    ClipRecord
        In file order.

    Raises
    ------
    FileNotFoundError
        If the manifest does not exist (raised before the first record).
    ManifestError
        On an unknown suffix, bad syntax, a malformed record (when it is reached), or a manifest
        without records (at its end).
    """
    path = Path(path).expanduser().absolute()
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise ManifestError(f"{path}: unknown manifest format {path.suffix!r}; use one of {', '.join(SUFFIXES)}")
    if path.is_dir():
        raise ManifestError(f"manifest {path} is a folder; list the manifest file itself")
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}; check the path")
    return _records(path, reader)


def _records(path: Path, reader) -> Iterator[ClipRecord]:
    count = 0
    try:
        for entry, where in reader(path):
            yield _to_record(entry, path.parent, where)
            count += 1
    except UnicodeDecodeError as err:
        raise ManifestError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8") from None
    except csv.Error as err:
        raise ManifestError(f"{path}: invalid CSV ({err}); fix the syntax") from None
    if not count:
        raise ManifestError(f"{path}: the manifest holds no records; add at least one clip")


def read_manifest(path: str | os.PathLike) -> list[ClipRecord]:
    """Read one manifest (``.json``, ``.jsonl`` or ``.csv``; see the module docstring).

    Parameters
    ----------
    path : path
        The manifest; relative audio paths inside are resolved against its folder.

    Returns
    -------
    list of ClipRecord
        In file order; never empty.

    Raises
    ------
    FileNotFoundError
        If the manifest does not exist.
    ManifestError
        On an unknown suffix, bad syntax, a malformed record, or a manifest without records.
    """
    return list(iter_manifest(path))


def read_manifests(paths: Sequence[str | os.PathLike]) -> list[ClipRecord]:
    """Read several manifests and concatenate their records in order.

    Parameters
    ----------
    paths : sequence of path

    Returns
    -------
    list of ClipRecord
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise ManifestError("no manifests given; pass at least one .json, .jsonl or .csv file")
    records: list[ClipRecord] = []
    for p in paths:
        records.extend(read_manifest(p))
    return records


def check_audio_files(records: Sequence[ClipRecord], manifests: Sequence[str | os.PathLike],
                      key: str = "data.train_manifests") -> int:
    """Check that the records' audio files exist, before any is decoded.

    All files are looked at, or :data:`MAX_CHECKED` evenly spread ones of a longer list.

    Parameters
    ----------
    records : sequence of ClipRecord
    manifests : sequence of path
        The manifests the records come from (named in the messages).
    key : str
        The config key that lists ``manifests`` (named in the messages).

    Returns
    -------
    int
        How many of the files looked at are missing (a warning names the count and the first).

    Raises
    ------
    ManifestError
        When none of the files looked at exists.
    """
    if isinstance(manifests, (str, os.PathLike)):
        manifests = [manifests]
    checked = list(records)[:: max(1, math.ceil(len(records) / MAX_CHECKED))]
    missing = [r.path for r in checked if not r.path.is_file()]
    if not missing:
        return 0
    listed = f"listed in {key} ({', '.join(str(m) for m in manifests)})"
    counted = f"{len(checked)} audio files" + (f" checked (of {len(records)})" if len(checked) < len(records) else "")
    if len(records) == 1:
        raise ManifestError(f"the audio file {listed} does not exist: {missing[0]}; a relative path in a manifest "
                            "is read from the manifest's folder: fix the path, or put the audio file there")
    if len(missing) == len(checked):
        raise ManifestError(
            f"none of the {counted} {listed} exists (the first: {missing[0]}); a relative path in a manifest "
            "is read from the manifest's folder: fix the paths, or put the audio files there"
        )
    warnings.warn(f"{len(missing)} of the {counted} {listed} are missing (the first: {missing[0]}); "
                  "training skips them", RuntimeWarning, stacklevel=2)
    return len(missing)
