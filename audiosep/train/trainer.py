"""The training loop, in plain PyTorch.

Determinism: every random choice is a function of the config's seed and the global step --
the data order (:class:`~audiosep.train.distributed.ShardedBatchSampler`, seeded by epoch),
each clip's crop (:class:`~audiosep.train.dataset.ClipDataset`, seeded by epoch and index), the
mixing gains and the text/audio query draws (generators seeded by ``(seed, step, group)``).
Resuming therefore needs only the step, the weights and the optimizer/scheduler states, and
``2N`` steps straight equal ``N`` steps, a resume and ``N`` more, also mid-epoch.

Distribution: each process takes its slice of the global batch and mixes it in groups of
``mixing.group_size`` clips; group ``g`` of rank ``r`` has the global index
``r * groups_per_rank + g``, so one process with the whole global batch and the same group
size makes exactly the same mixtures. Losses are batch means and DDP averages gradients, so
with frozen or synchronised BatchNorm one process on the global batch takes the same steps.
Gradient accumulation (``training.grad_accum_steps`` = A) takes A consecutive batches of the
loader per optimizer step and numbers their mixing groups on from one another (micro-batch ``k``
of rank ``r``: groups from ``(k * world_size + r) * groups_per_rank``), so A x batch B on P
processes makes the same mixtures and steps as one process with batch A x P x B.
"""
from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import shutil
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..checkpoint import NET_FILE, load_separation_net, read_state
from ..model import CONFIG_FILE, AudioSep, read_config
from ..nn.config import ResUNetConfig
from ..nn.resunet import ResUNet
from ..query import QueryEncoder
from . import run_state as ckpt
from .config import TrainConfig, config_yaml
from .ambience import AmbiencePool
from .data_source import build_train_data
from .distributed import (DistInfo, all_max, all_mean, barrier, collective_failure,
                          convert_sync_batchnorm, derive_seed, freeze_batchnorm, gather_objects, generator_for, init_distributed)
from .distributed import check_same
from .ema import WeightEMA
from .loggers import check_logger, open_logger
from .losses import get_loss
from .manifest import check_audio_files, read_manifests
from .mixing import mix_batch
from .queries import BatchQueries, build_training_encoder, unused_options
from .run_log import RunLog, train_line, val_line
from .schedule import lr_factor
from .stopping import StopSignals, TrainingStopped
from .summary import LogWindow, TrainSummary
from .validation import build_val_batches, score

__all__ = ["Trainer", "TrainSummary", "lr_factor", "starting_point", "adopt_starting_point"]


def starting_point(config: TrainConfig) -> tuple[ResUNet, dict[str, Any] | None]:
    """The network to train: a fresh one initialised from the seed (global RNG restored
    afterwards) or the weights named by ``training.init_from``; and, when that names a whole model (a bundle or a
    ``save_pretrained`` folder whose encoder needs no files of its own), the config of that model's
    query encoder (else None). A folder's encoder is not built here: the caller may pass its own."""
    source = config.training.init_from
    if source is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed("init", config.training.seed))
            return ResUNet(config.model), None

    encoder_cfg = None
    path = Path(source)
    if (path / CONFIG_FILE).is_file():  # a save_pretrained folder: its config.json, checked, decides
        model_cfg = read_config(path / CONFIG_FILE)
        net = load_separation_net(path / model_cfg.get("separation_net_file", NET_FILE),
                                  config=ResUNetConfig.from_dict(model_cfg["separation_net"]))
        files = path / model_cfg.get("query_encoder_dir", "query_encoder")
        if not (files.is_dir() and any(files.iterdir())):
            # adopted only when it needs no files of its own (paths in it are relative to that folder)
            encoder_cfg = model_cfg["query_encoder"]
    elif path.exists():  # a network checkpoint (its encoder is not built here)
        net = load_separation_net(source)
    else:  # a bundle name
        model = AudioSep.from_pretrained(source)
        net, encoder_cfg = model.separation_net, model.query_encoder.config_dict()
    if net.config.sample_rate != config.data.sample_rate:
        raise ValueError(f"training.init_from {source} is a {net.config.sample_rate} Hz network but "
                         f"data.sample_rate is {config.data.sample_rate}; set data.sample_rate to match")
    return net.train(), encoder_cfg


def adopt_starting_point(config: TrainConfig, net: ResUNet, encoder_cfg: dict[str, Any] | None) -> TrainConfig:
    """``config`` with the ``model`` section (and, for a whole model, ``query_encoder``) of the
    network fine-tuning starts from, so that checkpoints and ``final/`` describe what is trained;
    a warning names each section that the run's config had set differently. The one exception is
    ``model.input_level_db``: when the run sets it, ``net`` takes it (it changes no weights)."""
    changes: dict[str, Any] = {}
    level = config.model.input_level_db
    if level is not None and level != net.config.input_level_db:
        # changes no weights: a fine-tuning run may switch input level normalisation on (or move it)
        net.config = dataclasses.replace(net.config, input_level_db=level)
    if net.config != config.model:
        changes["model"] = net.config
    if encoder_cfg is not None and dict(encoder_cfg) != dict(config.query_encoder):
        changes["query_encoder"] = dict(encoder_cfg)
    if changes:
        warnings.warn(f"training.init_from {config.training.init_from}: using its {' and '.join(changes)} "
                      "instead of the config's (fine-tuning keeps the starting model's shape and query encoder)",
                      stacklevel=3)
    return dataclasses.replace(config, **changes) if changes else config


class Trainer:
    """Train a separation network as a :class:`TrainConfig` describes.

    Parameters
    ----------
    config : TrainConfig
    query_encoder : QueryEncoder, optional
        Use this (frozen) encoder instead of building ``config.query_encoder``.
    dist_info : DistInfo, optional
        Default: from torchrun's environment (a single CPU/GPU process without it).
    resume : path or "auto", optional
        A checkpoint folder (or run folder: its latest checkpoint) to continue from; ``"auto"``:
        the latest checkpoint in ``training.out_dir`` if there is one, else a fresh start. Without
        it ``training.out_dir`` must hold no earlier run (see :func:`run_state.choose_resume`).
    """

    def __init__(self, config: TrainConfig, *, query_encoder: QueryEncoder | None = None,
                 dist_info: DistInfo | None = None, resume: str | Path | None = None) -> None:

        net, encoder_cfg = starting_point(config)
        if config.training.init_from is not None:
            config = adopt_starting_point(config, net, None if query_encoder is not None else encoder_cfg)
        self.config = cfg = config
        tr = cfg.training
        self.info = info = dist_info or init_distributed(tr.device, tr.dist_timeout_s)
        self.device = info.device
        self.out_dir = Path(tr.out_dir)
        self.encoder = query_encoder if query_encoder is not None else build_training_encoder(cfg.query_encoder)
        self.encoder.to(self.device)

        if self.encoder.embedding_dim != net.config.condition_dim:
            raise ValueError(
                f"model.condition_dim is {net.config.condition_dim} but the {self.encoder.kind!r} query "
                f"encoder makes {self.encoder.embedding_dim}-d embeddings; set model.condition_dim: "
                f"{self.encoder.embedding_dim}"
            )
        net.to(self.device)
        if tr.sync_batchnorm and info.distributed:
            net = convert_sync_batchnorm(net, self.device)
        if tr.channels_last:
            net.to(memory_format=torch.channels_last)
        self.net = net
        self.step = 0
        self.bad_files: Counter[str] = Counter()  # whole run, all ranks (merged at log steps)
        self._bad_base: Counter[str] = Counter()  # from the checkpoint resumed
        self._local_bad: Counter[str] = Counter()  # this process, since start
        self.best_val: tuple[float, int] | None = None
        self.summary = TrainSummary(out_dir=str(self.out_dir))
        self._samples_before = 0  # samples of the runs this one resumes
        resume = ckpt.choose_resume(self.out_dir, resume)
        check_same(resume.name if resume else "a fresh start", info, "where to start",
                   f"every machine must see the same training.out_dir ({self.out_dir}), e.g. on a shared file system")
        if info.is_main:
            ckpt.remove_stale_writes(self.out_dir)  # left by a process killed mid-write
        state = ckpt.load_checkpoint(resume, net) if resume is not None else None

        if info.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.model: nn.Module = nn.parallel.DistributedDataParallel(net, device_ids=ids)
        else:
            self.model = net
        self.forward_model = torch.compile(self.model) if tr.compile else self.model
        opt = cfg.optim
        cls = torch.optim.AdamW if opt.name == "adamw" else torch.optim.Adam
        self.optimizer = cls(net.parameters(), lr=opt.lr, betas=tuple(opt.betas), eps=opt.eps,
                             weight_decay=opt.weight_decay, amsgrad=opt.amsgrad)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: lr_factor(s, cfg))
        self.loss_fn = get_loss(tr.loss)
        self.accum = tr.grad_accum_steps
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=tr.precision == "fp16")
        self.skipped_steps = 0  # fp16 steps skipped for inf/nan gradients, whole run
        if tr.precision == "fp16" and self.device.type == "cpu" and info.is_main:
            warnings.warn("training.precision fp16 on the CPU is far slower than fp32 (about 40x for the small "
                          "network of benchmarks/bench_train.py: CPUs lack fast float16 kernels); it is meant "
                          "for GPUs. On the CPU use fp32 or bf16", stacklevel=2)
        self.ema = WeightEMA(net, tr.ema_decay, tr.ema_start_step) if tr.ema_decay is not None else None
        check_logger(tr)  # a missing wandb / mlflow is an error now, not after the first steps

        data = cfg.data
        self.train_data = build_train_data(data, tr.seed, info)  # manifests or tar shards
        self.dataset = self.train_data.dataset
        self.steps_per_epoch = self.train_data.steps_per_epoch
        self.val_records = read_manifests(data.val_manifests) if data.val_manifests else []
        if self.val_records:
            check_audio_files(self.val_records, data.val_manifests, "data.val_manifests")
        self._val_batches: list[tuple[Tensor, Tensor, Tensor]] | None = None  # this rank's share
        mixing = cfg.mixing
        self.ambience = (AmbiencePool.from_manifests(mixing.ambience_manifests, data)
                         if mixing.ambience_probability > 0 else None)
        self.queries = BatchQueries(self.encoder, audio_fraction=cfg.queries.audio_fraction,
                                    sample_rate=data.sample_rate, device=self.device, config=cfg.queries)
        if info.is_main and hasattr(self.dataset, "records"):  # manifests (shards are not read up front)
            for message in unused_options(cfg.queries, self.dataset.records):
                warnings.warn(message, stacklevel=2)
        if data.precompute_text:
            self.queries.precompute(self.train_data.captions + [r.caption for r in self.val_records],
                                    cache_dir=data.embedding_cache or self.out_dir / "cache", dist_info=info)
        if state is not None:
            self._restore(state)
        if self.optimizer_steps_per_epoch < 1:
            raise ValueError(f"an epoch has {self.steps_per_epoch} batch(es) of {data.batch_size} x {info.world_size} "
                             f"process(es), fewer than training.grad_accum_steps ({self.accum}) for one optimizer "
                             "step; lower data.batch_size or training.grad_accum_steps")

    # -- state ------------------------------------------------------------------------------
    @property
    def global_batch(self) -> int:
        """Clips per optimizer step: ``data.batch_size`` x processes x ``training.grad_accum_steps``."""
        return self.config.data.batch_size * self.info.world_size * self.accum

    def training_state(self) -> dict[str, Any]:
        epoch, in_epoch = divmod(self.step, self.optimizer_steps_per_epoch)
        return {
            "step": self.step, "epoch": epoch, "epoch_step": in_epoch * self.accum,  # (loader batches)
            "global_batch": self.global_batch, "grad_accum_steps": self.accum,
            "world_size": self.info.world_size, "seed": self.config.training.seed,
            "mix_group": self.config.mixing.group_size or self.config.data.batch_size,
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "rng": ckpt.rng_states(), "bad_files": dict(self.bad_files),
            "best_val": list(self.best_val) if self.best_val else None,
            "samples": self._samples_before + self.summary.samples,
            "scaler": self.scaler.state_dict(), "skipped_steps": self.skipped_steps,
            "data_layout": self._data_layout(),
            # not in the network file (the library drops it); kept so a resumed net is identical
            "bn_batches": {k: v for k, v in self.net.state_dict().items() if k.endswith("num_batches_tracked")},
        }

    def _data_layout(self) -> dict[str, Any] | None:
        """What the data order of tar shards depends on besides the seed and the global batch
        (None for manifests: their order depends on those alone)."""
        if not self.config.data.train_shards:
            return None
        return {"world_size": self.info.world_size, "num_workers": self.config.data.num_workers}

    def _restore(self, state: dict[str, Any]) -> None:
        glob = self.global_batch
        if state["global_batch"] != glob or state["seed"] != self.config.training.seed:
            raise ValueError(
                f"checkpoint {state['directory']} was trained with global batch {state['global_batch']} and "
                f"seed {state['seed']}, this run has {glob} and {self.config.training.seed}; the data order "
                "would change. Resume with the same data.batch_size x processes x training.grad_accum_steps "
                "and training.seed"
            )
        if state.get("grad_accum_steps", 1) != self.accum:
            raise ValueError(
                f"checkpoint {state['directory']} accumulated {state.get('grad_accum_steps', 1)} batches per step, "
                f"this run {self.accum}; the data position would change. Resume with training.grad_accum_steps: "
                f"{state.get('grad_accum_steps', 1)} (and data.batch_size to match)")
        group = self.config.mixing.group_size or self.config.data.batch_size
        if state.get("mix_group", group) != group:  # (checkpoints before mix_group was saved: not checked)
            raise ValueError(
                f"checkpoint {state['directory']} mixed clips in groups of {state['mix_group']} ({state['world_size']} "
                f"process(es)), this run in groups of {group} ({self.info.world_size} x data.batch_size "
                f"{self.config.data.batch_size}); the mixtures would change. Set mixing.group_size: "
                f"{state['mix_group']} (it must divide data.batch_size) or resume on {state['world_size']} process(es)")
        layout = state.get("data_layout")
        if layout is not None and layout != self._data_layout():
            raise ValueError(
                f"checkpoint {state['directory']} read tar shards on {layout['world_size']} process(es) with "
                f"data.num_workers {layout['num_workers']}, this run on {self.info.world_size} with "
                f"{self.config.data.num_workers}; each (process, worker) reads its own part of the shards, so "
                f"the data order would change. Resume on {layout['world_size']} process(es) with "
                f"data.num_workers: {layout['num_workers']}")
        self.net.load_state_dict(state.get("bn_batches", {}), strict=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        ckpt.set_rng_states(state["rng"])
        self.step = int(state["step"])
        self.bad_files = Counter(state["bad_files"])
        self._bad_base = Counter(state["bad_files"])
        self.best_val = tuple(state["best_val"]) if state["best_val"] else None
        self._samples_before = int(state.get("samples", 0))
        if self.scaler.is_enabled() and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.skipped_steps = int(state.get("skipped_steps", 0))
        ema_file = Path(state["directory"]) / ckpt.EMA_NET_FILE
        if self.ema is not None and ema_file.is_file():  # else the average starts from the resumed weights
            self.ema.load_state_dict(read_state(ema_file)[0])

    def save_checkpoint(self) -> Path | None:
        """Write a checkpoint of the current step (rank 0) and wait for it (all ranks)."""
        path = None
        self._merge_bad_files()  # collective: every rank calls it
        if self.info.is_main:
            net_file = NET_FILE if self.ema is None else ckpt.EMA_NET_FILE  # what the folder loads as a model
            model_cfg = ckpt.model_config(self.net.config.to_dict(), self.config.data.sample_rate, self.encoder, net_file)
            path = ckpt.save_checkpoint(ckpt.checkpoint_dir(self.out_dir, self.step), self.net,
                                        self.training_state(), config_yaml(self.config), model_cfg,
                                        ema_net=self._clean_net() if self.ema is not None else None)
            ckpt.prune_checkpoints(path.parent, self.config.training.keep_checkpoints)
        barrier(self.info)
        return path

    # -- one step ---------------------------------------------------------------------------
    def _set_train_mode(self) -> None:
        self.net.train()
        if self.config.training.freeze_batchnorm:
            freeze_batchnorm(self.net)

    def make_inputs(self, batch, step: int, micro: int = 0) -> tuple[Tensor, Tensor, Tensor]:
        """Mixtures, targets Tensor[B, 1, T] and conditions Tensor[B, D] for this rank's batch
        (micro-batch ``micro`` of the step when gradients are accumulated)."""
        audio = batch.audio.to(self.device, non_blocking=True)
        size = audio.shape[0]
        group = self.config.mixing.group_size or size
        per_rank = size // group
        mix_cfg = self.config.mixing
        seed = self.config.training.seed
        first = (micro * self.info.world_size + self.info.rank) * per_rank
        mixtures, targets, conds = [], [], []
        for j in range(per_rank):
            g = first + j
            sl = slice(j * group, (j + 1) * group)
            ambience = labels = None
            if self.ambience is not None:
                ambience, labels = self.ambience.draw(group, generator_for("ambience", seed, step, g))
                ambience = ambience.to(self.device)
            mix = mix_batch(audio[sl], mix_cfg, generator_for("mix", seed, step, g),
                            batch.captions[sl], batch.labels[sl], ambience, labels)
            mixtures.append(mix.mixture)
            targets.append(mix.target)
            conds.append(self.queries(batch.captions[sl], mix.target, generator_for("query", seed, step, g),
                                      labels=batch.labels[sl], phrasings=batch.phrasings[sl]))
        return torch.cat(mixtures), torch.cat(targets), torch.cat(conds)

    def _autocast(self):
        precision = self.config.training.precision
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision, torch.float32)
        return torch.autocast(self.device.type, dtype=dtype, enabled=precision != "fp32")

    def train_step(self, batches) -> tuple[float, float]:
        """One optimizer step on this rank's batch, or on a list of ``training.grad_accum_steps``
        batches whose gradients are accumulated (each loss divided by their number).

        Returns the local loss (mean over the batches) and the gradient norm before clipping
        (inf or nan on an fp16 step that the gradient scaler skips).
        """
        batches = list(batches) if isinstance(batches, (list, tuple)) else [batches]
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for k, batch in enumerate(batches):
            mixture, target, cond = self.make_inputs(batch, self.step, micro=k)
            # DDP all-reduces the gradients on the last batch only
            quiet = self.info.distributed and k < len(batches) - 1
            with self.model.no_sync() if quiet else contextlib.nullcontext():
                with self._autocast():
                    estimate = self.forward_model(mixture, cond)
                loss = self.loss_fn(estimate.float(), target)
                self.scaler.scale(loss / len(batches)).backward()
            total += float(loss.detach())
            for path in batch.bad_files:
                self._local_bad[path] += 1
        self.scaler.unscale_(self.optimizer)  # (a no-op unless fp16)
        clip = self.config.training.grad_clip
        norm = float(nn.utils.clip_grad_norm_(self.net.parameters(), math.inf if clip is None else clip))
        if self.scaler.is_enabled():
            scale = self.scaler.get_scale()
            self.scaler.step(self.optimizer)  # skipped when a gradient is inf/nan
            self.scaler.update()
            self.skipped_steps += int(self.scaler.get_scale() < scale)
            with warnings.catch_warnings():  # after a skipped step torch warns that the optimizer did not step
                warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step()`")
                self.scheduler.step()
        else:
            self.optimizer.step()
            self.scheduler.step()
        self.step += 1
        if self.ema is not None:
            self.ema.update(self.net, self.step)
        return total / len(batches), norm

    def loader(self, epoch: int, start_step: int = 0) -> torch.utils.data.DataLoader:
        """This rank's batches of ``epoch`` from ``start_step`` on."""
        return self.train_data.loader(epoch, start_step, pin_memory=self.device.type == "cuda")

    # -- validation -------------------------------------------------------------------------
    def _build_val_batches(self) -> list[tuple[Tensor, Tensor, Tensor]]:
        """This rank's share of the fixed validation mixtures (see :mod:`.validation`)."""
        return build_val_batches(self.val_records, self.config, self.queries.text, self.info)

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Loss, SDRi and SI-SDR (dB, means over items) on the fixed validation mixtures, with the
        EMA weights when ``training.ema_decay`` is set. Each rank scores its share and the sums are
        all-reduced: every rank calls it and gets the same scores (empty without validation clips)."""
        if not self.val_records:
            return {}
        if self._val_batches is None:
            self._val_batches = self._build_val_batches()
        self.net.eval()
        try:
            with self.ema.applied(self.net) if self.ema is not None else contextlib.nullcontext():
                return score(self.net, self._val_batches, self.loss_fn, self._autocast, self.info)
        finally:
            self._set_train_mode()

    # -- the loop ---------------------------------------------------------------------------
    @property
    def optimizer_steps_per_epoch(self) -> int:
        """Optimizer steps per epoch: the loader's batches per epoch // ``grad_accum_steps`` (a
        partial group at an epoch's end is dropped, as one process with the whole global batch drops it)."""
        return self.steps_per_epoch // self.accum

    def _step_batches(self):
        """Yield ``(epoch, batches, seconds waited for them)`` per optimizer step from the current
        step to ``training.steps``: ``grad_accum_steps`` consecutive batches of the loader each."""
        per_epoch, step = self.optimizer_steps_per_epoch, self.step
        while step < self.config.training.steps:
            epoch, in_epoch = divmod(step, per_epoch)
            batches = iter(self.loader(epoch, in_epoch * self.accum))
            for _ in range(in_epoch, min(per_epoch, in_epoch + self.config.training.steps - step)):
                group, waited = [], 0.0
                for _ in range(self.accum):
                    t0 = time.perf_counter()
                    group.append(next(batches))
                    waited += time.perf_counter() - t0
                yield epoch, group, waited
                step += 1

    def fit(self) -> TrainSummary:
        """Train until ``training.steps``; returns (and on rank 0 prints) the summary.

        Rank 0 prints a line every ``training.log_every`` steps and after each validation (also
        without the progress bar). SIGTERM or Ctrl-C (SIGINT) during training: every rank stops
        after the same step, a checkpoint of it is saved and
        :class:`~audiosep.train.stopping.TrainingStopped` is raised.
        """
        tr = self.config.training
        info = self.info
        if info.is_main:
            ckpt.drop_metrics_after(self.out_dir, self.step)
        external = open_logger(tr, self.config.to_dict()) if info.is_main else None
        log = self._log = RunLog(self.out_dir, enabled=info.is_main, progress=tr.progress, total=tr.steps,
                                 initial=self.step, external=external)
        summary = self.summary
        summary.start_step = self.step
        t_start = time.perf_counter()
        window = LogWindow(time.perf_counter(), dict(self.bad_files), self.skipped_steps)
        glob = self.global_batch
        self._set_train_mode()
        signals, saved_at, steps = StopSignals(), None, None
        try:
            signals.__enter__()
            steps = self._step_batches()
            for epoch, batches, waited in steps:
                loss, norm = self.train_step(batches)
                summary.samples += glob
                window.add(loss, norm, waited)
                log.tick(loss, glob)
                last = self.step >= tr.steps
                if (tr.log_every and self.step % tr.log_every == 0) or last:
                    self._log_window(window, epoch, t_start)
                if (tr.val_every and self.step % tr.val_every == 0) or last:
                    self._run_validation(log)
                if tr.checkpoint_every and (self.step % tr.checkpoint_every == 0 or last):
                    self.save_checkpoint()
                    saved_at = self.step
                signum = all_max(signals.requested, info)  # every rank stops after the same step
                if signum:
                    if saved_at != self.step:
                        self.save_checkpoint()
                    raise TrainingStopped(signum, self.step, ckpt.checkpoint_dir(self.out_dir, self.step))
                if last:
                    break
        except RuntimeError as err:
            failure = collective_failure(err, info, tr.dist_timeout_s)
            if failure is None:
                raise
            raise failure from err
        finally:
            if steps is not None:
                steps.close()  # ends the loader's worker processes
            signals.__exit__()
            log.close()
        summary.steps = self.step
        summary.seconds = time.perf_counter() - t_start
        self._merge_bad_files()
        summary.bad_files = dict(self.bad_files)
        summary.skipped_steps, summary.ema = self.skipped_steps, self.ema is not None
        if self.best_val:
            summary.best_val_sdri, summary.best_val_step = self.best_val
            if (self.out_dir / "best").is_dir():
                summary.best_dir = str(self.out_dir / "best")
        if info.is_main:
            summary.final_dir = str(self.export(self.out_dir / "final"))
            text = summary.format()
            (self.out_dir / "summary.txt").write_text(text + "\n")
            print(text, flush=True)
        barrier(info)
        return summary

    def _log_window(self, window: LogWindow, epoch: int, t_start: float) -> None:
        """Write (metrics.jsonl, TensorBoard, tracker) and print the means of the steps since the last log."""
        info, tr = self.info, self.config.training
        mean_loss = all_mean(window.loss / window.steps, info)
        waited = all_mean(window.waited, info)
        self._merge_bad_files()
        now = time.perf_counter()
        seconds = max(now - window.t0, 1e-9)
        new_bad = sum(self.bad_files.values()) - sum(window.bad.values())
        record = {"kind": "train", "step": self.step, "epoch": epoch, "loss": mean_loss,
                  "lr": self.scheduler.get_last_lr()[0], "samples_per_s": window.steps * self.global_batch / seconds,
                  "grad_norm": window.mean_norm(), "data_wait_s": waited, "data_wait_fraction": min(1.0, waited / seconds),
                  "bad_files_new": new_bad, "bad_files_total": sum(self.bad_files.values())}
        if self.scaler.is_enabled():
            record.update(loss_scale=self.scaler.get_scale(), skipped_steps_new=self.skipped_steps - window.skipped,
                          skipped_steps_total=self.skipped_steps)
        if self.device.type == "cuda":
            record["gpu_max_allocated_gb"] = torch.cuda.max_memory_allocated(self.device) / 2**30
        self._log.write(record)
        done = self.step - self.summary.start_step
        eta = (tr.steps - self.step) * (now - t_start) / done if done else None
        self._log.say(train_line(record, tr.steps, eta))
        self.summary.first_loss = mean_loss if self.summary.first_loss is None else self.summary.first_loss
        self.summary.last_loss = mean_loss
        window.reset(now, dict(self.bad_files), self.skipped_steps)

    def _merge_bad_files(self) -> None:
        """Bad-file counts of the whole run: restored counts plus every rank's new ones."""
        total: Counter[str] = Counter(self._bad_base)
        for counts in gather_objects(dict(self._local_bad), self.info):
            total.update(counts)
        self.bad_files = total

    def _run_validation(self, log) -> None:
        """Validate (every rank); on an improved SDRi rank 0 writes ``<out_dir>/best/``."""
        scores = self.validate()
        if scores:
            self.summary.last_val = scores
            better = self.best_val is None or scores["val_sdri"] > self.best_val[0]
            if better:
                self.best_val = (scores["val_sdri"], self.step)
                if self.info.is_main:
                    self._write_best()
            record = {"kind": "val", "step": self.step, **scores, "new_best": better}
            log.write(record)
            log.say(val_line(record, better))
        barrier(self.info)

    def _write_best(self) -> None:
        """Export the current model to ``<out_dir>/best/``: written to a hidden folder beside it,
        then swapped in by renames, so ``best/`` is always a whole model."""
        best = self.out_dir / "best"
        for stale in self.out_dir.glob(".best.*"):  # left by a killed run
            shutil.rmtree(stale, ignore_errors=True)
        fresh, old = self.out_dir / f".best.{os.getpid()}.new", self.out_dir / f".best.{os.getpid()}.old"
        self.export(fresh)
        if best.exists():
            os.replace(best, old)
        os.replace(fresh, best)
        shutil.rmtree(old, ignore_errors=True)

    def _clean_net(self) -> ResUNet:
        """A plain copy of the network (no DDP / sync BatchNorm) with the EMA weights when there is an EMA."""
        with torch.random.fork_rng(devices=[]):  # building it must not move the global RNG
            clean = ResUNet(self.net.config)
        clean.load_state_dict(self.net.state_dict())
        if self.ema is not None:
            self.ema.copy_to(clean)
        return clean.eval()

    def export(self, directory: Path) -> Path:
        """Write an ``AudioSep.save_pretrained`` folder of the current weights (the EMA weights
        when ``training.ema_decay`` is set)."""
        return AudioSep(self._clean_net(), self.encoder, name="trained").save_pretrained(directory, overwrite=True)
