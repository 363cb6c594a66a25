"""The saved state of a training run (training checkpoints): the network plus a training-state file.

Not to be confused with :mod:`audiosep.checkpoint`, which reads and writes the separation
network's own files (any layout); this module only handles the folders ``audiosep-train`` writes.

A checkpoint is a folder ``<out_dir>/checkpoints/step-<NNNNNNNN>/`` holding

* ``separation_net.safetensors`` -- :func:`audiosep.checkpoint.save_separation_net` (so any
  checkpoint also loads with :func:`audiosep.load_separation_net`);
* ``separation_net_ema.safetensors`` -- only with ``training.ema_decay``: the exponential moving
  average of the weights (same format); ``config.json`` then names it, so the checkpoint loads as
  a model with the EMA weights while resuming reads both;
* ``training_state.pt`` -- optimizer, gradient scaler (fp16), scheduler, step, epoch, data position, RNG states,
  bad-file counts, best validation score. It holds only tensors and plain Python values and is
  read with :func:`audiosep.weight_files.load_torch_file` in strict mode (a file naming any other
  class is refused, nothing in it runs);
* ``config.yaml`` -- the run's config, for the record;
* ``config.json`` -- the model config of an ``AudioSep.save_pretrained`` folder (query encoder
  named, not copied), so ``AudioSep.from_pretrained`` and ``audiosep separate --model`` load any
  checkpoint.

Every file is written atomically and ``checkpoints/latest`` (the folder name) is updated last,
so an interrupted save never leaves a half-written checkpoint as the latest.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checkpoint import NET_FILE, read_state, save_separation_net
from ..errors import UsageError
from ..files import PART_SUFFIX, atomic_path, remove_stale_parts
from ..model import CONFIG_FILE, MODEL_FORMAT, MODEL_FORMAT_VERSION
from ..query import QueryEncoder
from ..weight_files import WeightFileError, load_torch_file

STATE_FILE = "training_state.pt"
LATEST = "latest"
METRICS_FILE = "metrics.jsonl"
#: What a run writes into its ``out_dir``; any of them there means the folder holds a run.
RUN_OUTPUTS = ("checkpoints", METRICS_FILE, "summary.txt", "final", "best")
#: The EMA weights in a checkpoint of a run with ``training.ema_decay``.
EMA_NET_FILE = "separation_net_ema.safetensors"
#: The name of an :func:`audiosep.files.atomic_path` temporary file: ``.<target>.<pid>.<8 random>.part``.
_PART_NAME = re.compile(rf"\.(.+)\.\d+\.[a-z0-9_]{{8}}{re.escape(PART_SUFFIX)}")
STATE_FORMAT = "audiosep.training_state"
STATE_VERSION = 1


def rng_states() -> dict[str, Any]:
    """The global torch RNG states (CPU and every CUDA device).

    The trainer draws all its randomness from generators seeded by ``(seed, step)`` and never
    from these; they are saved so that user code (a custom loss, a plugged-in module) that
    does use them resumes exactly too.
    """
    out: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        out["cuda"] = [s for s in torch.cuda.get_rng_state_all()]
    return out


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def checkpoint_dir(out_dir: str | os.PathLike, step: int) -> Path:
    return Path(out_dir) / "checkpoints" / f"step-{step:08d}"


def save_checkpoint(directory: Path, net: nn.Module, state: dict[str, Any], config_yaml: str | None = None,
                    model_config: dict[str, Any] | None = None, ema_net: nn.Module | None = None) -> Path:
    """Write one checkpoint folder and point ``<parent>/latest`` at it; ``model_config`` is
    written as its ``config.json`` (see :func:`model_config`), ``ema_net`` (the averaged
    weights) as :data:`EMA_NET_FILE`."""
    directory.mkdir(parents=True, exist_ok=True)
    save_separation_net(net, directory / NET_FILE)
    if ema_net is not None:
        save_separation_net(ema_net, directory / EMA_NET_FILE)
    if model_config is not None:
        with atomic_path(directory / CONFIG_FILE) as tmp:
            tmp.write_text(json.dumps(model_config, indent=2) + "\n")
    payload = {"format": STATE_FORMAT, "version": STATE_VERSION, **state}
    with atomic_path(directory / STATE_FILE) as tmp:
        torch.save(payload, tmp)
    if config_yaml is not None:
        with atomic_path(directory / "config.yaml") as tmp:
            tmp.write_text(config_yaml)
    with atomic_path(directory.parent / LATEST) as tmp:
        tmp.write_text(directory.name + "\n")
    return directory


def model_config(net_config: dict[str, Any], sample_rate: int, encoder: QueryEncoder,
                 net_file: str = NET_FILE) -> dict[str, Any]:
    """The ``config.json`` of an ``AudioSep.save_pretrained`` folder for a checkpoint, so that
    ``AudioSep.from_pretrained(CHECKPOINT_DIR)`` (and ``audiosep separate --model``) loads it
    with the weights of ``net_file`` (:data:`EMA_NET_FILE` when the run keeps an EMA).

    The query encoder's files are not copied into every checkpoint: it is named by its config,
    with relative paths that exist here made absolute (the folder itself has no
    ``query_encoder/``)."""
    encoder_cfg = {k: str(Path(v).resolve()) if isinstance(v, str) and k != "kind" and not os.path.isabs(v)
                   and Path(v).exists() else v
                   for k, v in encoder.config_dict().items()}
    out = {"format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION, "sample_rate": sample_rate,
           "separation_net": net_config, "query_encoder": encoder_cfg}
    if net_file != NET_FILE:
        out["separation_net_file"] = net_file
    return out


def prune_checkpoints(root: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest ``step-*`` folders under ``root`` (0 keeps all)."""
    if keep <= 0:
        return
    folders = sorted(p for p in root.glob("step-*") if p.is_dir())
    for old in folders[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint folder from a folder, its ``training_state.pt``, a run folder or a
    ``checkpoints`` folder (the latter two: the latest checkpoint)."""
    path = Path(path)
    if path.is_file() and path.name == STATE_FILE:
        return path.parent
    if (path / STATE_FILE).is_file():
        return path
    for root in (path / "checkpoints", path):
        if (root / LATEST).is_file():
            target = root / (root / LATEST).read_text().strip()
            if (target / STATE_FILE).is_file():
                return target
    raise FileNotFoundError(
        f"no training checkpoint at {path}: pass a folder holding {STATE_FILE} "
        "(e.g. runs/x/checkpoints/step-00001000) or a run folder with checkpoints/latest"
    )


def load_checkpoint(path: str | os.PathLike, net: nn.Module) -> dict[str, Any]:
    """Load the network weights into ``net`` (in place) and return the training state."""
    directory = resolve_checkpoint(path)
    tensors, _ = read_state(directory / NET_FILE)
    result = net.load_state_dict(tensors, strict=False)
    missing = [k for k in result.missing_keys if not k.endswith("num_batches_tracked")]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"{directory} does not fit this network (missing {missing[:5]}, unexpected "
            f"{result.unexpected_keys[:5]}); resume with the config the run was started with"
        )
    state = load_torch_file(directory / STATE_FILE, strict=True)
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise WeightFileError(f"{directory / STATE_FILE} is not an audiosep training state; resume from a folder audiosep-train wrote")
    state["directory"] = str(directory)
    return state


def run_outputs(out_dir: str | os.PathLike) -> list[str]:
    """The names of :data:`RUN_OUTPUTS` present in ``out_dir`` (empty: no run wrote there)."""
    out_dir = Path(out_dir)
    return [name for name in RUN_OUTPUTS if (out_dir / name).exists()]


def choose_resume(out_dir: str | os.PathLike, resume: str | os.PathLike | None) -> Path | None:
    """The checkpoint folder a run writing to ``out_dir`` continues from, or None (a fresh start).

    ``resume`` is None (start fresh: ``out_dir`` must hold no earlier run), ``"auto"`` (the
    latest checkpoint in ``out_dir`` if there is one, else a fresh start) or a checkpoint / run
    folder. Two runs never share a folder: a fresh start into a folder with another run's
    outputs, or a resume from elsewhere into such a folder, is a :class:`UsageError`.
    """
    out_dir = Path(out_dir)
    found = run_outputs(out_dir)
    if resume is not None and str(resume) == "auto":
        if (out_dir / "checkpoints" / LATEST).is_file():
            return resolve_checkpoint(out_dir)
        if "checkpoints" in found and any((out_dir / "checkpoints").glob("step-*")):
            raise UsageError(f"--resume auto: {out_dir}/checkpoints has checkpoints but no 'latest'; "
                             f"pass --resume {out_dir}/checkpoints/step-NNNNNNNN")
        return None  # nothing to resume: start fresh (metrics of a run stopped before its first checkpoint are dropped)
    if resume is None:
        if found:
            raise UsageError(
                f"training.out_dir {out_dir} already holds a run ({', '.join(found)}); continue it with "
                f"--resume {out_dir} (or --resume auto), or set another training.out_dir")
        return None
    directory = resolve_checkpoint(resume)
    own = out_dir / "checkpoints"
    if found and directory.parent.resolve() != own.resolve():
        raise UsageError(
            f"training.out_dir {out_dir} holds another run ({', '.join(found)}) than the checkpoint "
            f"{directory}; resume into an empty training.out_dir or resume {out_dir} itself")
    later = sorted(p.name for p in own.glob("step-*") if p.is_dir() and p.name > directory.name) if found else []
    if later:
        raise UsageError(
            f"{own} holds checkpoints after {directory.name} ({', '.join(later)}); resume from the latest "
            f"(--resume {out_dir}) or move those folders away first")
    return directory


def remove_stale_writes(out_dir: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of atomic writes that a killed run left anywhere in ``out_dir``
    (SIGKILL, a lost node or a power cut mid-save); returns them.

    Only files named as :func:`audiosep.files.atomic_path` names its temporary files, whose
    writer (the pid in the name) no longer runs on this machine, are removed
    (:func:`audiosep.files.remove_stale_parts`); call it from global rank 0 only, before the
    run writes anything, as the pids of other machines cannot be checked.
    """
    removed: list[Path] = []
    for folder, _, names in os.walk(out_dir):
        for name in names:
            match = _PART_NAME.fullmatch(name)
            if match:
                removed += remove_stale_parts(Path(folder) / match.group(1))
    return removed


def drop_metrics_after(out_dir: str | os.PathLike, step: int) -> None:
    """Rewrite ``<out_dir>/metrics.jsonl`` without the records past ``step`` (a resumed run
    writes those steps again)."""
    path = Path(out_dir) / METRICS_FILE
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines(keepends=True):
        try:
            record_step = json.loads(line).get("step", 0)
        except (ValueError, AttributeError):
            continue  # a line cut short by a killed writer
        if isinstance(record_step, int) and record_step <= step:
            kept.append(line if line.endswith("\n") else line + "\n")
    with atomic_path(path) as tmp:
        tmp.write_text("".join(kept))
