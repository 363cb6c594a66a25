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
"""
from __future__ import annotations

import dataclasses
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ..checkpoint import NET_FILE, load_separation_net
from ..metrics import sdr, si_sdr
from ..model import CONFIG_FILE, AudioSep, read_config
from ..nn.config import ResUNetConfig
from ..nn.resunet import ResUNet
from ..query import QueryEncoder
from . import run_state as ckpt
from .config import TrainConfig, config_yaml
from .data_source import build_train_data
from .dataset import ClipDataset, collate_clips
from .distributed import (DistInfo, all_max, all_mean, barrier, collective_failure,
                          convert_sync_batchnorm, derive_seed, freeze_batchnorm, gather_objects, generator_for, init_distributed)
from .distributed import check_same
from .losses import get_loss
from .manifest import check_audio_files, read_manifests
from .mixing import mix_batch
from .queries import BatchQueries, build_training_encoder
from .run_log import RunLog
from .stopping import StopSignals, TrainingStopped


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
    out_dir: str = ""
    final_dir: str | None = None

    def format(self) -> str:
        lines = [
            f"trained steps {self.start_step} -> {self.steps} in {self.seconds:.1f} s "
            f"({self.samples / max(self.seconds, 1e-9):.1f} samples/s)",
            f"training loss: first logged {_fmt(self.first_loss)}, last logged {_fmt(self.last_loss)}",
        ]
        if self.best_val_sdri is not None:
            lines.append(f"best validation SDRi {self.best_val_sdri:.2f} dB at step {self.best_val_step}; "
                         f"last: " + ", ".join(f"{k} {v:.3f}" for k, v in self.last_val.items()))
        if self.bad_files:
            lines.append(f"bad files skipped: {len(self.bad_files)} file(s), "
                         f"{sum(self.bad_files.values())} time(s)")
            lines += [f"  {n:5d} x {p}" for p, n in sorted(self.bad_files.items(), key=lambda kv: -kv[1])[:20]]
        else:
            lines.append("bad files skipped: none")
        lines.append(f"outputs: {self.out_dir}" + (f"; final model: {self.final_dir}" if self.final_dir else ""))
        return "\n".join(lines)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.5f}"


def lr_factor(step: int, config: TrainConfig) -> float:
    """Multiplier of the base learning rate for optimizer step ``step`` (0-based)."""
    sched = config.schedule
    if step < sched.warmup_steps:
        return (step + 1) / sched.warmup_steps
    if sched.kind == "warmup_constant":
        return 1.0
    span = max(1, config.training.steps - sched.warmup_steps)
    done = min(1.0, (step - sched.warmup_steps) / span)
    return 1.0 - done * (1.0 - sched.final_lr_fraction)


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

        data = cfg.data
        self.train_data = build_train_data(data, tr.seed, info)  # manifests or tar shards
        self.dataset = self.train_data.dataset
        self.steps_per_epoch = self.train_data.steps_per_epoch
        self.val_records = read_manifests(data.val_manifests) if data.val_manifests else []
        if self.val_records:
            check_audio_files(self.val_records, data.val_manifests, "data.val_manifests")
        self._val_batches: list[tuple[Tensor, Tensor, Tensor]] | None = None
        self.queries = BatchQueries(self.encoder, audio_fraction=cfg.queries.audio_fraction,
                                    sample_rate=data.sample_rate, device=self.device)
        if data.precompute_text:
            self.queries.precompute(self.train_data.captions + [r.caption for r in self.val_records],
                                    cache_dir=data.embedding_cache or self.out_dir / "cache", dist_info=info)
        if state is not None:
            self._restore(state)

    # -- state ------------------------------------------------------------------------------
    def training_state(self) -> dict[str, Any]:
        epoch, in_epoch = divmod(self.step, self.steps_per_epoch)
        return {
            "step": self.step, "epoch": epoch, "epoch_step": in_epoch,
            "global_batch": self.config.data.batch_size * self.info.world_size,
            "world_size": self.info.world_size, "seed": self.config.training.seed,
            "mix_group": self.config.mixing.group_size or self.config.data.batch_size,
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "rng": ckpt.rng_states(), "bad_files": dict(self.bad_files),
            "best_val": list(self.best_val) if self.best_val else None,
            "samples": self._samples_before + self.summary.samples,
            # not in the network file (the library drops it); kept so a resumed net is identical
            "bn_batches": {k: v for k, v in self.net.state_dict().items() if k.endswith("num_batches_tracked")},
        }

    def _restore(self, state: dict[str, Any]) -> None:
        glob = self.config.data.batch_size * self.info.world_size
        if state["global_batch"] != glob or state["seed"] != self.config.training.seed:
            raise ValueError(
                f"checkpoint {state['directory']} was trained with global batch {state['global_batch']} and "
                f"seed {state['seed']}, this run has {glob} and {self.config.training.seed}; the data order "
                "would change. Resume with the same data.batch_size x processes and training.seed"
            )
        group = self.config.mixing.group_size or self.config.data.batch_size
        if state.get("mix_group", group) != group:  # (checkpoints before mix_group was saved: not checked)
            raise ValueError(
                f"checkpoint {state['directory']} mixed clips in groups of {state['mix_group']} ({state['world_size']} "
                f"process(es)), this run in groups of {group} ({self.info.world_size} x data.batch_size "
                f"{self.config.data.batch_size}); the mixtures would change. Set mixing.group_size: "
                f"{state['mix_group']} (it must divide data.batch_size) or resume on {state['world_size']} process(es)")
        self.net.load_state_dict(state.get("bn_batches", {}), strict=False)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        ckpt.set_rng_states(state["rng"])
        self.step = int(state["step"])
        self.bad_files = Counter(state["bad_files"])
        self._bad_base = Counter(state["bad_files"])
        self.best_val = tuple(state["best_val"]) if state["best_val"] else None
        self._samples_before = int(state.get("samples", 0))

    def save_checkpoint(self) -> Path | None:
        """Write a checkpoint of the current step (rank 0) and wait for it (all ranks)."""
        path = None
        self._merge_bad_files()  # collective: every rank calls it
        if self.info.is_main:
            model_cfg = ckpt.model_config(self.net.config.to_dict(), self.config.data.sample_rate, self.encoder)
            path = ckpt.save_checkpoint(ckpt.checkpoint_dir(self.out_dir, self.step), self.net,
                                        self.training_state(), config_yaml(self.config), model_cfg)
            ckpt.prune_checkpoints(path.parent, self.config.training.keep_checkpoints)
        barrier(self.info)
        return path

    # -- one step ---------------------------------------------------------------------------
    def _set_train_mode(self) -> None:
        self.net.train()
        if self.config.training.freeze_batchnorm:
            freeze_batchnorm(self.net)

    def make_inputs(self, batch, step: int) -> tuple[Tensor, Tensor, Tensor]:
        """Mixtures, targets Tensor[B, 1, T] and conditions Tensor[B, D] for this rank's batch."""
        audio = batch.audio.to(self.device, non_blocking=True)
        size = audio.shape[0]
        group = self.config.mixing.group_size or size
        per_rank = size // group
        mix_cfg = self.config.mixing
        seed = self.config.training.seed
        mixtures, targets, conds = [], [], []
        for j in range(per_rank):
            g = self.info.rank * per_rank + j
            sl = slice(j * group, (j + 1) * group)
            mix = mix_batch(audio[sl], mix_cfg, generator_for("mix", seed, step, g),
                            batch.captions[sl], batch.labels[sl])
            mixtures.append(mix.mixture)
            targets.append(mix.target)
            conds.append(self.queries(batch.captions[sl], mix.target, generator_for("query", seed, step, g)))
        return torch.cat(mixtures), torch.cat(targets), torch.cat(conds)

    def _autocast(self):
        enabled = self.config.training.precision == "bf16"
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def train_step(self, batch) -> float:
        """One optimizer step on this rank's batch; returns the local loss."""
        mixture, target, cond = self.make_inputs(batch, self.step)
        with self._autocast():
            estimate = self.forward_model(mixture, cond)
        loss = self.loss_fn(estimate.float(), target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.training.grad_clip is not None:
            nn.utils.clip_grad_norm_(self.net.parameters(), self.config.training.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        for path in batch.bad_files:
            self._local_bad[path] += 1
        self.step += 1
        return float(loss.detach())

    def loader(self, epoch: int, start_step: int = 0) -> torch.utils.data.DataLoader:
        """This rank's batches of ``epoch`` from ``start_step`` on."""
        return self.train_data.loader(epoch, start_step, pin_memory=self.device.type == "cuda")

    # -- validation -------------------------------------------------------------------------
    def _build_val_batches(self) -> list[tuple[Tensor, Tensor, Tensor]]:
        data, mixing = self.config.data, self.config.mixing
        records = self.val_records[: data.val_items]
        if len(records) < mixing.sources_per_mixture:
            return []
        ds = ClipDataset(records, dataclasses.replace(data, random_crop=False), seed=self.config.training.seed)
        bounds = list(range(0, len(ds), data.val_batch_size)) + [len(ds)]
        if bounds[-1] - bounds[-2] < mixing.sources_per_mixture:  # fold a too-small tail into the previous batch
            bounds.pop(-2)
        # validation mixes the ordinary (cyclic) way whatever the training mixer, so that runs
        # trained with and without mixing.paired are scored on the same mixtures
        mix_cfg = dataclasses.replace(mixing, paired=False)
        out = []
        for b, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
            batch = collate_clips([ds[i] for i in range(lo, hi)])
            mix = mix_batch(batch.audio, mix_cfg, generator_for("val", self.config.training.seed, b),
                            batch.captions, batch.labels)
            out.append((mix.mixture, mix.target, self.queries.text(batch.captions).cpu()))
        return out

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Loss, SDRi and SI-SDR (dB, means over items) on the fixed validation mixtures (rank 0
        computes; other ranks return an empty dict)."""
        if not self.info.is_main or not self.val_records:
            return {}
        if self._val_batches is None:
            self._val_batches = self._build_val_batches()
        if not self._val_batches:
            return {}
        self.net.eval()
        losses, sdris, sisdrs, n = 0.0, [], [], 0
        try:
            for mixture, target, cond in self._val_batches:
                mixture, target, cond = (x.to(self.device) for x in (mixture, target, cond))
                with self._autocast():
                    est = self.net(mixture, cond)
                est = est.float()
                losses += float(self.loss_fn(est, target)) * len(est)
                n += len(est)
                sdris.append((sdr(est, target) - sdr(mixture, target)).flatten().cpu())
                sisdrs.append(si_sdr(est, target).flatten().cpu())
        finally:
            self._set_train_mode()
        return {"val_loss": losses / n, "val_sdri": float(torch.cat(sdris).mean()),
                "val_si_sdr": float(torch.cat(sisdrs).mean())}

    # -- the loop ---------------------------------------------------------------------------
    def fit(self) -> TrainSummary:
        """Train until ``training.steps``; returns (and on rank 0 prints) the summary.

        SIGTERM or Ctrl-C (SIGINT) during training: every rank stops after the same step, a
        checkpoint of it is saved and :class:`~audiosep.train.stopping.TrainingStopped` is raised.
        """
        tr = self.config.training
        info = self.info
        if info.is_main:
            ckpt.drop_metrics_after(self.out_dir, self.step)
        log = RunLog(self.out_dir, enabled=info.is_main, progress=tr.progress, total=tr.steps, initial=self.step)
        summary = self.summary
        summary.start_step = self.step
        t_start = time.perf_counter()
        window_loss, window_steps, window_t, reported_bad = 0.0, 0, time.perf_counter(), dict(self.bad_files)
        glob = self.config.data.batch_size * info.world_size
        self._set_train_mode()
        signals, saved_at = StopSignals(), None
        try:
            signals.__enter__()
            while self.step < tr.steps:
                epoch, in_epoch = divmod(self.step, self.steps_per_epoch)
                for batch in self.loader(epoch, in_epoch):
                    loss = self.train_step(batch)
                    summary.samples += glob
                    window_loss += loss
                    window_steps += 1
                    log.tick(loss, glob)
                    last = self.step >= tr.steps
                    if (tr.log_every and self.step % tr.log_every == 0) or last:
                        mean_loss = all_mean(window_loss / window_steps, info)
                        self._merge_bad_files()
                        now = time.perf_counter()
                        new_bad = sum(self.bad_files.values()) - sum(reported_bad.values())
                        log.write({"kind": "train", "step": self.step, "epoch": epoch, "loss": mean_loss,
                                   "lr": self.scheduler.get_last_lr()[0],
                                   "samples_per_s": window_steps * glob / max(now - window_t, 1e-9),
                                   "bad_files_new": new_bad, "bad_files_total": sum(self.bad_files.values())})
                        summary.first_loss = mean_loss if summary.first_loss is None else summary.first_loss
                        summary.last_loss = mean_loss
                        reported_bad = dict(self.bad_files)
                        window_loss, window_steps, window_t = 0.0, 0, now
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
            signals.__exit__()
            log.close()
        summary.steps = self.step
        summary.seconds = time.perf_counter() - t_start
        self._merge_bad_files()
        summary.bad_files = dict(self.bad_files)
        if self.best_val:
            summary.best_val_sdri, summary.best_val_step = self.best_val
        if info.is_main:
            summary.final_dir = str(self.export(self.out_dir / "final"))
            text = summary.format()
            (self.out_dir / "summary.txt").write_text(text + "\n")
            print(text, flush=True)
        barrier(info)
        return summary

    def _merge_bad_files(self) -> None:
        """Bad-file counts of the whole run: restored counts plus every rank's new ones."""
        total: Counter[str] = Counter(self._bad_base)
        for counts in gather_objects(dict(self._local_bad), self.info):
            total.update(counts)
        self.bad_files = total

    def _run_validation(self, log) -> None:
        scores = self.validate()
        if scores:
            self.summary.last_val = scores
            if self.best_val is None or scores["val_sdri"] > self.best_val[0]:
                self.best_val = (scores["val_sdri"], self.step)
            log.write({"kind": "val", "step": self.step, **scores})
        barrier(self.info)

    def export(self, directory: Path) -> Path:
        """Write an ``AudioSep.save_pretrained`` folder of the current weights."""
        clean = ResUNet(self.net.config)
        clean.load_state_dict(self.net.state_dict())
        return AudioSep(clean.eval(), self.encoder, name="trained").save_pretrained(directory, overwrite=True)
