"""What a training run reports: the end-of-run :class:`TrainSummary` and the per-log-window sums."""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class TrainSummary:
    """What a run did; :meth:`format` is the readable end-of-run report."""

    start_step: int = 0
    steps: int = 0
    seconds: float = 0.0
    samples: int = 0
    first_loss: float | None = None
    last_loss: float | None = None
    best_val_sdri: float | None = None
    best_val_step: int | None = None
    last_val: dict[str, float] = field(default_factory=dict)
    bad_files: dict[str, int] = field(default_factory=dict)
    skipped_steps: int = 0
    out_dir: str = ""
    final_dir: str | None = None
    best_dir: str | None = None
    ema: bool = False

    def format(self) -> str:
        lines = [
            f"trained steps {self.start_step} -> {self.steps} in {self.seconds:.1f} s "
            f"({self.samples / max(self.seconds, 1e-9):.1f} samples/s)",
            f"training loss: first logged {_fmt(self.first_loss)}, last logged {_fmt(self.last_loss)}",
        ]
        if self.best_val_sdri is not None:
            lines.append(f"best validation SDRi {self.best_val_sdri:.2f} dB at step {self.best_val_step}; "
                         f"last: " + ", ".join(f"{k} {v:.3f}" for k, v in self.last_val.items()))
        if self.skipped_steps:
            lines.append(f"fp16: {self.skipped_steps} step(s) skipped for inf/nan gradients (loss scale lowered)")
        if self.bad_files:
            lines.append(f"bad files skipped: {len(self.bad_files)} file(s), "
                         f"{sum(self.bad_files.values())} time(s)")
            lines += [f"  {n:5d} x {p}" for p, n in sorted(self.bad_files.items(), key=lambda kv: -kv[1])[:20]]
        else:
            lines.append("bad files skipped: none")
        lines.append(f"outputs: {self.out_dir}")
        weights = "EMA weights" if self.ema else "weights"
        if self.final_dir:
            lines.append(f"final model (the {weights} of step {self.steps}): {self.final_dir}")
        if self.best_dir:
            lines.append(f"best model (the {weights} of step {self.best_val_step}, validation SDRi "
                         f"{self.best_val_sdri:.2f} dB): {self.best_dir}")
        return "\n".join(lines)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.5f}"


@dataclass
class LogWindow:
    """Sums over the training steps since the last log line (losses, gradient norms, seconds
    waiting for data), with the time, bad-file counts and skipped steps at its start."""

    t0: float
    bad: dict[str, int]
    skipped: int
    loss: float = 0.0
    steps: int = 0
    waited: float = 0.0
    norms: list[float] = field(default_factory=list)

    def add(self, loss: float, norm: float, waited: float) -> None:
        self.loss += loss
        self.steps += 1
        self.waited += waited
        if math.isfinite(norm):
            self.norms.append(norm)

    def mean_norm(self) -> float | None:
        return sum(self.norms) / len(self.norms) if self.norms else None

    def reset(self, t0: float, bad: dict[str, int], skipped: int) -> None:
        self.t0, self.bad, self.skipped = t0, bad, skipped
        self.loss, self.steps, self.waited, self.norms = 0.0, 0, 0.0, []
