"""One model on the recipe's three benchmark lists, and the generalisation table.

``python -m audiosep.recipes.debian_sounds evaluate --bench DIR --model MODEL --out RESULTS`` runs
``audiosep-bench``'s runner on each list that ``DIR`` holds (training captions, held-out
phrasings, held-out packages; see :mod:`.mixtures`), one results folder per list under
``RESULTS`` (a rerun resumes them), then prints and writes ``RESULTS/generalisation.md``: one row
per list (SDRi, SI-SDRi, own-source-closer share) and one row per class with the three lists side
by side. Run it for two models into two folders to compare them.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

from ...errors import UsageError
from ...files import atomic_path
from .mixtures import HELDOUT_PACKAGES, HELDOUT_PHRASINGS, TRAIN_CAPTIONS

#: (file, name in the table) of the lists, in table order.
LISTS = ((TRAIN_CAPTIONS, "training captions"), (HELDOUT_PHRASINGS, "held-out phrasings"),
         (HELDOUT_PACKAGES, "held-out packages"))
REPORT_FILE = "generalisation.md"


def _db(x: Any) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def _pct(x: Any) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f} %"


def generalisation_table(summaries: Mapping[str, Mapping[str, Any]], model: str, note: str = "") -> str:
    """Markdown: the lists' scores, then per class.

    Parameters
    ----------
    summaries : mapping
        List name (the second item of :data:`LISTS`) -> its ``audiosep-bench`` summary.
    model : str
        Named in the heading.
    note : str
        A line printed under the heading (e.g. "held-out packages were in this model's training data").
    """
    lines = [f"## {model}", ""] + ([note, ""] if note else [])
    lines += ["| list | items | SDRi | SI-SDRi | own source closer |", "|---|---:|---:|---:|---:|"]
    for name, s in summaries.items():
        sc, swap = s.get("scores", {}), s.get("query_swap") or {}
        lines.append(f"| {name} | {s['items']['scored']} | {_db(sc.get('sdri'))} | {_db(sc.get('si_sdri'))} "
                     f"| {_pct(swap.get('own_closer'))} |")
    per: dict[str, dict[str, Mapping[str, Any]]] = {}
    for name, s in summaries.items():
        for row in s.get("per_class", []):
            per.setdefault(row["class"], {})[name] = row
    names = list(summaries)
    lines += ["", "Per class: SDRi / SI-SDRi (dB) / own source closer (items).", "",
              "| class | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for label in sorted(per):
        cells = []
        for name in names:
            r = per[label].get(name)
            cells.append("–" if r is None else
                         f"{_db(r['sdri'])} / {_db(r.get('si_sdri'))} / {_pct(r.get('own_closer'))} ({r['n']})")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def evaluate(bench: Path, model_name: str, out: Path, *, batch_size: int = 4, limit: int | None = None,
             device: str = "cpu", progress: bool = True, note: str = "") -> str:
    """Run ``model_name`` (a bundle name or ``save_pretrained`` folder) on the lists in ``bench``;
    write ``out/<list stem>/`` results and ``out/generalisation.md``; return the table.

    Raises
    ------
    UsageError
        If ``bench`` holds none of the lists.
    """
    from ...bench import prepare_benchmark, run_benchmark
    from ...model import AudioSep

    found = [(bench / f, name) for f, name in LISTS if (bench / f).is_file()]
    if not found:
        raise UsageError(f"{bench} holds none of {[f for f, _ in LISTS]}; write them with "
                         "`python -m audiosep.recipes.debian_sounds benchmark --data DATASET --out DIR`")
    plans = [(prepare_benchmark("custom", metadata=path, limit=limit), name) for path, name in found]
    model = AudioSep.from_pretrained(model_name, device=device)
    summaries = {}
    for plan, name in plans:
        summaries[name] = run_benchmark(plan, model, out_dir=out / Path(plan.metadata).stem, batch_size=batch_size,
                                        model_name=model_name, progress=progress)
    table = generalisation_table(summaries, model_name, note)
    with atomic_path(out / REPORT_FILE) as tmp:
        tmp.write_text(table)
    return table
