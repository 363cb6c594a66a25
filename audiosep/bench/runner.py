"""The one benchmark runner: items -> batched separation -> per-item scores -> summary.

>>> from audiosep.bench import run_benchmark
>>> summary = run_benchmark("clotho", model, data_root="evaluation/data", out_dir="bench")  # doctest: +SKIP

Outputs in ``out_dir``: ``items.csv`` (one row per item, written and flushed as it is scored,
with an ``error`` column for items that could not be read), ``summary.json`` and ``run.json``
(the model and protocol the folder belongs to). Running again into the same folder resumes:
items already scored are skipped, and the summary is the one an uninterrupted run would give.

Custom item lists with an ``other_source`` column also get the query-swap check per item
(``sdr_other``: SDR of the estimate against the mixture's other source; ``own_closer``:
``sdr > sdr_other``) and in the summary (``query_swap``); with a ``class`` (or ``group``) column
the summary has a ``per_class`` table. A custom run is named after its CSV (:attr:`BenchmarkPlan.name`).
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import itertools
import json
import os
import re
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..audio.io import load_audio
from ..audio.resample import resample
from ..files import atomic_path
from ..hub import sha256_file
from ..metrics import score, sdr
from ..ranks import Ranks, shard
from .aggregate import aggregate, group_count, per_class, query_swap
from .checks import check_out_dir, positive_int, sample_rate_of
from .errors import BenchmarkError
from .extras import extra_scores, usable_extras
from .items import Item, check_data, read_items
from .metadata import find_metadata
from .results import SWAP_COLUMNS, ResultsFile, parse_row, results_columns
from .sharding import fold_rank_results, rank_results_path
from .specs import BenchmarkSpec, get_spec

ITEMS_FILE, SUMMARY_FILE, RUN_FILE = "items.csv", "summary.json", "run.json"
DATA_ENV = "AUDIOSEP_DATA"
DEFAULT_DATA_ROOT = os.path.join("evaluation", "data")  # the reference repository's layout
LENGTH_TOLERANCE = 0.01  # mixture and source may differ by 1 % in length (cropped); more is an error


def default_data_root() -> Path:
    """``$AUDIOSEP_DATA``, else ``./evaluation/data`` (where the reference keeps its evaluation data)."""
    return Path(os.environ.get(DATA_ENV) or DEFAULT_DATA_ROOT)


@dataclass
class _Loaded:
    item: Item
    mixture: Tensor  # [L] at the model's rate
    source: Tensor  # [L]
    other: Tensor | None = None  # [L], the mixture's other source (query-swap check)


def load_mono(path: Path, sample_rate: int) -> Tensor:
    """Tensor[L]: the file averaged to mono and resampled to ``sample_rate`` (float32)."""
    audio, sr = load_audio(path)
    return resample(audio.mean(0), sr, sample_rate).float()


def _load_item(item: Item, sample_rate: int) -> _Loaded:
    mix = load_mono(Item.resolve(item.mixture), sample_rate)
    src = load_mono(Item.resolve(item.source), sample_rate)
    other = load_mono(Item.resolve(item.other_source), sample_rate) if item.other_source else None
    n = min(mix.shape[-1], src.shape[-1])
    for what, x in (("source", src), ("other source", other)):
        if x is not None and abs(x.shape[-1] - mix.shape[-1]) > LENGTH_TOLERANCE * min(n, x.shape[-1]):
            raise ValueError(
                f"mixture and {what} lengths differ ({mix.shape[-1]} vs {x.shape[-1]} samples at "
                f"{sample_rate} Hz); the item's files do not belong together"
            )
    if other is not None:
        n = min(n, other.shape[-1])
        other = other[:n]
    return _Loaded(item, mix[:n], src[:n], other)


def _prefetch(fn: Callable[[Item], Any], items: Iterable[Item], depth: int) -> Iterator[tuple[Item, Any]]:
    """Yield ``(item, fn(item) or the exception it raised)`` in order, loading ``depth`` ahead."""

    def safe(item: Item) -> tuple[Item, Any]:
        try:
            return item, fn(item)
        except Exception as err:  # reported per item by the caller
            return item, err

    it = iter(items)
    with ThreadPoolExecutor(max_workers=2) as pool:
        queue = deque(pool.submit(safe, x) for x in itertools.islice(it, depth))
        while queue:
            result = queue.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                queue.append(pool.submit(safe, nxt))
            yield result


def weights_digest(model: torch.nn.Module) -> str:
    """sha256 over the separation network's tensors (names, shapes, bytes) and config, and the query
    encoder's config (a config key such as ``input_level_db`` changes the outputs, not the tensors)."""
    h = hashlib.sha256()
    net = getattr(model, "separation_net", model)
    net_config = getattr(net, "config", None)
    if hasattr(net_config, "to_dict"):
        h.update(json.dumps(net_config.to_dict(), sort_keys=True).encode())
    for name, t in sorted(net.state_dict().items()):
        t = t.detach().to("cpu").contiguous().reshape(-1)
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    encoder = getattr(model, "query_encoder", None)
    if encoder is not None:
        try:
            h.update(json.dumps(encoder.config_dict(), sort_keys=True).encode())
        except NotImplementedError:
            h.update(type(encoder).__qualname__.encode())
    return h.hexdigest()


def package_versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("audiosep", "torch", "numpy", "soundfile", "soxr", "torchmetrics", "pesq", "pystoi"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


@dataclass(frozen=True)
class BenchmarkPlan:
    """A benchmark's checked items, ready to run (see :func:`prepare_benchmark`)."""

    spec: BenchmarkSpec
    items: list[Item]
    metadata: Path | None
    limit: int | None

    @property
    def name(self) -> str:
        """The run's name: the benchmark's, or ``custom-<CSV stem>`` for a custom item list, so that
        two CSVs (e.g. plain and paraphrased queries) get their own results folders and table rows."""
        if self.spec.layout != "custom" or self.metadata is None:
            return self.spec.name
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(self.metadata).stem).strip("-")
        return f"{self.spec.name}-{stem}" if stem else self.spec.name


def prepare_benchmark(
    benchmark: str | BenchmarkSpec,
    *,
    data_root: str | os.PathLike | None = None,
    metadata: str | os.PathLike | None = None,
    limit: int | None = None,
    download: bool = True,
) -> BenchmarkPlan:
    """Find the item list and the data of a benchmark, and check them, before any model is loaded.

    Raises
    ------
    BenchmarkDataError, MetadataError
        Naming the expected layout and where the data comes from.
    BenchmarkError
        For a ``limit`` that is not a whole number >= 1.
    """
    spec = benchmark if isinstance(benchmark, BenchmarkSpec) else get_spec(benchmark)
    if limit is not None:
        limit = positive_int(limit, "--limit", "pass how many items to evaluate, or leave it out for all")
    data_root = Path(data_root) if data_root is not None else default_data_root()
    data_dir = data_root / spec.data_dir
    if spec.layout == "custom" and metadata is None:
        raise BenchmarkError("the custom benchmark needs your CSV of mixture,source,query rows: pass --metadata PATH")
    if spec.layout != "custom" and not data_dir.is_dir():
        check_data(spec, data_dir, [])  # raises with the layout and where to get the data
    meta_path = None
    if spec.metadata is not None or metadata is not None:
        meta_path = find_metadata(spec.metadata or "", data_root, explicit=metadata, download=download)
    items = read_items(spec, data_dir, meta_path)
    if limit is not None:
        items = items[:limit]
    check_data(spec, data_dir, items)
    return BenchmarkPlan(spec, items, meta_path, limit)


def run_benchmark(
    benchmark: "str | BenchmarkSpec | BenchmarkPlan",
    model: torch.nn.Module,
    *,
    out_dir: str | os.PathLike,
    data_root: str | os.PathLike | None = None,
    metadata: str | os.PathLike | None = None,
    limit: int | None = None,
    batch_size: int = 1,
    device: str | torch.device | None = None,
    model_name: str | None = None,
    download: bool = True,
    progress: bool = True,
    ranks: Ranks | None = None,
) -> dict[str, Any]:
    """Evaluate ``model`` on one benchmark and write its results to ``out_dir``.

    Parameters
    ----------
    benchmark : str, BenchmarkSpec or BenchmarkPlan
        A name from :data:`audiosep.bench.BENCHMARKS`, a declaration, or the result of
        :func:`prepare_benchmark` (then ``data_root``, ``metadata``, ``limit`` are not used).
    model : AudioSep (or any module with ``sample_rate``, ``embed(list[str]) -> Tensor[N, D]`` and
        ``forward(Tensor[B, 1, L], Tensor[B, D]) -> Tensor[B, 1, L]``)
    out_dir : path
        This benchmark's results folder (resumed if it holds an earlier run of the same model).
    data_root : path, optional
        Folder holding ``<set>/`` folders; default :func:`default_data_root`.
    metadata : path, optional
        The item list; default: found or downloaded by :func:`~audiosep.bench.metadata.find_metadata`.
        Required for ``custom``.
    limit : int, optional
        Evaluate only the first ``limit`` items.
    batch_size : int
        Items of equal length separated together.
    device : device, optional
        Moves the model there; default: where it is.
    ranks : audiosep.ranks.Ranks, optional
        This process's place in a ``torchrun`` job (its process group joined): the items are
        split across the ranks (see :mod:`audiosep.bench.sharding`), the progress bar shows on
        rank 0, and every rank returns the summary rank 0 wrote. Default: one process.

    Returns
    -------
    dict
        The summary, as written to ``summary.json``.
    """
    plan = benchmark if isinstance(benchmark, BenchmarkPlan) else prepare_benchmark(
        benchmark, data_root=data_root, metadata=metadata, limit=limit, download=download)
    spec, items, meta_path = plan.spec, plan.items, plan.metadata
    batch_size = positive_int(batch_size, "--batch-size", "pass 1 or more items per forward pass")
    sample_rate = sample_rate_of(model)
    out_dir = check_out_dir(out_dir)

    if device is not None:
        model = model.to(device)
    model.eval()
    name = model_name or getattr(model, "name", None) or type(model).__name__
    digest = weights_digest(model)
    extras = usable_extras(spec.extra_metrics)

    out_dir.mkdir(parents=True, exist_ok=True)
    run_info = {"benchmark": spec.name, "model": name, "weights_sha256": digest, "sample_rate": sample_rate,
                "metadata_sha256": sha256_file(meta_path) if meta_path is not None else None}
    ranks = ranks or Ranks()
    _claim(out_dir / RUN_FILE, run_info, write=ranks.is_main)

    with_swap = any(it.other_source for it in items)
    columns = results_columns(extras, with_class=any(it.label for it in items), with_swap=with_swap)
    required = SWAP_COLUMNS if with_swap else ()
    if ranks.is_main:  # rows an interrupted sharded run left in rank files, before any rank reads or writes
        fold_rank_results(out_dir, ITEMS_FILE, columns, required)
    if ranks.distributed:
        _evaluate_sharded(plan, model, out_dir, columns, required, ranks, sample_rate, batch_size, extras, progress)
        if not ranks.is_main:
            ranks.barrier()  # rank 0 writes the summary
            return json.loads((out_dir / SUMMARY_FILE).read_text(encoding="utf-8"))
    with ResultsFile(out_dir / ITEMS_FILE, columns, required=required) as results:
        if not ranks.distributed:
            done = results.done()
            pending = [it for it in items if it.key not in done]
            _evaluate(model, pending, results, sample_rate, batch_size, extras, len(items) - len(pending),
                      len(items), progress, plan.name)
        rows = [results.rows[it.key] for it in items if it.key in results.rows]

    summary = _summary(plan, rows, run_info, extras,
                       {"limit": plan.limit, "batch_size": batch_size, "device": str(getattr(model, "device", device or "cpu"))})
    with atomic_path(out_dir / SUMMARY_FILE) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    ranks.barrier()  # rank 0 has written the summary: the others read it
    return summary


def _evaluate_sharded(plan, model, out_dir, columns, required, ranks, sample_rate, batch_size, extras,
                      progress) -> None:
    """Score this rank's share of the items into its rank file; on return every rank has finished
    and rank 0 has folded the rank files into ``items.csv``."""
    ranks.barrier()  # rank 0 has folded what an interrupted run left
    with ResultsFile(out_dir / ITEMS_FILE, columns, required=required) as merged:  # read only here
        done = merged.done()
    mine = shard(plan.items, ranks.rank, ranks.world_size)
    with ResultsFile(rank_results_path(out_dir, ranks.rank), columns, required=required) as results:
        done |= results.done()
        pending = [it for it in mine if it.key not in done]
        _evaluate(model, pending, results, sample_rate, batch_size, extras, len(mine) - len(pending), len(mine),
                  progress and ranks.is_main, f"{plan.name} (rank 0 of {ranks.world_size})")
    ranks.barrier()
    if ranks.is_main:
        fold_rank_results(out_dir, ITEMS_FILE, columns, required)


def _claim(path: Path, info: dict[str, Any], *, write: bool = True) -> None:
    """Write ``run.json`` (when ``write``), or check that the folder's earlier run is of the same
    model and items."""
    if path.exists():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise BenchmarkError(f"cannot read {path} ({err}); pass a new --out folder, or delete that one "
                                 "to start over") from None
        if not isinstance(old, dict):
            old = {}
        for k in ("benchmark", "weights_sha256", "sample_rate", "metadata_sha256"):
            if old.get(k) != info[k]:
                raise BenchmarkError(
                    f"{path.parent} holds results of another run ({k} {old.get(k)!r} != {info[k]!r}); "
                    "pass a new --out folder, or delete that one to start over"
                )
        return
    if not write:
        return
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(info, indent=2) + "\n")


def _evaluate(model, pending, results, sample_rate, batch_size, extras, done, total, progress, label) -> None:
    device = getattr(model, "device", torch.device("cpu"))
    bar = tqdm(total=total, initial=done, desc=label, unit="item", disable=not progress, dynamic_ncols=True)
    batch: list[_Loaded] = []

    def flush() -> None:
        if not batch:
            return
        mixture = torch.stack([b.mixture for b in batch])[:, None].to(device)  # [B, 1, L]
        with torch.inference_mode():
            condition = model.embed([b.item.query for b in batch])
            estimate = model(mixture, condition.to(device)).float().cpu()[:, 0]  # [B, L]
        for b, est in zip(batch, estimate):
            row = {"key": b.item.key, "query": b.item.query, "group": b.item.group, "class": b.item.label,
                   **score(est, b.source, b.mixture).to_dict()}
            if b.other is not None:
                row["sdr_other"] = float(sdr(est, b.other))
                row["own_closer"] = int(row["sdr"] > row["sdr_other"])
            row.update(extra_scores(est, b.source, sample_rate, extras))
            results.write(row)
        bar.update(len(batch))
        batch.clear()

    try:
        for item, loaded in _prefetch(lambda it: _load_item(it, sample_rate), pending, depth=2 * batch_size + 2):
            if isinstance(loaded, Exception):
                results.write({"key": item.key, "query": item.query, "group": item.group, "class": item.label,
                               "error": f"{type(loaded).__name__}: {loaded}".replace("\n", " ")})
                bar.update(1)
                continue
            if batch and (len(batch) >= batch_size or batch[0].mixture.shape[-1] != loaded.mixture.shape[-1]):
                flush()
            batch.append(loaded)
        flush()
    finally:
        bar.close()


def _summary(plan: BenchmarkPlan, rows, run_info, extras, options) -> dict[str, Any]:
    spec, meta_path, total = plan.spec, plan.metadata, len(plan.items)
    parsed = [parse_row(r) for r in rows]
    scored = [r for r in parsed if not r.get("error")]
    failed = [{"key": r["key"], "error": r["error"]} for r in parsed if r.get("error")]
    summary = {
        "benchmark": plan.name,
        "description": spec.description,
        "model": {"name": run_info["model"], "weights_sha256": run_info["weights_sha256"],
                  "sample_rate": run_info["sample_rate"]},
        "protocol": {"layout": spec.layout, "query": spec.query_column, "aggregation": spec.aggregation,
                     "group": spec.group_column, "metadata": str(meta_path) if meta_path else None,
                     "metadata_sha256": run_info["metadata_sha256"], "extra_metrics": extras,
                     "sdr": "reference SNR-style SDR and SI-SDR without mean removal (audiosep.metrics)"},
        "versions": package_versions(),
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "items": {"total": total, "scored": len(scored), "failed": len(failed),
                  "missing": total - len(parsed), "groups": group_count(scored) if spec.group_column else None},
        "scores": aggregate(scored, spec.aggregation),
        "released": dict(spec.released),
        "failures": failed,
        "options": options,
    }
    # Labels and mixtures come from the item list, so that rows of an older results file count too.
    swap = query_swap(scored, {it.key: str(Item.resolve(it.mixture)) for it in plan.items})
    if swap is not None:
        summary["query_swap"] = swap
    if any(it.label for it in plan.items):
        summary["per_class"] = per_class(scored, {it.key: it.label for it in plan.items})
    return summary
