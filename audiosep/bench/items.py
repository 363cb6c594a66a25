"""Turning a benchmark's metadata into items: (key, mixture file, source file, query, group).

Custom item lists may add ``other_source`` (the mixture's other source, for the query-swap
check) and ``class`` (the label the per-class table is grouped by; ``group`` when absent).
"""
from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from .errors import BenchmarkDataError, MetadataError
from .specs import BenchmarkSpec

VOICEBANK_NOISY = "noisy_testset_wav"
VOICEBANK_CLEAN = "clean_testset_wav"


@dataclass(frozen=True)
class Item:
    """One evaluation item.

    Attributes
    ----------
    key : str
        Unique within the benchmark; the per-item CSV and resuming use it.
    mixture, source : tuple of Path
        Candidate paths of the mixture and the target source; the first existing one is used
        (most layouts have exactly one candidate).
    query : str
    group : str or None
        Aggregation group (AudioSet class id, MUSIC instrument).
    other_source : tuple of Path or None
        Candidate paths of the mixture's other source (custom ``other_source`` column): the runner
        then also scores the estimate against it (``sdr_other``, ``own_closer``).
    label : str or None
        Class of the target source for the per-class table (custom ``class`` column, else ``group``).
    """

    key: str
    mixture: tuple[Path, ...]
    source: tuple[Path, ...]
    query: str
    group: str | None = None
    other_source: tuple[Path, ...] | None = None
    label: str | None = None

    @staticmethod
    def resolve(candidates: tuple[Path, ...]) -> Path:
        for path in candidates:
            if path.is_file():
                return path
        return candidates[0]


def read_rows(path: str | os.PathLike) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a CSV (rows, not dicts: a reference CSV repeats a column name).

    A UTF-8 byte-order mark is skipped and blank rows are ignored. Every row must have as many
    columns as the header (trailing empty ones aside), and there must be at least one row.
    """
    path = Path(path)
    rows: list[list[str]] = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            while header and not header[-1]:  # a trailing comma
                header.pop()
            for row in reader:
                if not any(c.strip() for c in row):
                    continue
                while len(row) > len(header) and not row[-1].strip():
                    row = row[:-1]
                if len(row) != len(header):
                    raise MetadataError(
                        f"item list {path}, line {reader.line_num}: {len(row)} columns where the header has "
                        f"{len(header)} ({', '.join(header)}); fill in the row, and quote values that hold commas"
                    )
                rows.append(row)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise MetadataError(f"cannot read the item list {path} ({err}); pass a valid CSV with --metadata") from None
    if not header:
        raise MetadataError(f"item list {path} is empty; pass the benchmark's CSV with --metadata")
    if not rows:
        raise MetadataError(f"item list {path} has a header but no items; add one row per item")
    return header, rows


def _column(header: list[str], name: str, path: Path) -> int:
    if name not in header:
        raise MetadataError(
            f"item list {path} has no column {name!r} (columns: {', '.join(header)}); pass the right "
            "CSV with --metadata"
        )
    return header.index(name)


def _last_parts(p: str, n: int) -> PurePosixPath:
    return PurePosixPath(*PurePosixPath(p.replace("\\", "/")).parts[-n:])


def read_items(spec: BenchmarkSpec, data_dir: str | os.PathLike, metadata: str | os.PathLike | None) -> list[Item]:
    """The items of ``spec`` with files under ``data_dir`` (the set's folder).

    ``metadata`` is the item list (required for every layout but ``voicebank``); for ``custom``
    the paths in it are relative to the CSV's folder and ``data_dir`` is ignored.
    """
    data_dir = Path(data_dir)
    if spec.layout == "voicebank":
        return _voicebank_items(spec, data_dir)
    if metadata is None:
        raise MetadataError(f"benchmark {spec.name!r} needs an item list; pass it with --metadata")
    metadata = Path(metadata)
    header, rows = read_rows(metadata)

    def col(name: str) -> int:
        return _column(header, name, metadata)

    items = []
    if spec.layout == "premixed":
        i_idx, i_q = col("idx"), col(spec.query_column)
        i_g = col(spec.group_column) if spec.group_column else None
        for r in rows:
            idx = r[i_idx].strip()
            items.append(Item(idx, (data_dir / f"mixture-{idx}.wav",), (data_dir / f"segment-{idx}.wav",),
                              r[i_q], r[i_g] if i_g is not None else None))
    elif spec.layout == "audioset":
        # Paths in the CSV start with the reference's "evaluation/data/audioset/"; keep the last two parts.
        i_src, i_mix, i_q, i_g = col("src_wav"), col("noise_wav"), col(spec.query_column), col(spec.group_column)
        for r in rows:
            mix, src = _last_parts(r[i_mix], 2), _last_parts(r[i_src], 2)
            key = mix.name.removesuffix(".wav").removesuffix(",mixture")
            items.append(Item(key, (data_dir / mix,), (data_dir / src,), r[i_q], r[i_g].strip()))
    elif spec.layout == "vggsound":
        i_id, i_mix, i_src, i_q = col("file_id"), col("mix_wav"), col("s0_wav"), col(spec.query_column)
        for r in rows:
            mix, src = PurePosixPath(r[i_mix]), PurePosixPath(r[i_src])
            items.append(Item(r[i_id], (data_dir / mix, data_dir / _last_parts(str(mix), 2)),
                              (data_dir / src, data_dir / _last_parts(str(src), 2)), r[i_q]))
    elif spec.layout == "custom":
        base = metadata.parent
        i_mix, i_src, i_q = col("mixture"), col("source"), col("query")
        i_g = header.index("group") if "group" in header else None
        i_other = header.index("other_source") if "other_source" in header else None
        i_label = header.index("class") if "class" in header else i_g
        for n, r in enumerate(rows):
            other = None
            if i_other is not None:
                if not r[i_other].strip():
                    raise MetadataError(
                        f"item {n} of {metadata} has an empty other_source; fill it in, or drop "
                        "the other_source column to skip the query-swap check"
                    )
                other = (base / r[i_other].strip(),)
            items.append(Item(str(n), (base / r[i_mix].strip(),), (base / r[i_src].strip(),), r[i_q],
                              r[i_g] if i_g is not None else None, other,
                              (r[i_label].strip() or None) if i_label is not None else None))
    else:  # pragma: no cover - guarded by BenchmarkSpec
        raise ValueError(spec.layout)
    keys = [it.key for it in items]
    if len(set(keys)) != len(keys):
        raise MetadataError(f"item list {metadata} names some items twice; remove the duplicate rows")
    for it in items:
        if not it.query.strip():
            raise MetadataError(f"item {it.key!r} of {metadata} has an empty query; fill in its {spec.query_column} column")
    return items


def _voicebank_items(spec: BenchmarkSpec, data_dir: Path) -> list[Item]:
    clean, noisy = data_dir / VOICEBANK_CLEAN, data_dir / VOICEBANK_NOISY
    if not clean.is_dir() or not noisy.is_dir():
        raise BenchmarkDataError(
            f"Voicebank-DEMAND test set not found in {data_dir}: expected {spec.layout_help(str(data_dir.parent))}. "
            f"Get it from {spec.source}, or pass --data-root"
        )
    names = sorted(p.name for p in clean.iterdir() if p.suffix.lower() == ".wav")
    if not names:
        raise BenchmarkDataError(f"{clean} holds no .wav files; unpack the Voicebank-DEMAND clean test set there")
    return [Item(Path(n).stem, (noisy / n,), (clean / n,), spec.query_column) for n in names]


def check_data(spec: BenchmarkSpec, data_dir: Path, items: list[Item]) -> None:
    """Raise a :class:`BenchmarkDataError` naming the layout when the data is clearly not there
    (missing folder, or not one mixture found); single missing files are left to the runner,
    which reports and counts them."""
    where = f"Get the data from {spec.source}, then pass --data-root (or set AUDIOSEP_DATA)."
    if spec.layout != "custom" and not data_dir.is_dir():
        raise BenchmarkDataError(
            f"benchmark {spec.name!r}: data folder {data_dir} does not exist; expected "
            f"{spec.layout_help(str(data_dir.parent))}. {where}"
        )
    if items and not any(Item.resolve(it.mixture).is_file() for it in items):
        first = items[0].mixture[0]
        raise BenchmarkDataError(
            f"benchmark {spec.name!r}: none of the {len(items)} mixtures was found (the first should be "
            f"{first}); expected {spec.layout_help(str(data_dir.parent))}. {where}"
        )
