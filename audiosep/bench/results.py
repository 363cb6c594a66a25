"""The per-item results CSV: written row by row (flushed), read back to resume a run."""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Iterable, Mapping

from ..files import atomic_path
from .errors import BenchmarkError

BASE_COLUMNS = ("key", "query", "group", "sdr", "sdr_mixture", "sdri", "si_sdr", "si_sdr_mixture", "si_sdri")
CLASS_COLUMN = "class"  # the item's class (custom item lists), after "group"
SWAP_COLUMNS = ("sdr_other", "own_closer")  # SDR against the mixture's other source; 1 if sdr > sdr_other
SCORE_COLUMNS = ("sdr", "sdr_mixture", "sdri", "si_sdr", "si_sdr_mixture", "si_sdri", "sdr_other", "pesq", "stoi")


def results_columns(extras: Iterable[str] = (), *, with_class: bool = False, with_swap: bool = False) -> list[str]:
    """Columns of a new per-item CSV: the base ones, ``class``, the query-swap ones, then ``extras``."""
    cols = list(BASE_COLUMNS)
    if with_class:
        cols.insert(cols.index("group") + 1, CLASS_COLUMN)
    if with_swap:
        cols += SWAP_COLUMNS
    return cols + list(extras)


def _format(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "nan" if math.isnan(value) else repr(value)  # repr round-trips floats exactly
    return str(value)


class ResultsFile:
    """Append-only per-item CSV with an ``error`` column.

    Parameters
    ----------
    path : path
    columns : sequence of str
        Columns for a new file (``error`` is appended). An existing file keeps its own header,
        widened by the columns it lacks (its rows get them empty).
    required : sequence of str
        Columns a row must have filled to count as done: rows written before a column was added
        (an older version, or an item list that gained ``other_source``) are scored again.
    """

    def __init__(self, path: str | os.PathLike, columns: Iterable[str], required: Iterable[str] = ()) -> None:
        self.path = Path(path)
        self.rows: dict[str, dict[str, str]] = {}  # key -> last row written for it
        self.required = tuple(required)
        columns = list(columns)
        if self.path.exists() and self.path.stat().st_size:
            self._read_existing()
            missing = [c for c in columns if c not in self.columns]
            if missing:
                self._widen(missing)
        else:
            self.columns = [*columns, "error"]
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerow(self.columns)
        self._file = open(self.path, "a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._file, fieldnames=self.columns, extrasaction="ignore")

    def _read_existing(self) -> None:
        text = self.path.read_text(encoding="utf-8")
        if not text.endswith("\n"):  # a row cut short by an interruption: drop it
            text = text[: text.rfind("\n") + 1]
            self.path.write_text(text, encoding="utf-8")
        reader = csv.reader(text.splitlines())
        header = next(reader, None)
        if not header or "key" not in header or "error" not in header:
            raise BenchmarkError(
                f"{self.path} is not a per-item results file of audiosep-bench; pass another --out folder"
            )
        self.columns = header
        for values in reader:
            if len(values) == len(header):
                row = dict(zip(header, values))
                self.rows[row["key"]] = row

    def _widen(self, missing: list[str]) -> None:
        """Rewrite the file (atomically) with ``missing`` columns added before ``error``."""
        at = self.columns.index("error")
        self.columns = self.columns[:at] + missing + self.columns[at:]
        with atomic_path(self.path) as tmp:
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, fieldnames=self.columns, restval="")
                writer.writeheader()
                writer.writerows(self.rows.values())
        self.rows = {k: {c: r.get(c, "") for c in self.columns} for k, r in self.rows.items()}

    def done(self) -> set[str]:
        """Keys of items already scored without error and with every required column filled
        (items that failed, or were scored before a required column existed, are tried again)."""
        return {k for k, r in self.rows.items() if not r.get("error") and all(r.get(c) for c in self.required)}

    def write(self, row: Mapping[str, object]) -> None:
        """Append one row and flush it to disk."""
        values = {c: _format(row.get(c)) for c in self.columns}
        self._writer.writerow(values)
        self._file.flush()
        self.rows[values["key"]] = values

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> "ResultsFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_row(row: Mapping[str, str]) -> dict[str, object]:
    """A CSV row with its score columns as floats (empty -> None), ``own_closer`` as bool (empty ->
    None) and an empty group as None."""
    out: dict[str, object] = dict(row)
    for c in SCORE_COLUMNS:
        if c in row:
            out[c] = float(row[c]) if row[c] != "" else None
    out["group"] = row.get("group") or None
    if "own_closer" in row:
        out["own_closer"] = bool(int(row["own_closer"])) if row["own_closer"] != "" else None
    return out
