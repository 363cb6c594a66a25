"""Rank 0's outputs of a training run as it goes: ``metrics.jsonl``, TensorBoard and a progress bar."""
from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

from .run_state import METRICS_FILE


class RunLog:
    """Rank 0's outputs: ``metrics.jsonl``, TensorBoard (if importable) and a tqdm bar."""

    def __init__(self, out_dir: Path, *, enabled: bool, progress: bool, total: int, initial: int) -> None:
        self.enabled = enabled
        self.bar = self.tb = self.file = None
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

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"time": time.time(), **record}
        self.file.write(json.dumps(record) + "\n")
        if self.tb is not None:
            prefix = record["kind"]
            for k, v in record.items():
                if k not in ("time", "kind", "step") and isinstance(v, (int, float)):
                    self.tb.add_scalar(f"{prefix}/{k}", v, record["step"])

    def close(self) -> None:
        for h in (self.bar, self.tb, self.file):
            if h is not None:
                h.close()
