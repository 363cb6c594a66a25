"""Optional external experiment trackers (``training.logger``: ``wandb`` or ``mlflow``).

The package is imported lazily: :func:`check_logger` (called when the trainer is built, on
every rank) turns a missing package into one :class:`~audiosep.train.config.ConfigError`
naming the ``pip install`` that fixes it, before any training; :func:`open_logger` (rank 0,
when the loop starts) opens the run.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any, Mapping

from .config import ConfigError, TrainingConfig


def check_logger(training: TrainingConfig) -> None:
    """Raise :class:`ConfigError` when ``training.logger`` names a package that is not installed."""
    name = training.logger
    if name is None:
        return
    if name in sys.modules:  # imported already; None: blocked (``import`` raises ImportError)
        missing = sys.modules[name] is None
    else:
        missing = importlib.util.find_spec(name) is None
    if missing:
        raise ConfigError(f"training.logger is {name!r} but the {name} package is not installed; "
                          f"pip install {name} (or set training.logger: null)")


class ExternalLogger:
    """One run of an external tracker; :meth:`log` sends numbers with the training step."""

    def __init__(self, name: str, module: Any, run: Any) -> None:
        self.name, self._module, self._run = name, module, run

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        if self.name == "wandb":
            self._run.log(dict(metrics), step=step)
        else:
            self._module.log_metrics(dict(metrics), step=step)

    def close(self) -> None:
        if self.name == "wandb":
            self._run.finish()
        else:
            self._module.end_run()


def open_logger(training: TrainingConfig, config: Mapping[str, Any]) -> ExternalLogger | None:
    """Start the run of ``training.logger`` (None when it is null) with the config as its parameters.

    ``logger_project`` is the W&B project or the MLflow experiment; ``logger_run_name`` the run's
    name. A resumed training run opens a new tracker run; its steps continue where it stopped.
    """
    name = training.logger
    if name is None:
        return None
    check_logger(training)
    module = importlib.import_module(name)
    if name == "wandb":
        run = module.init(project=training.logger_project, name=training.logger_run_name,
                          config=dict(config), dir=training.out_dir)
        return ExternalLogger(name, module, run)
    if training.logger_project is not None:
        module.set_experiment(training.logger_project)
    run = module.start_run(run_name=training.logger_run_name)
    module.log_params(_flat(config))
    return ExternalLogger(name, module, run)


def _flat(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"lr": 1e-3}}`` -> ``{"optim.lr": 1e-3}`` (MLflow parameters are flat)."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out
