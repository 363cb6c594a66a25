"""Training configuration: nested dataclasses, validated, built from plain dicts.

YAML is read only at the command-line edge (:func:`load_config`); the trainer takes a
:class:`TrainConfig`. Every error names the full dotted key and what would fix it, e.g.
``optim.lr must be > 0, got -1``.
"""
from __future__ import annotations

import copy
import dataclasses
import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from ..errors import AudiosepError, check_keys
from ..nn.config import ResUNetConfig
from .losses import LOSSES

PRECISIONS = ("fp32", "bf16", "fp16")
SCHEDULES = ("warmup_constant", "warmup_linear_decay", "warmup_cosine")
LOGGERS = ("wandb", "mlflow")  # training.logger; see audiosep.train.loggers
OPTIMIZERS = ("adamw", "adam")
SHORT_CLIP_PLACEMENTS = ("random", "start")  # data.short_clips; see audiosep.train.dataset


class ConfigError(AudiosepError, ValueError):
    """A training config that cannot be used; the message names the dotted key."""


class _Section:
    """Base of the config sections: each checks and normalises itself on construction.

    Every field is checked against its annotation (:func:`_coerce`: ``True`` is no integer, a
    YAML list becomes a tuple), then :meth:`_check` checks the values. Messages name the field
    as ``Class.field``; :func:`config_from_dict` renames it to the YAML key (``data.batch_size``).
    """

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            object.__setattr__(self, f.name, _coerce(getattr(self, f.name), str(f.type), self._key(f.name)))
        self._check()

    def _check(self) -> None:
        """Check the values (after the types); raise :class:`ConfigError` via :meth:`_require`."""

    def _key(self, name: str) -> str:
        return f"{type(self).__name__}.{name}"

    def _require(self, ok: bool, name: str, message: str, *, got: bool = True) -> None:
        if not ok:
            raise ConfigError(f"{self._key(name)} {message}" + (f", got {getattr(self, name)!r}" if got else ""))


@dataclass(frozen=True)
class DataConfig(_Section):
    """Where the clips come from and how they are cut (per-process batch size); read by
    :class:`~audiosep.train.dataset.ClipDataset`, which trusts these checks."""

    train_manifests: tuple[str, ...] = ()
    val_manifests: tuple[str, ...] = ()
    train_shards: tuple[str, ...] = ()
    shard_index: str | None = None
    shuffle_buffer: int = 256
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
    embedding_cache: str | None = None

    def _check(self) -> None:
        self._require(self.sample_rate > 0, "sample_rate", "must be > 0")
        self._require(self.embedding_cache is None or bool(self.embedding_cache.strip()), "embedding_cache",
                      "must be a folder or null (<training.out_dir>/cache)")
        self._require(self.segment_seconds > 0 and self.segment_samples >= 1, "segment_seconds",
                      "must be > 0 and give at least one sample")
        for name in ("batch_size", "val_batch_size", "val_items"):
            self._require(getattr(self, name) >= 1, name, "must be >= 1")
        self._require(self.num_workers >= 0, "num_workers", "must be >= 0")
        self._require(self.max_retries >= 0, "max_retries", "must be >= 0")
        self._require(not (self.train_manifests and self.train_shards), "train_shards",
                      f"and {self._key('train_manifests')} are both set; train from one of them "
                      "(tar shards written by 'audiosep-train shard', or manifests)", got=False)
        self._require(self.shard_index is None or bool(self.train_shards), "shard_index",
                      f"gives the clip counts of {self._key('train_shards')}, which is empty; "
                      "list the shards there or remove shard_index", got=False)
        self._require(self.shuffle_buffer >= 1, "shuffle_buffer", "must be >= 1 (1: no shuffling within shards)")
        self._require(self.short_clips in SHORT_CLIP_PLACEMENTS, "short_clips",
                      "must be 'random' (a random offset in the segment) or 'start'")
        if self.speed_range is not None:
            ok = len(self.speed_range) == 2 and 0.5 <= self.speed_range[0] <= self.speed_range[1] <= 2.0
            self._require(ok, "speed_range", "must be [low, high] with 0.5 <= low <= high <= 2 "
                          "(null: no speed perturbation)")

    @property
    def segment_samples(self) -> int:
        return int(round(self.sample_rate * self.segment_seconds))


@dataclass(frozen=True)
class MixConfig(_Section):
    """How a batch of clips becomes (mixture, target) pairs (YAML section ``mixing``); see
    :func:`audiosep.train.mixing.mix_batch`.

    Attributes
    ----------
    sources_per_mixture : int
        Target plus ``sources_per_mixture - 1`` background clips (>= 2).
    lower_db, higher_db : int
        Inclusive range of the integer gains in dB.
    declip_peak : float
        Mixture peak after de-clipping, in (0, 1].
    distinct_captions : bool
        Never use a background whose caption equals the target's or that shares a label.
    strict_distinct : bool
        With ``distinct_captions``: raise when too few backgrounds qualify instead of using fewer.
    paired : bool
        Make one mixture per pair of items and use it for both items' queries (needs
        ``sources_per_mixture == 2``).
    group_size : int or None
        Consecutive clips of the batch mixed with one another (the trainer's grouping; None: the
        whole per-process batch).
    max_sources : int or None
        When set, each mixture has a seeded random number of sources, uniform in
        ``sources_per_mixture..max_sources`` (None: always ``sources_per_mixture``).
    ambience_manifests : tuple of str
        Manifests of background ambiences (rain, wind, crowd, traffic, ...), read like training
        manifests; a clip whose labels include the target's is never used under that target.
    ambience_probability : float
        Share of the mixtures that get an ambience clip under their backgrounds.
    ambience_lower_db, ambience_higher_db : int
        Inclusive range of the ambience's integer gain relative to the target's energy, before
        the background (ambience included) is set to its drawn level.
    """

    sources_per_mixture: int = 2
    lower_db: int = -10
    higher_db: int = 10
    declip_peak: float = 0.9
    distinct_captions: bool = False
    strict_distinct: bool = False
    paired: bool = False
    group_size: int | None = None
    max_sources: int | None = None
    ambience_manifests: tuple[str, ...] = ()
    ambience_probability: float = 0.0
    ambience_lower_db: int = -10
    ambience_higher_db: int = 0

    @property
    def most_sources(self) -> int:
        """The largest number of sources a mixture can have."""
        return self.max_sources or self.sources_per_mixture

    def _check(self) -> None:
        self._require(self.sources_per_mixture >= 2, "sources_per_mixture", "must be >= 2 (target + backgrounds)")
        self._require(self.lower_db <= self.higher_db, "lower_db",
                      f"must be <= {self._key('higher_db')} ({self.higher_db})")
        self._require(0 < self.declip_peak <= 1, "declip_peak", "must be in (0, 1]")
        self._require(not self.paired or self.sources_per_mixture == 2, "paired",
                      f"makes two-source mixtures; set {self._key('sources_per_mixture')} to 2 "
                      f"(it is {self.sources_per_mixture}) or paired to false", got=False)
        if self.max_sources is not None:
            self._require(self.max_sources >= self.sources_per_mixture, "max_sources",
                          f"must be >= {self._key('sources_per_mixture')} ({self.sources_per_mixture}), "
                          "or null for a fixed number of sources")
            self._require(not self.paired or self.max_sources == 2, "paired",
                          f"makes two-source mixtures; set {self._key('max_sources')} to null (it is "
                          f"{self.max_sources}) or paired to false", got=False)
        if self.group_size is not None:
            key = "max_sources" if self.max_sources is not None else "sources_per_mixture"
            self._require(self.group_size >= self.most_sources, "group_size",
                          f"must be >= {self._key(key)} ({self.most_sources})")
        self._require(0.0 <= self.ambience_probability <= 1.0, "ambience_probability", "must be in [0, 1]")
        self._require(self.ambience_probability == 0 or bool(self.ambience_manifests), "ambience_probability",
                      f"needs ambience clips; list their manifests in {self._key('ambience_manifests')} "
                      "or set the probability to 0")
        self._require(self.ambience_probability == 0 or not self.paired, "ambience_probability",
                      f"cannot be combined with {self._key('paired')} (a paired mixture's background is the "
                      "other item's source); set one of them off")
        self._require(self.ambience_lower_db <= self.ambience_higher_db, "ambience_lower_db",
                      f"must be <= {self._key('ambience_higher_db')} ({self.ambience_higher_db})")


@dataclass(frozen=True)
class QueryConfig(_Section):
    """How the batch's queries are made (:class:`~audiosep.train.queries.BatchQueries`); every
    option is off by default.

    Attributes
    ----------
    audio_fraction : float
        Probability that an item uses the target clip itself as an audio query (needs an encoder
        with audio support, e.g. CLAP).
    label_dropout : float
        Probability that an item's caption is replaced by its bare class label(s).
    caption_average : float
        Probability that an item's text embedding is the renormalised mean of
        ``caption_average_count`` of its phrasings, drawn without replacement.
    caption_average_count : int
        Phrasings averaged (fewer when an item has fewer).
    embedding_mixup : float
        Probability that an item's text embedding is ``lam * e1 + (1 - lam) * e2`` of two of its
        phrasings (renormalised), ``lam`` uniform in [0, 1].
    embedding_noise : float
        Size of Gaussian noise added to every text embedding (unit norm), which is then
        renormalised: the noise's std per feature is ``embedding_noise / sqrt(D)``, so its norm is
        about ``embedding_noise`` for any embedding size ``D``.
    """

    audio_fraction: float = 0.0
    label_dropout: float = 0.0
    caption_average: float = 0.0
    caption_average_count: int = 3
    embedding_mixup: float = 0.0
    embedding_noise: float = 0.0

    def _check(self) -> None:
        for name in ("audio_fraction", "label_dropout", "caption_average", "embedding_mixup"):
            self._require(0.0 <= getattr(self, name) <= 1.0, name, "must be in [0, 1]")
        self._require(self.caption_average_count >= 2, "caption_average_count", "must be >= 2")
        self._require(self.embedding_noise >= 0.0, "embedding_noise",
                      "must be >= 0 (the noise norm relative to the unit embedding; 0: off)")
        self._require(self.label_dropout + self.caption_average + self.embedding_mixup <= 1.0, "label_dropout",
                      f"+ {self._key('caption_average')} + {self._key('embedding_mixup')} must be <= 1 (each item "
                      f"takes at most one of them), got {self.label_dropout:g} + {self.caption_average:g} + "
                      f"{self.embedding_mixup:g}", got=False)

    @property
    def augments_text(self) -> bool:
        """Whether any text-embedding augmentation is on."""
        return bool(self.label_dropout or self.caption_average or self.embedding_mixup or self.embedding_noise)


@dataclass(frozen=True)
class OptimConfig(_Section):
    """AdamW with the reference settings."""

    name: str = "adamw"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    amsgrad: bool = True

    def _check(self) -> None:
        self._require(self.name in OPTIMIZERS, "name", f"must be one of {OPTIMIZERS}")
        self._require(self.lr > 0, "lr", "must be > 0")
        self._require(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "betas",
                      "must be two numbers in [0, 1)")
        self._require(self.eps > 0, "eps", "must be > 0")
        self._require(self.weight_decay >= 0, "weight_decay", "must be >= 0")


@dataclass(frozen=True)
class ScheduleConfig(_Section):
    """Learning-rate schedule: linear warm-up, then constant (reference), linear decay or a
    half cosine, the latter two down to ``final_lr_fraction`` of the base rate at the last step."""

    kind: str = "warmup_constant"
    warmup_steps: int = 10000
    final_lr_fraction: float = 0.0

    def _check(self) -> None:
        self._require(self.kind in SCHEDULES, "kind", f"must be one of {SCHEDULES}")
        self._require(self.warmup_steps >= 0, "warmup_steps", "must be >= 0")
        self._require(0 <= self.final_lr_fraction <= 1, "final_lr_fraction", "must be in [0, 1]")


@dataclass(frozen=True)
class TrainingConfig(_Section):
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
    dist_timeout_s: float = 600.0
    progress: bool = True
    compile: bool = False
    channels_last: bool = False
    grad_accum_steps: int = 1
    ema_decay: float | None = None
    ema_start_step: int = 0
    logger: str | None = None
    logger_project: str | None = None
    logger_run_name: str | None = None

    def _check(self) -> None:
        self._require(self.steps >= 1, "steps", "must be >= 1")
        self._require(self.grad_accum_steps >= 1, "grad_accum_steps", "must be >= 1 (1: no accumulation)")
        if self.ema_decay is not None:
            self._require(0 < self.ema_decay < 1, "ema_decay", "must be in (0, 1), e.g. 0.999 (or null for no EMA)")
        self._require(self.ema_start_step >= 0, "ema_start_step", "must be >= 0")
        if self.logger is not None:
            self._require(self.logger in LOGGERS, "logger", f"must be null or one of {LOGGERS}")
        for name in ("val_every", "checkpoint_every", "log_every", "keep_checkpoints"):
            self._require(getattr(self, name) >= 0, name, "must be >= 0 (0 turns it off)")
        self._require(self.precision in PRECISIONS, "precision", f"must be one of {PRECISIONS}")
        if self.grad_clip is not None:
            self._require(self.grad_clip > 0, "grad_clip", "must be > 0 (or null for no clipping)")
        self._require(self.loss in LOSSES, "loss", f"must be one of {sorted(LOSSES)}")
        self._require(self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"), "device",
                      "must be 'auto', 'cpu', 'cuda' or 'cuda:N'")
        self._require(self.dist_timeout_s > 0, "dist_timeout_s", "must be > 0 (seconds)")
        self._require(not (self.sync_batchnorm and self.freeze_batchnorm), "sync_batchnorm",
                      f"cannot be combined with {self._key('freeze_batchnorm')} (frozen statistics need no sync)")


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; checked on construction (each section, then how they fit)."""

    model: ResUNetConfig = field(default_factory=ResUNetConfig)
    query_encoder: Mapping[str, Any] = field(default_factory=lambda: {"kind": "clap"})
    queries: QueryConfig = field(default_factory=QueryConfig)
    data: DataConfig = field(default_factory=DataConfig)
    mixing: MixConfig = field(default_factory=MixConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)

    def __post_init__(self) -> None:
        if "kind" not in self.query_encoder:
            raise ConfigError("query_encoder.kind is required, e.g. 'clap' or 'minilm'")
        if self.model.sample_rate != self.data.sample_rate:
            raise ConfigError(
                f"data.sample_rate ({self.data.sample_rate}) must equal model.sample_rate "
                f"({self.model.sample_rate}); set both to the rate of the network"
            )
        group = self.mixing.group_size or self.data.batch_size
        if self.data.batch_size % group:
            raise ConfigError(f"mixing.group_size must divide data.batch_size ({self.data.batch_size}), "
                              f"got {self.mixing.group_size!r}")
        if group < self.mixing.most_sources:
            key = "max_sources" if self.mixing.max_sources is not None else "sources_per_mixture"
            raise ConfigError(f"data.batch_size must be >= mixing.{key} "
                              f"({self.mixing.most_sources}), got {self.data.batch_size!r}")

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


_SECTIONS = {"queries": QueryConfig, "data": DataConfig, "mixing": MixConfig,
             "optim": OptimConfig, "schedule": ScheduleConfig, "training": TrainingConfig}


def _split_types(inner: str) -> list[str]:
    """``"int, tuple[int, int]"`` -> ``["int", "tuple[int, int]"]`` (top-level commas only)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        depth += {"[": 1, "]": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(inner[start:i].strip())
            start = i + 1
    return parts + [inner[start:].strip()]


def _coerce(value: Any, annotation: str, key: str, exact_length: bool = False) -> Any:
    """Check/convert a value against a field's annotation (given as a string, e.g.
    ``"tuple[float, float] | None"``): lists become tuples, whole floats ints, ``"3e-4"`` a float.

    The length of a fixed-length tuple is left to the section's check (its message says what the
    items mean) unless ``exact_length`` (tuples inside lists, e.g. ``model.pool_sizes``).
    """
    optional = annotation.endswith(" | None")
    base = annotation.removesuffix(" | None")
    if value is None:
        if optional:
            return None
        if base.startswith("tuple[") and base.endswith(", ...]"):  # a list of any length: null is none
            return ()
        raise ConfigError(f"{key} must not be null")
    if base.startswith("tuple[") and base.endswith("]"):
        if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        types = _split_types(base[len("tuple["):-1])
        if types[-1] == "...":
            return tuple(_coerce(v, types[0], f"{key}[{i}]", exact_length=True) for i, v in enumerate(value))
        if exact_length and len(value) != len(types):
            raise ConfigError(f"{key} must be a list of {len(types)} values, got {value!r}")
        return tuple(_coerce(v, types[min(i, len(types) - 1)], f"{key}[{i}]") for i, v in enumerate(value))
    if base == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if base == "int":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return int(value)
    if base == "float":
        if isinstance(value, str):  # YAML 1.1 reads "3e-4" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
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
    """``cls`` built from the mapping ``raw`` of YAML section ``prefix``; errors name ``prefix.key``."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{prefix} must be a mapping of keys to values, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    check_keys(raw, fields, prefix, error=ConfigError)
    values = {k: _coerce(v, str(fields[k].type), f"{prefix}.{k}") for k, v in raw.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        message = str(err).replace(f"{cls.__name__}.", f"{prefix}.")
        raise ConfigError(message if f"{prefix}." in message else f"{prefix}: {message}") from None


def config_from_dict(raw: Mapping[str, Any]) -> TrainConfig:
    """Build and validate a :class:`TrainConfig` from nested plain dicts (e.g. parsed YAML)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"a training config must be a mapping of sections (model, data, ...), "
                          f"got {type(raw).__name__}")
    check_keys(raw, [f.name for f in dataclasses.fields(TrainConfig)], error=ConfigError)
    kwargs: dict[str, Any] = {name: _section(cls, raw.get(name), name) for name, cls in _SECTIONS.items()}
    model = raw.get("model")
    if isinstance(model, Mapping) and "sample_rate" not in model:
        model = {**model, "sample_rate": kwargs["data"].sample_rate}
    kwargs["model"] = _section(ResUNetConfig, model if model is not None else
                               {"sample_rate": kwargs["data"].sample_rate}, "model")
    encoder = raw.get("query_encoder")
    encoder = {"kind": "clap"} if encoder is None else encoder
    if not isinstance(encoder, Mapping):
        raise ConfigError(f"query_encoder must be a mapping with a 'kind', got {encoder!r}")
    kwargs["query_encoder"] = dict(encoder)
    return TrainConfig(**kwargs)


class _PlainLoader(yaml.SafeLoader):
    """The safe loader without timestamps: ``2024-01-01`` stays a string (configs hold no dates),
    so only numbers, booleans, null, lists and mappings change type."""


_PlainLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _yaml(text: str, where: str) -> Any:
    """``text`` parsed as YAML (safe loader, no timestamps); errors name ``where`` and the line."""
    try:
        return yaml.load(text, Loader=_PlainLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{where}: invalid YAML{at} ({problem}); fix the syntax") from None


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"optim.lr=3e-4"`` -> (["optim", "lr"], 0.0003); the value is parsed as YAML."""
    if "=" not in item:
        raise ConfigError(f"--set expects KEY=VALUE (e.g. optim.lr=3e-4), got {item!r}")
    key, value = item.split("=", 1)
    keys = key.strip().split(".")
    if not all(keys):
        raise ConfigError(f"--set {item!r}: KEY must be dotted names such as optim.lr")
    return keys, _yaml(value, f"--set {item!r}") if value.strip() else None


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Set dotted keys in a nested dict (a copy is returned)."""
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
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"training config {path} is a folder; pass a YAML file" if path.is_dir()
                          else f"training config not found: {path}; check the path")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path} is not UTF-8 text ({err.reason} at byte {err.start}); save it as UTF-8") from None
    raw = _yaml(text, str(path))
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of sections (model, data, optim, ...), "
                          f"got a {type(raw).__name__}")
    _resolve_manifests(raw, path.parent)
    raw = apply_overrides(raw, overrides)
    _resolve_manifests(raw, Path.cwd())  # paths given with --set are relative to the caller
    return config_from_dict(raw)


def _resolve_manifests(raw: dict[str, Any], base: Path) -> None:
    """Manifest and shard paths of ``raw["data"]`` (and ``mixing.ambience_manifests``) made absolute against ``base`` (URLs and
    ``pipe:`` commands are left as they are; anything but a string is left for
    :func:`config_from_dict` to refuse)."""
    for section, keys in (("data", ("train_manifests", "val_manifests", "train_shards")),
                          ("mixing", ("ambience_manifests",))):
        part = raw.get(section)
        if not isinstance(part, dict):
            continue
        for key in keys:
            if isinstance(part.get(key), str):
                part[key] = [part[key]]
            if isinstance(part.get(key), list):
                part[key] = [_resolve(base, p) if isinstance(p, str) and _is_local(p) else p for p in part[key]]
    data = raw.get("data")
    if isinstance(data, dict):
        if isinstance(data.get("shard_index"), str) and _is_local(data["shard_index"]):
            data["shard_index"] = _resolve(base, data["shard_index"])


def _is_local(p: str) -> bool:
    """Whether ``p`` names a local file (not ``pipe:...`` and not a URL such as ``https://...``)."""
    return not (p.startswith("pipe:") or "://" in p)


def _resolve(base: Path, p: str) -> str:
    path = Path(os.path.expandvars(os.path.expanduser(p)))
    return str(path if path.is_absolute() else base / path)


def config_yaml(config: TrainConfig) -> str:
    """The config as YAML text (what ``--print-config`` prints and checkpoints keep)."""
    return yaml.safe_dump(config.to_dict(), sort_keys=False)
