"""Stopping a run cleanly on SIGTERM (schedulers, torchrun) or Ctrl-C (SIGINT).

While :class:`StopSignals` is active, the first SIGTERM or SIGINT only records a request; the
trainer looks at it at each step boundary, agrees on it with the other ranks
(:func:`~audiosep.train.distributed.all_max`, so every rank stops after the same step), saves a
checkpoint and raises :class:`TrainingStopped`. A second Ctrl-C interrupts at once
(``KeyboardInterrupt``). ``audiosep-train`` then exits with ``128 + signal``: 143 after SIGTERM,
130 after SIGINT, as shells report a process ended by that signal.
"""
from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType

from ..errors import AudiosepError

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class TrainingStopped(AudiosepError):
    """A run stopped on a signal after saving a checkpoint; ``exit_code`` is ``128 + signum``."""

    def __init__(self, signum: int, step: int, checkpoint: Path) -> None:
        self.signum, self.step, self.checkpoint = signum, step, checkpoint
        self.exit_code = 128 + signum
        run_dir = checkpoint.parent.parent
        super().__init__(f"stopped by {signal.Signals(signum).name} after step {step}; checkpoint saved to "
                         f"{checkpoint}; continue with --resume {run_dir} (or --resume auto)")


class StopSignals:
    """Context manager: record SIGTERM / SIGINT in :attr:`requested` (the signal number, 0 for
    none) instead of dying; the previous handlers come back on exit. Outside the main thread
    (where Python cannot install handlers) it does nothing."""

    def __init__(self) -> None:
        self.requested = 0
        self._old: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        self.requested = self.requested or signum

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()


def ignore_stop_signals(worker_id: int = 0) -> None:
    """DataLoader ``worker_init_fn``: workers leave SIGTERM / SIGINT to the training process
    (which shuts them down) instead of dying under it mid-batch."""
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
