"""Training configuration: nested dataclasses, validated, built from plain dicts.

YAML is read only at the command-line edge (:func:`load_config`); the trainer takes a
:class:`TrainConfig`. Every error names the full dotted key and what would fix it, e.g.
``optim.lr must be > 0, got -1``.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..nn.config import ResUNetConfig
from ..errors import AudiosepError

PRECISIONS = ("fp32", "bf16")
SCHEDULES = ("warmup_constant", "warmup_linear_decay")
OPTIMIZERS = ("adamw", "adam")
SHORT_CLIP_PLACEMENTS = ("random", "start")  # data.short_clips; see audiosep.train.dataset


class ConfigError(AudiosepError, ValueError):
    """A training config that cannot be used; the message names the dotted key."""


def _require(ok: bool, key: str, message: str, value: Any) -> None:
    if not ok:
        raise ConfigError(f"{key} {message}, got {value!r}")


@dataclass(frozen=True)
class DataConfig:
    """Where the clips come from and how they are cut (per-process batch size)."""

    train_manifests: tuple[str, ...] = ()
    val_manifests: tuple[str, ...] = ()
    sample_rate: int = 32000
    segment_seconds: float = 5.0
    batch_size: int = 12
    num_workers: int = 0
    val_batch_size: int = 8
    val_items: int = 256
    random_crop: bool = True
    silence_db: float = -60.0
    max_retries: int = 10
    precompute_text: bool = False
    speed_range: tuple[float, float] | None = None
    short_clips: str = "random"

    def validate(self, prefix: str = "data") -> None:
        _require(self.sample_rate > 0, f"{prefix}.sample_rate", "must be > 0", self.sample_rate)
        _require(self.segment_seconds > 0, f"{prefix}.segment_seconds", "must be > 0", self.segment_seconds)
        for name in ("batch_size", "val_batch_size", "val_items"):
            _require(getattr(self, name) >= 1, f"{prefix}.{name}", "must be >= 1", getattr(self, name))
        _require(self.num_workers >= 0, f"{prefix}.num_workers", "must be >= 0", self.num_workers)
        _require(self.max_retries >= 0, f"{prefix}.max_retries", "must be >= 0", self.max_retries)
        _require(self.short_clips in SHORT_CLIP_PLACEMENTS, f"{prefix}.short_clips",
                 "must be 'random' (a random offset in the segment) or 'start'", self.short_clips)
        if self.speed_range is not None:
            ok = (len(self.speed_range) == 2 and 0.5 <= self.speed_range[0] <= self.speed_range[1] <= 2.0)
            _require(ok, f"{prefix}.speed_range", "must be [low, high] with 0.5 <= low <= high <= 2 "
                     "(null: no speed perturbation)", self.speed_range)

    @property
    def segment_samples(self) -> int:
        return int(round(self.sample_rate * self.segment_seconds))


@dataclass(frozen=True)
class MixingConfig:
    """How a batch of clips becomes (mixture, target) pairs; see :mod:`audiosep.train.mixing`.

    ``group_size`` (default: the per-process batch) is the number of consecutive clips that
    are mixed with one another; the remaining fields are :class:`~audiosep.train.mixing.MixConfig`.
    """

    sources_per_mixture: int = 2
    lower_db: int = -10
    higher_db: int = 10
    declip_peak: float = 0.9
    distinct_captions: bool = False
    group_size: int | None = None
    paired: bool = False

    def validate(self, prefix: str = "mixing") -> None:
        _require(self.sources_per_mixture >= 2, f"{prefix}.sources_per_mixture", "must be >= 2 (target + backgrounds)",
                 self.sources_per_mixture)
        _require(self.lower_db <= self.higher_db, f"{prefix}.lower_db", "must be <= mixing.higher_db",
                 self.lower_db)
        _require(0 < self.declip_peak <= 1, f"{prefix}.declip_peak", "must be in (0, 1]", self.declip_peak)
        _require(not self.paired or self.sources_per_mixture == 2, f"{prefix}.paired",
                 "makes two-source mixtures; set mixing.sources_per_mixture to 2", self.paired)
        if self.group_size is not None:
            _require(self.group_size >= self.sources_per_mixture, f"{prefix}.group_size",
                     "must be >= mixing.sources_per_mixture", self.group_size)

    def mix_config(self):
        from .mixing import MixConfig

        return MixConfig(self.sources_per_mixture, self.lower_db, self.higher_db,
                         self.declip_peak, self.distinct_captions, paired=self.paired)


@dataclass(frozen=True)
class QueryConfig:
    """How the batch's queries are made: ``audio_fraction`` of the items use the target clip
    itself as an audio query (needs an encoder with audio support, e.g. CLAP)."""

    audio_fraction: float = 0.0

    def validate(self, prefix: str = "queries") -> None:
        _require(0.0 <= self.audio_fraction <= 1.0, f"{prefix}.audio_fraction", "must be in [0, 1]",
                 self.audio_fraction)


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with the reference settings."""

    name: str = "adamw"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    amsgrad: bool = True

    def validate(self, prefix: str = "optim") -> None:
        _require(self.name in OPTIMIZERS, f"{prefix}.name", f"must be one of {OPTIMIZERS}", self.name)
        _require(self.lr > 0, f"{prefix}.lr", "must be > 0", self.lr)
        _require(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), f"{prefix}.betas",
                 "must be two numbers in [0, 1)", self.betas)
        _require(self.eps > 0, f"{prefix}.eps", "must be > 0", self.eps)
        _require(self.weight_decay >= 0, f"{prefix}.weight_decay", "must be >= 0", self.weight_decay)


@dataclass(frozen=True)
class ScheduleConfig:
    """Learning-rate schedule: linear warm-up, then constant (reference) or linear decay."""

    kind: str = "warmup_constant"
    warmup_steps: int = 10000
    final_lr_fraction: float = 0.0

    def validate(self, prefix: str = "schedule") -> None:
        _require(self.kind in SCHEDULES, f"{prefix}.kind", f"must be one of {SCHEDULES}", self.kind)
        _require(self.warmup_steps >= 0, f"{prefix}.warmup_steps", "must be >= 0", self.warmup_steps)
        _require(0 <= self.final_lr_fraction <= 1, f"{prefix}.final_lr_fraction", "must be in [0, 1]",
                 self.final_lr_fraction)


@dataclass(frozen=True)
class TrainingConfig:
    """The loop: length, cadence of validation/checkpoints/logs, precision, seeds, output."""

    steps: int = 1000
    val_every: int = 1000
    checkpoint_every: int = 1000
    log_every: int = 50
    keep_checkpoints: int = 3
    precision: str = "fp32"
    grad_clip: float | None = None
    loss: str = "l1"
    seed: int = 0
    sync_batchnorm: bool = False
    freeze_batchnorm: bool = False
    init_from: str | None = None
    out_dir: str = "runs/audiosep"
    device: str = "auto"
    progress: bool = True
    compile: bool = False
    channels_last: bool = False

    def validate(self, prefix: str = "training") -> None:
        from .losses import LOSSES

        _require(self.steps >= 1, f"{prefix}.steps", "must be >= 1", self.steps)
        for name in ("val_every", "checkpoint_every", "log_every", "keep_checkpoints"):
            _require(getattr(self, name) >= 0, f"{prefix}.{name}", "must be >= 0 (0 turns it off)",
                     getattr(self, name))
        _require(self.precision in PRECISIONS, f"{prefix}.precision", f"must be one of {PRECISIONS}",
                 self.precision)
        if self.grad_clip is not None:
            _require(self.grad_clip > 0, f"{prefix}.grad_clip", "must be > 0 (or null for no clipping)",
                     self.grad_clip)
        _require(self.loss in LOSSES, f"{prefix}.loss", f"must be one of {sorted(LOSSES)}", self.loss)
        _require(self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
                 f"{prefix}.device", "must be 'auto', 'cpu', 'cuda' or 'cuda:N'", self.device)
        _require(not (self.sync_batchnorm and self.freeze_batchnorm), f"{prefix}.sync_batchnorm",
                 "cannot be combined with training.freeze_batchnorm (frozen statistics need no sync)",
                 self.sync_batchnorm)


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs."""

    model: ResUNetConfig = field(default_factory=ResUNetConfig)
    query_encoder: Mapping[str, Any] = field(default_factory=lambda: {"kind": "clap"})
    queries: QueryConfig = field(default_factory=QueryConfig)
    data: DataConfig = field(default_factory=DataConfig)
    mixing: MixingConfig = field(default_factory=MixingConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def validate(self) -> "TrainConfig":
        if "kind" not in self.query_encoder:
            raise ConfigError("query_encoder.kind is required, e.g. 'clap' or 'minilm'")
        for name in ("queries", "data", "mixing", "optim", "schedule", "training"):
            getattr(self, name).validate(name)
        if self.model.sample_rate != self.data.sample_rate:
            raise ConfigError(
                f"data.sample_rate ({self.data.sample_rate}) must equal model.sample_rate "
                f"({self.model.sample_rate}); set both to the rate of the network"
            )
        group = self.mixing.group_size or self.data.batch_size
        _require(self.data.batch_size % group == 0, "mixing.group_size",
                 f"must divide data.batch_size ({self.data.batch_size})", self.mixing.group_size)
        _require(group >= self.mixing.sources_per_mixture, "data.batch_size",
                 f"must be >= mixing.sources_per_mixture ({self.mixing.sources_per_mixture})",
                 self.data.batch_size)
        return self

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: dataclasses.asdict(getattr(self, f.name)) for f in dataclasses.fields(self)
               if f.name not in ("model", "query_encoder")}
        out["model"] = self.model.to_dict()
        out["query_encoder"] = dict(self.query_encoder)
        return _plain(out)


def _plain(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


_SECTIONS = {"queries": QueryConfig, "data": DataConfig, "mixing": MixingConfig,
             "optim": OptimConfig, "schedule": ScheduleConfig, "training": TrainingConfig}


def _coerce(value: Any, annotation: str, key: str) -> Any:
    """Check/convert a YAML value against a field's annotation (given as a string)."""
    optional = "None" in annotation
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{key} must not be null")
    base = annotation.replace(" | None", "")
    if base.startswith("tuple"):
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        inner = "str" if "str" in base else "float"
        return tuple(_coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value))
    if base == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if base == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return value
    if base == "float":
        if isinstance(value, str):  # YAML 1.1 reads "3e-4" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        return float(value)
    if base == "str":
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    return value


def _section(cls: type, raw: Any, prefix: str):
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{prefix} must be a mapping of keys to values, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key {prefix}.{unknown[0]}; known keys of {prefix}: {', '.join(fields)}")
    values = {k: _coerce(v, str(fields[k].type), f"{prefix}.{k}") for k, v in raw.items()}
    return cls(**values)


def config_from_dict(raw: Mapping[str, Any]) -> TrainConfig:
    """Build and validate a :class:`TrainConfig` from nested plain dicts (e.g. parsed YAML)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"a training config must be a mapping, got {type(raw).__name__}")
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(f"unknown key {unknown[0]}; known top-level keys: {', '.join(sorted(known))}")
    kwargs: dict[str, Any] = {name: _section(cls, raw.get(name), name) for name, cls in _SECTIONS.items()}
    model = raw.get("model") or {}
    if not isinstance(model, Mapping):
        raise ConfigError(f"model must be a mapping of ResUNetConfig fields, got {model!r}")
    model_fields = {f.name for f in dataclasses.fields(ResUNetConfig)}
    bad = sorted(set(model) - model_fields)
    if bad:
        raise ConfigError(f"unknown key model.{bad[0]}; known keys of model: {', '.join(sorted(model_fields))}")
    model = dict(model)
    model.setdefault("sample_rate", kwargs["data"].sample_rate)
    try:
        kwargs["model"] = ResUNetConfig.from_dict(model)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"model: {err}".replace("ResUNetConfig.", "model.")) from err
    encoder = raw.get("query_encoder") or {"kind": "clap"}
    if not isinstance(encoder, Mapping):
        raise ConfigError(f"query_encoder must be a mapping with a 'kind', got {encoder!r}")
    kwargs["query_encoder"] = dict(encoder)
    return TrainConfig(**kwargs).validate()


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"optim.lr=3e-4"`` -> (["optim", "lr"], 0.0003); the value is parsed as YAML."""
    import yaml

    if "=" not in item:
        raise ConfigError(f"--set expects KEY=VALUE (e.g. optim.lr=3e-4), got {item!r}")
    key, value = item.split("=", 1)
    return key.strip().split("."), yaml.safe_load(value) if value.strip() else None


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Set dotted keys in a nested dict (a copy is returned)."""
    import copy

    out = copy.deepcopy(raw)
    for item in overrides:
        keys, value = parse_override(item)
        node = out
        for k in keys[:-1]:
            if node.get(k) is None:
                node[k] = {}
            node = node[k]
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {k} is not a section")
        node[keys[-1]] = value
    return out


def load_config(path: str | os.PathLike, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a YAML training config, apply ``--set`` overrides, validate.

    Relative manifest paths resolve against the YAML file's folder.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training config not found: {path}")
    raw = yaml.safe_load(path.read_text()) or {}
    _resolve_manifests(raw, path.parent)
    raw = apply_overrides(raw, overrides)
    _resolve_manifests(raw, Path.cwd())  # paths given with --set are relative to the caller
    return config_from_dict(raw)


def _resolve_manifests(raw: Any, base: Path) -> None:
    data = raw.get("data") if isinstance(raw, dict) else None
    if isinstance(data, dict):
        for key in ("train_manifests", "val_manifests"):
            if isinstance(data.get(key), str):
                data[key] = [data[key]]
            if isinstance(data.get(key), list):
                data[key] = [str(_resolve(base, p)) for p in data[key]]


def _resolve(base: Path, p: Any) -> Any:
    if not isinstance(p, str):
        return p
    p2 = Path(os.path.expandvars(os.path.expanduser(p)))
    return p2 if p2.is_absolute() else (base / p2)


def save_config(config: TrainConfig, path: str | os.PathLike) -> Path:
    """Write the config as YAML (atomically)."""
    import yaml

    from ..files import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    return Path(path)
