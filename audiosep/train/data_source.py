"""The trainer's training data: manifests (:class:`~audiosep.train.dataset.ClipDataset` with
:class:`~audiosep.train.distributed.ShardedBatchSampler`) or tar shards
(:class:`~audiosep.train.shard_data.ShardClips`), chosen by ``data.train_manifests`` /
``data.train_shards``. Either way an epoch has ``total // (batch_size * world_size)`` steps on
every rank and a loader can start at any step of an epoch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import torch

from .config import DataConfig
from .dataset import ClipDataset, collate_clips
from .distributed import DistInfo, ShardedBatchSampler
from .manifest import ClipRecord, check_audio_files, read_manifests
from .shard_data import ShardClips, load_shard_index
from .stopping import ignore_stop_signals


@dataclass
class TrainData:
    """Training clips of one rank.

    Attributes
    ----------
    dataset : ClipDataset or ShardClips
    steps_per_epoch : int
    captions : list of str
        Every text a training query may use when known up front (manifests): each record's
        caption, its phrasings and its labels joined with ``", "`` (for ``queries.label_dropout``),
        without repeats, for ``data.precompute_text``; empty for shards (their texts are embedded
        as batches arrive).
    """

    dataset: Union[ClipDataset, ShardClips]
    steps_per_epoch: int
    captions: list[str]
    config: DataConfig
    seed: int
    info: DistInfo

    def loader(self, epoch: int, start_step: int = 0, *, pin_memory: bool = False) -> torch.utils.data.DataLoader:
        """This rank's batches (:class:`~audiosep.train.dataset.ClipBatch`) of ``epoch`` from
        ``start_step`` on."""
        data, info = self.config, self.info
        common = dict(collate_fn=collate_clips, num_workers=data.num_workers, worker_init_fn=ignore_stop_signals,
                      pin_memory=pin_memory)
        if isinstance(self.dataset, ShardClips):
            self.dataset.set_epoch(epoch, start_step)
            return torch.utils.data.DataLoader(self.dataset, batch_size=data.batch_size, **common)
        self.dataset.set_epoch(epoch)
        sampler = ShardedBatchSampler(len(self.dataset), data.batch_size, rank=info.rank,
                                      world_size=info.world_size, seed=self.seed, epoch=epoch, start_step=start_step)
        return torch.utils.data.DataLoader(self.dataset, batch_sampler=sampler, **common)


def build_train_data(data: DataConfig, seed: int, info: DistInfo) -> TrainData:
    """The training data ``data`` names, checked (clip counts, audio files of manifests)."""
    if data.train_shards:
        index = load_shard_index(data.train_shards, data.shard_index)
        clips = ShardClips(index, data, seed=seed, rank=info.rank, world_size=info.world_size)
        return TrainData(clips, clips.steps_per_epoch, [], data, seed, info)
    records = read_manifests(data.train_manifests) if data.train_manifests else []
    if not records:
        raise ValueError("data.train_manifests lists no clips; point it to a .json/.csv/.jsonl manifest "
                         "(or data.train_shards to shards written by 'audiosep-train shard')")
    check_audio_files(records, data.train_manifests, "data.train_manifests")
    steps = ShardedBatchSampler.steps_per_epoch(len(records), data.batch_size, info.world_size)
    if steps < 1:
        raise ValueError(f"{len(records)} training clips are fewer than one global batch "
                         f"({data.batch_size} x {info.world_size}); lower data.batch_size")
    return TrainData(ClipDataset(records, data, seed=seed), steps, query_texts(records), data, seed, info)


def query_texts(records: Sequence[ClipRecord]) -> list[str]:
    """Every text a training query of ``records`` may use (caption, phrasings, joined labels), once each."""
    texts = (t for r in records for t in (r.caption, *r.captions, ", ".join(r.labels)) if t)
    return list(dict.fromkeys(texts))
