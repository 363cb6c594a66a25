"""Rank 0's outputs of a training run as it goes: ``metrics.jsonl``, TensorBoard, an external
tracker (``training.logger``), a progress bar and one console line per log window / validation."""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

from .loggers import ExternalLogger
from .run_state import METRICS_FILE


class RunLog:
    """Rank 0's outputs: ``metrics.jsonl``, TensorBoard (if importable), an external tracker
    (optional), a tqdm bar (``progress``) and console lines (:meth:`say`, always)."""

    def __init__(self, out_dir: Path, *, enabled: bool, progress: bool, total: int, initial: int,
                 external: ExternalLogger | None = None) -> None:
        self.enabled = enabled
        self.bar = self.tb = self.file = None
        self.external = external if enabled else None
        if not enabled:
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        self.file = open(out_dir / METRICS_FILE, "a", buffering=1)
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(out_dir / "tensorboard"))
        except ImportError:
            self.tb = None
            warnings.warn("TensorBoard logging is off (tensorboard is not installed; "
                          'pip install "audiosep[train]"); metrics.jsonl has every value', stacklevel=2)
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True)
        self._t = time.perf_counter()

    def tick(self, loss: float, samples: int) -> None:
        if self.bar is not None:
            now = time.perf_counter()
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}", samples_s=f"{samples / max(now - self._t, 1e-9):.1f}")
            self._t = now

    def say(self, line: str) -> None:
        """Print one line (rank 0), above the progress bar when there is one."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(line)
        else:
            print(line, flush=True)

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"time": time.time(), **record}
        self.file.write(json.dumps(record) + "\n")
        numbers = {f"{record['kind']}/{k}": v for k, v in record.items()
                   if k not in ("time", "kind", "step") and isinstance(v, (int, float)) and not isinstance(v, bool)}
        if self.tb is not None:
            for k, v in numbers.items():
                self.tb.add_scalar(k, v, record["step"])
        if self.external is not None:
            self.external.log(numbers, record["step"])

    def close(self) -> None:
        for h in (self.bar, self.tb, self.file, self.external):
            if h is not None:
                h.close()


def train_line(record: dict[str, Any], total: int, eta_s: float | None) -> str:
    """``step 120/1000  loss 0.01234  lr 1.00e-03  96.0 samples/s  ETA 0:12:03`` for a train record."""
    eta = "?" if eta_s is None else _clock(eta_s)
    line = (f"step {record['step']}/{total}  loss {record['loss']:.5f}  lr {record['lr']:.2e}  "
            f"{record['samples_per_s']:.1f} samples/s  ETA {eta}")
    if record.get("skipped_steps_new"):
        line += f"  ({record['skipped_steps_new']} step(s) skipped: inf/nan gradients)"
    return line


def val_line(record: dict[str, Any], new_best: bool) -> str:
    """``validation at step 1000: SDRi 6.12 dB  SI-SDR 5.01 dB  loss 0.01000  (new best)``."""
    return (f"validation at step {record['step']}: SDRi {record['val_sdri']:.2f} dB  "
            f"SI-SDR {record['val_si_sdr']:.2f} dB  loss {record['val_loss']:.5f}" + ("  (new best)" if new_best else ""))


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
