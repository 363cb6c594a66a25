"""Markdown tables of benchmark results, side by side with the released AudioSep numbers."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Iterable

from .errors import BenchmarkError

SUMMARY_FILE = "summary.json"


def find_summaries(directory: str | os.PathLike) -> list[dict[str, Any]]:
    """Summaries in ``directory`` itself or its sub-folders (one level down), by benchmark name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise BenchmarkError(f"results folder {directory} does not exist; pass the --out folder of audiosep-bench run")
    paths = [directory / SUMMARY_FILE] if (directory / SUMMARY_FILE).is_file() else []
    paths += sorted(directory.glob(f"*/{SUMMARY_FILE}"))
    if not paths:
        raise BenchmarkError(
            f"no {SUMMARY_FILE} in {directory} or its sub-folders; run audiosep-bench run ... --out {directory} first"
        )
    return [json.loads(p.read_text()) for p in paths]


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def markdown_table(summaries: Iterable[dict[str, Any]]) -> str:
    """One row per benchmark: our SDRi / SI-SDR next to the released AudioSep numbers (dB)."""
    summaries = list(summaries)
    extra = sorted({m for s in summaries for m in ("pesq", "stoi") if m in s.get("scores", {})})
    head = ["benchmark", "items", "failed", "SDR", "SDRi", "SI-SDR", "SI-SDRi",
            "AudioSep SDRi", "AudioSep SI-SDR", *[m.upper() for m in extra]]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for s in summaries:
        sc, rel, n = s.get("scores", {}), s.get("released", {}), s.get("items", {})
        cells = [s["benchmark"], f"{n.get('scored', 0)}/{n.get('total', 0)}", str(n.get("failed", 0)),
                 _fmt(sc.get("sdr")), _fmt(sc.get("sdri")), _fmt(sc.get("si_sdr")), _fmt(sc.get("si_sdri")),
                 _fmt(rel.get("sdri")), _fmt(rel.get("si_sdr")), *[_fmt(sc.get(m)) for m in extra]]
        lines.append("| " + " | ".join(cells) + " |")
    models = sorted({s.get("model", {}).get("name", "?") for s in summaries})
    lines.append("")
    lines.append(f"Model: {', '.join(models)}. Scores in dB (reference protocol: SNR-style SDR, SI-SDR "
                 "without mean removal; AudioSet: median per class then mean; MUSIC: mean per instrument "
                 "then mean). AudioSep columns: the released model's published numbers.")
    return "\n".join(lines) + "\n"


def report(directory: str | os.PathLike) -> str:
    """The Markdown table of every run found in ``directory``."""
    return markdown_table(find_summaries(directory))
