"""Validation: fixed mixtures built once, scored in slices over the ranks and summed.

Batch ``b`` of the validation mixtures is mixed with the generator ``("val", seed, b)`` and
scored by rank ``b % world_size``; each rank sums its items' loss, SDRi and SI-SDR and the sums
are all-reduced, so every rank gets the means over all items, the same (up to the order of the
sums) as one process scoring everything.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..metrics import sdr, si_sdr
from .config import TrainConfig
from .dataset import ClipDataset, collate_clips
from .distributed import DistInfo, generator_for
from .manifest import ClipRecord
from .mixing import mix_batch

#: One validation batch: mixtures, targets Tensor[B, 1, T] and query embeddings Tensor[B, D] (CPU).
ValBatch = tuple[Tensor, Tensor, Tensor]


def build_val_batches(records: Sequence[ClipRecord], config: TrainConfig, embed_text: Callable[[list[str]], Tensor],
                      info: DistInfo) -> list[ValBatch]:
    """This rank's share (batches ``b`` with ``b % world_size == rank``) of the validation mixtures
    of the first ``data.val_items`` records; empty when they are fewer than one mixture's sources."""
    data, mixing = config.data, config.mixing
    records = list(records[: data.val_items])
    if len(records) < mixing.sources_per_mixture:
        return []
    ds = ClipDataset(records, dataclasses.replace(data, random_crop=False), seed=config.training.seed,
                     draw_captions=False)
    bounds = list(range(0, len(ds), data.val_batch_size)) + [len(ds)]
    if bounds[-1] - bounds[-2] < mixing.sources_per_mixture:  # fold a too-small tail into the previous batch
        bounds.pop(-2)
    # validation mixes the ordinary (cyclic) way whatever the training mixer, so that runs
    # trained with and without mixing.paired, max_sources or ambiences are scored on the same mixtures
    mix_cfg = dataclasses.replace(mixing, paired=False, max_sources=None, ambience_probability=0.0)
    out = []
    for b, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:])):
        if b % info.world_size != info.rank:
            continue
        batch = collate_clips([ds[i] for i in range(lo, hi)])
        mix = mix_batch(batch.audio, mix_cfg, generator_for("val", config.training.seed, b),
                        batch.captions, batch.labels)
        out.append((mix.mixture, mix.target, embed_text(batch.captions).cpu()))
    return out


@torch.no_grad()
def score(net: nn.Module, batches: Sequence[ValBatch], loss_fn: Callable[[Tensor, Tensor], Tensor],
          autocast: Callable[[], object], info: DistInfo) -> dict[str, float]:
    """Mean loss, SDRi and SI-SDR (dB) over the items of every rank's ``batches`` (collective
    when distributed: every rank calls it, also one with no batches). ``net`` is used as it is
    (the caller puts it in eval mode); empty dict when no rank has an item."""
    device = info.device
    sums = torch.zeros(4, dtype=torch.float64)  # loss, SDRi, SI-SDR, items
    for mixture, target, cond in batches:
        mixture, target, cond = (x.to(device) for x in (mixture, target, cond))
        with autocast():
            est = net(mixture, cond)
        est = est.float()
        n = len(est)
        sums[0] += float(loss_fn(est, target)) * n
        sums[1] += float((sdr(est, target) - sdr(mixture, target)).double().sum())
        sums[2] += float(si_sdr(est, target).double().sum())
        sums[3] += n
    if info.distributed:
        sums = sums.to(device)
        dist.all_reduce(sums)
        sums = sums.cpu()
    n = float(sums[3])
    if n == 0:
        return {}
    return {"val_loss": float(sums[0]) / n, "val_sdri": float(sums[1]) / n, "val_si_sdr": float(sums[2]) / n}
