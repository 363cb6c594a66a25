"""Markdown tables of benchmark results, side by side with the released AudioSep numbers.

Runs of item lists with ``other_source`` add an "own closer" column (the query-swap check), and
runs with classes a per-class section (n, SDRi, SI-SDR, own closer per class).
"""
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
    return [_read_summary(p) for p in paths]


def _read_summary(path: Path) -> dict[str, Any]:
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        summary = err
    if not isinstance(summary, dict) or not isinstance(summary.get("benchmark"), str):
        why = f" ({summary})" if isinstance(summary, Exception) else ""
        raise BenchmarkError(f"{path} is not a summary of audiosep-bench run{why}; rerun that benchmark "
                             "into its folder, or delete the file")
    return summary


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}"


def _pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{100 * value:.1f} %"


def _swap_cell(summary: dict[str, Any]) -> str:
    swap = summary.get("query_swap")
    return f"{_pct(swap['own_closer'])} of {swap['n']}" if swap else "–"


def _class_section(summary: dict[str, Any]) -> list[str]:
    """Heading, query-swap line and per-class table of one run (empty if it has neither)."""
    swap, classes = summary.get("query_swap"), summary.get("per_class")
    if not swap and not classes:
        return []
    lines = ["", f"### {summary['benchmark']}", ""]
    if swap:
        line = (f"Query swap: the estimate is closer (SDR) to its own source than to the mixture's other "
                f"source for {_pct(swap['own_closer'])} of {swap['n']} items (mean margin "
                f"{_fmt(swap.get('margin'), 2)} dB)")
        if swap.get("mixtures"):
            line += (f"; every query of the mixture passes for {_pct(swap['mixtures_all_own_closer'])} of "
                     f"{swap['mixtures']} mixtures")
        lines += [line + ".", ""]
    if classes:
        lines += ["| class | n | SDRi | SI-SDR | own closer |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {c['class']} | {c['n']} | {_fmt(c['sdri'])} | {_fmt(c['si_sdr'])} | {_pct(c.get('own_closer'))} |"
                  for c in classes]
    return lines


def markdown_table(summaries: Iterable[dict[str, Any]]) -> str:
    """One row per benchmark: our SDRi / SI-SDR next to the released AudioSep numbers (dB), then
    for runs that have them the query-swap result and the per-class table."""
    summaries = list(summaries)
    extra = sorted({m for s in summaries for m in ("pesq", "stoi") if m in s.get("scores", {})})
    swap = any(s.get("query_swap") for s in summaries)
    head = ["benchmark", "items", "failed", "SDR", "SDRi", "SI-SDR", "SI-SDRi",
            "AudioSep SDRi", "AudioSep SI-SDR", *[m.upper() for m in extra], *(["own closer"] if swap else [])]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    for s in summaries:
        sc, rel, n = s.get("scores", {}), s.get("released", {}), s.get("items", {})
        cells = [s["benchmark"], f"{n.get('scored', 0)}/{n.get('total', 0)}", str(n.get("failed", 0)),
                 _fmt(sc.get("sdr")), _fmt(sc.get("sdri")), _fmt(sc.get("si_sdr")), _fmt(sc.get("si_sdri")),
                 _fmt(rel.get("sdri")), _fmt(rel.get("si_sdr")), *[_fmt(sc.get(m)) for m in extra],
                 *([_swap_cell(s)] if swap else [])]
        lines.append("| " + " | ".join(cells) + " |")
    models = sorted({s.get("model", {}).get("name", "?") for s in summaries})
    lines.append("")
    lines.append(f"Model: {', '.join(models)}. Scores in dB (reference protocol: SNR-style SDR, SI-SDR "
                 "without mean removal; AudioSet: median per class then mean; MUSIC: mean per instrument "
                 "then mean). AudioSep columns: the released model's published numbers."
                 + (" Own closer: share of items whose estimate is closer (SDR) to its own source than to "
                    "the mixture's other source (query swap)." if swap else ""))
    for s in summaries:
        lines += _class_section(s)
    return "\n".join(lines) + "\n"


def report(directory: str | os.PathLike) -> str:
    """The Markdown table of every run found in ``directory``."""
    return markdown_table(find_summaries(directory))
