"""Separating every audio file of a folder (or a list), on one process or many (``torchrun``).

>>> from audiosep.batch import list_inputs, plan_tasks
>>> tasks = plan_tasks("recordings", list_inputs("recordings", out="separated"), "separated",
...                    ["a dog barking"])                                        # doctest: +SKIP

* **Inputs**: the audio files under a folder (recursively; suffixes :data:`AUDIO_SUFFIXES`,
  hidden names left out, and the output folder when it lies inside), or the paths listed in a
  text file, relative to that folder. They are sorted by relative path.
* **Outputs** mirror the inputs' relative paths under the output folder, named as
  ``audiosep separate`` names them: ``in/a/b.wav -> out/a/b_<query>.wav`` (and
  ``b_<query>_residual.wav``). Two inputs of one folder with the same stem (``b.wav``,
  ``b.flac``) use their whole name instead: ``b.wav_<query>.wav``, ``b.flac_<query>.wav``.
* **Split**: file ``i`` of the sorted list goes to rank ``i % world_size`` (:func:`audiosep.ranks.shard`).
* **Resuming**: outputs are written atomically, so one that exists is complete. A file whose
  outputs all exist is skipped; a file with some of them gets the missing ones. ``overwrite``
  redoes everything.
* **Manifest**: ``OUT/manifest.jsonl``, one JSON record per input file (see :func:`record`).
  Each rank appends its records to its own part file ``OUT/.manifest.rank-<r>.jsonl`` as it
  goes; at the end rank 0 folds the parts into the manifest, where a newer record of an input
  replaces the older one. Inputs of earlier runs that this run did not list keep their record,
  so the manifest holds every input once. Parts left by an interrupted run are folded in by
  the next run before it starts.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

from .errors import UsageError, one_line
from .files import _pid_alive, atomic_path
from .outputs import output_paths, residual_path

#: Suffixes listed as audio in a folder (case-insensitive). Files named in a list are tried whatever
#: their suffix.
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff", ".aifc", ".au", ".w64",
                  ".rf64", ".caf")
MANIFEST = "manifest.jsonl"
#: Held by rank 0 while a job writes to the output folder: ``<host> <pid>``.
LOCK = ".separate-folder.lock"
#: Per-rank part files of the manifest: ``.manifest.rank-<r>.jsonl``.
PART_PREFIX, PART_SUFFIX = ".manifest.rank-", ".jsonl"
STATUSES = ("done", "skipped", "failed")


@dataclass(frozen=True)
class Task:
    """One input file and the files separating it writes.

    Attributes
    ----------
    input : Path
        The file to read.
    key : str
        Its path relative to the input folder, with ``/`` (the manifest's ``input``).
    targets : tuple of Path
        One output per query, in query order.
    residuals : tuple of Path
        ``<target>_residual`` per query, or empty.
    """

    input: Path
    key: str
    targets: tuple[Path, ...]
    residuals: tuple[Path, ...] = ()

    def outputs(self) -> list[Path]:
        return [*self.targets, *self.residuals]

    def missing(self) -> list[int]:
        """Indices of the queries with an output (target or residual) not yet written."""
        return [i for i in range(len(self.targets))
                if not self.targets[i].exists() or (self.residuals and not self.residuals[i].exists())]


def _inside(path: Path, folder: Path) -> bool:
    path, folder = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    return path == folder or folder in path.parents


def check_folders(root: str | os.PathLike, out: str | os.PathLike) -> tuple[Path, Path]:
    """``(root, out)`` as Paths, or a one-line :class:`UsageError`: ``root`` missing or not a folder,
    ``out`` a file, the same folder as ``root``, or holding ``root`` (outputs would land among the inputs)."""
    root, out = Path(root), Path(out)
    if not root.exists():
        raise UsageError(f"input folder {root} does not exist; pass the folder that holds your recordings")
    if not root.is_dir():
        raise UsageError(f"{root} is not a folder; pass the folder that holds your recordings "
                         "(for one file use 'audiosep separate')")
    if out.exists() and not out.is_dir():
        raise UsageError(f"output {out} is a file; pass a folder for the separated files")
    if _inside(root, out):
        where = "is the input folder" if _inside(out, root) else "holds the input folder"
        raise UsageError(f"output folder {out} {where} {root}; outputs would be mixed with the inputs; "
                         "choose an output folder outside it")
    return root, out


def list_inputs(root: str | os.PathLike, *, out: str | os.PathLike | None = None,
                files_from: str | os.PathLike | None = None) -> list[str]:
    """Sorted relative paths (``/``-separated) of the input files under ``root``.

    Parameters
    ----------
    root : path
        The input folder; its audio files are found recursively (symlinked folders are not
        followed; names starting with ``.`` are left out).
    out : path, optional
        The output folder; left out when it lies inside ``root``.
    files_from : path, optional
        A text file of paths, one a line, relative to ``root`` (or absolute, inside ``root``);
        blank lines and lines starting with ``#`` are ignored, repeats count once. Listed files
        are not checked here: one that is missing or unreadable is recorded as failed.

    Raises
    ------
    UsageError
        No files; a listed path outside ``root``; an unreadable list.
    """
    root = Path(root)
    if files_from is not None:
        rels = _read_list(root, Path(files_from))
    else:
        skip = os.path.realpath(out) if out is not None else None
        rels = set()
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if not d.startswith(".") and os.path.realpath(os.path.join(folder, d)) != skip]
            for name in files:
                if not name.startswith(".") and os.path.splitext(name)[1].lower() in AUDIO_SUFFIXES:
                    rels.add(Path(folder, name).relative_to(root).as_posix())
    if not rels:
        what = f"{files_from} lists no files" if files_from is not None else (
            f"no audio files ({', '.join(AUDIO_SUFFIXES)}) found under {root}")
        raise UsageError(f"{what}; nothing to separate")
    return sorted(rels)


def _read_list(root: Path, listing: Path) -> set[str]:
    try:
        lines = listing.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"cannot read the file list {listing} ({getattr(err, 'strerror', None) or err}); "
                         "pass a UTF-8 text file with one path a line") from None
    rels = set()
    for n, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        p = Path(text) if os.path.isabs(text) else root / text
        rel = os.path.relpath(os.path.abspath(p), os.path.abspath(root))
        if rel == os.curdir or rel.split(os.sep)[0] == os.pardir:
            raise UsageError(f"{listing}:{n}: {text} is not a file inside the input folder {root}; list paths "
                             "relative to it (outputs mirror them)")
        rels.add(Path(rel).as_posix())
    return rels


def plan_tasks(root: str | os.PathLike, rels: Sequence[str], out: str | os.PathLike, queries: Sequence[str],
               residual: bool = False) -> list[Task]:
    """A :class:`Task` per relative path, outputs named as the module docstring says."""
    root, out = Path(root), Path(out)
    stems: dict[tuple[str, str], int] = {}
    for rel in rels:
        p = Path(rel)
        stems[(str(p.parent), p.stem.casefold())] = stems.get((str(p.parent), p.stem.casefold()), 0) + 1
    tasks = []
    for rel in rels:
        p = Path(rel)
        stem = p.name if stems[(str(p.parent), p.stem.casefold())] > 1 else p.stem
        folder = os.path.join(out.joinpath(*p.parent.parts), "")  # trailing "/": always a folder
        targets = output_paths(folder, list(queries), stem=stem)
        residuals = tuple(residual_path(t) for t in targets) if residual else ()
        tasks.append(Task(root.joinpath(*p.parts), rel, tuple(targets), residuals))
    return tasks


def record(task: Task, status: str, out: Path, *, rank: int = 0, seconds: float = 0.0, error: str | None = None,
           warned: Iterable[str] = ()) -> dict[str, Any]:
    """The manifest record of ``task``.

    Keys: ``input`` (path relative to the input folder), ``status`` (``done``: separated now;
    ``skipped``: its outputs existed; ``failed``), ``outputs`` (paths relative to the output
    folder, written or found; empty when failed), ``error`` (one line, or null), ``warnings``
    (e.g. a truncated file), ``seconds`` (time spent on it), ``rank`` (the process that handled it).
    """
    if status not in STATUSES:
        raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
    outputs = [] if status == "failed" else [Path(p).relative_to(out).as_posix() for p in task.outputs()]
    return {"input": task.key, "status": status, "outputs": outputs, "error": error, "warnings": list(warned),
            "seconds": round(seconds, 3), "rank": rank}


def read_manifest(path: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Records by input, a later one replacing an earlier; lines that are not a record (cut short
    by a kill) are ignored."""
    records: dict[str, dict[str, Any]] = {}
    with contextlib.suppress(FileNotFoundError):
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(rec, dict) and isinstance(rec.get("input"), str):
                    records[rec["input"]] = rec
    return records


def part_path(out: Path, rank: int) -> Path:
    return out / f"{PART_PREFIX}{rank}{PART_SUFFIX}"


def fold_parts(out: str | os.PathLike) -> dict[str, dict[str, Any]]:
    """Merge every part file in ``out`` into ``out/manifest.jsonl`` (rewritten atomically, sorted by
    input) and remove the parts; returns the merged records. Rank 0 only, while no rank writes."""
    out = Path(out)
    records = read_manifest(out / MANIFEST)
    parts = sorted(out.glob(f"{PART_PREFIX}*{PART_SUFFIX}")) if out.is_dir() else []
    for part in parts:
        records.update(read_manifest(part))
    if parts or records:
        with atomic_path(out / MANIFEST) as tmp:
            with open(tmp, "w", encoding="utf-8") as f:
                for key in sorted(records):
                    f.write(json.dumps(records[key]) + "\n")
    for part in parts:
        with contextlib.suppress(FileNotFoundError):
            part.unlink()
    return records


@contextlib.contextmanager
def job_lock(out: Path) -> Iterator[None]:
    """Hold ``out/.separate-folder.lock`` for the block, or a :class:`UsageError` when another job
    holds it. A lock whose process is gone (same host, pid no longer running) is taken over."""
    path, me = out / LOCK, f"{socket.gethostname()} {os.getpid()}"
    for attempt in (1, 2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            holder = ""
            with contextlib.suppress(OSError):
                holder = path.read_text(encoding="utf-8", errors="replace").strip()
            host, _, pid = holder.partition(" ")
            if attempt == 1 and host == socket.gethostname() and pid.isdigit() and not _pid_alive(int(pid)):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()  # its job was killed outright
                continue
            if attempt == 1 and not holder:  # just released, or just taken and not yet written: look again
                time.sleep(0.1)
                continue
            raise UsageError(f"another separate-folder job (host and pid: {holder or 'unknown'}) is writing to "
                             f"{out}; wait for it to end, or delete {path} if none runs") from None
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(me + "\n")
        break
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


class PartWriter:
    """This rank's part of the manifest: records appended and flushed one by one."""

    def __init__(self, out: Path, rank: int) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.path = part_path(out, rank)
        self._file = open(self.path, "w", encoding="utf-8")
        self.counts = dict.fromkeys(STATUSES, 0)

    def write(self, rec: dict[str, Any]) -> None:
        self._file.write(json.dumps(rec) + "\n")
        self._file.flush()
        self.counts[rec["status"]] += 1

    def close(self) -> None:
        self._file.close()


def separate_task(task: Task, queries: Sequence[str], separate_one: Callable[..., Any], *, overwrite: bool,
                  out: Path, rank: int = 0) -> dict[str, Any]:
    """Separate one file (only its missing outputs unless ``overwrite``) and return its record.

    ``separate_one(path, queries, output=paths)`` does the work (e.g. :func:`audiosep.separate`
    with the model and options bound). Any ``Exception`` is a failed record (one line); Ctrl-C passes.
    """
    start = time.perf_counter()
    todo = list(range(len(queries))) if overwrite else task.missing()
    if not todo:
        return record(task, "skipped", out, rank=rank)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            separate_one(task.input, [queries[i] for i in todo], output=[task.targets[i] for i in todo])
            status, error = "done", None
        except Exception as err:  # noqa: BLE001 - recorded, the job goes on
            status, error = "failed", one_line(f"{type(err).__name__}: {err}")
    warned = [one_line(str(w.message)) for w in caught]
    return record(task, status, out, rank=rank, seconds=time.perf_counter() - start, error=error, warned=warned)


def summary_line(counts: dict[str, int], manifest: Path) -> str:
    """``"N done, K skipped, F failed (see OUT/manifest.jsonl)"``."""
    return (f"{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed "
            f"(see {manifest})")


def run_job(tasks: Sequence[Task], queries: Sequence[str], separate_one: Callable[..., Any], out: str | os.PathLike,
            *, ranks=None, overwrite: bool = False, progress: bool = True) -> dict[str, int]:
    """Separate this rank's share of ``tasks`` and write the manifest; returns the whole job's counts.

    Parameters
    ----------
    tasks : list of Task
        Every task of the job, in the same order on every rank (see :func:`plan_tasks`).
    queries : list of str
    separate_one : callable
        See :func:`separate_task`.
    out : path
        The output folder (the manifest and its parts go there; shared by all ranks).
    ranks : audiosep.ranks.Ranks, optional
        This process's place in the job (joined already); default one process.
    overwrite : bool
        Redo files whose outputs exist.
    progress : bool
        A tqdm bar on rank 0 over rank 0's files.

    Returns
    -------
    dict
        ``{"done": N, "skipped": K, "failed": F}`` over all ranks (on every rank).

    Interrupted (Ctrl-C, SIGTERM), the records written so far stay in this rank's part file; one
    process folds them into the manifest before the interrupt goes on, a multi-process job leaves
    that to the next run. Rank 0 holds :func:`job_lock` throughout, so two jobs never write to
    one folder at once.
    """
    from .ranks import Ranks

    ranks = ranks or Ranks()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with job_lock(out) if ranks.is_main else contextlib.nullcontext():
        return _run_job(tasks, queries, separate_one, out, ranks, overwrite, progress)


def _run_job(tasks, queries, separate_one, out: Path, ranks, overwrite: bool, progress: bool) -> dict[str, int]:
    from tqdm.auto import tqdm

    from .ranks import shard

    digest = hashlib.sha256("\n".join(t.key for t in tasks).encode("utf-8", "surrogateescape")).hexdigest()
    if len(set(ranks.gather(digest))) > 1:  # every rank sees every digest: all raise, none waits
        raise UsageError("the processes listed different input files (files added or removed while the job "
                         "started?); rerun when the input folder no longer changes, or pass --files-from LIST")
    if ranks.is_main:  # parts an interrupted run left: into the manifest before anyone writes a new part
        fold_parts(out)
    ranks.barrier()
    mine = shard(tasks, ranks.rank, ranks.world_size)
    part = PartWriter(out, ranks.rank)
    desc = "separating" if not ranks.distributed else f"rank 0 of {ranks.world_size}"
    bar = tqdm(total=len(mine), desc=desc, unit="file", disable=not (progress and ranks.is_main), dynamic_ncols=True)
    try:
        for task in mine:
            part.write(separate_task(task, queries, separate_one, overwrite=overwrite, out=out, rank=ranks.rank))
            bar.update(1)
            bar.set_postfix(failed=part.counts["failed"], refresh=False)
    except BaseException:
        part.close()
        if not ranks.distributed:
            fold_parts(out)
        raise
    finally:
        bar.close()
    part.close()
    counts = ranks.gather(part.counts)  # also waits for every rank to finish its files
    if ranks.is_main:
        fold_parts(out)
    ranks.barrier()  # the manifest is complete when any rank returns
    return {s: sum(c[s] for c in counts) for s in STATUSES}
