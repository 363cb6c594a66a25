"""Background ambience clips for training mixtures (``mixing.ambience_*``).

The pool reads the clips of ``mixing.ambience_manifests`` the way training clips are read (crop,
padding, silence guard; no speed change). :meth:`AmbiencePool.draw` cuts one segment from each of
``count`` clips drawn with the generator it is given, so the ambience of a training step is a
function of the seed and the step (the trainer passes ``generator_for("ambience", seed, step,
group)``). :func:`audiosep.train.mixing.mix_batch` decides which items get one and at what level.
"""
from __future__ import annotations

import dataclasses
import warnings
from typing import Sequence

import torch
from torch import Tensor

from .config import DataConfig
from .dataset import BadAudioFile, SegmentReader
from .manifest import ClipRecord, check_audio_files, read_manifests


class AmbiencePool(SegmentReader):
    """Ambience clips and their labels.

    Parameters
    ----------
    records : sequence of ClipRecord
        At least one; their ``labels`` keep an ambience away from targets of its own class.
    config : DataConfig
        Sample rate, segment length, silence guard (``speed_range`` is not used).
    """

    def __init__(self, records: Sequence[ClipRecord], config: DataConfig) -> None:
        if not records:
            raise ValueError("mixing.ambience_manifests lists no clips; point it to manifests of ambience "
                             "recordings or set mixing.ambience_probability to 0")
        super().__init__(dataclasses.replace(config, speed_range=None, random_crop=True))
        self.records = list(records)
        self._warned: set[str] = set()

    @classmethod
    def from_manifests(cls, manifests: Sequence[str], config: DataConfig) -> "AmbiencePool":
        """The pool of ``manifests`` (their audio files checked)."""
        records = read_manifests(manifests)
        if records:
            check_audio_files(records, manifests, "mixing.ambience_manifests")
        return cls(records, config)

    def draw(self, count: int, generator: torch.Generator) -> tuple[Tensor, tuple[tuple[str, ...], ...]]:
        """``count`` segments of clips drawn uniformly with replacement.

        Returns
        -------
        audio : Tensor[count, 1, T]
            A clip that cannot be read (warned once) gives silence, which adds nothing.
        labels : tuple of tuple of str
            Each segment's labels.
        """
        picks = torch.randint(len(self.records), (count,), generator=generator).tolist()
        out = torch.zeros(count, 1, self.segment)
        for n, i in enumerate(picks):
            record = self.records[i]
            try:
                out[n] = self.segment_of(str(record.path), generator)
            except BadAudioFile as err:
                if str(record.path) not in self._warned:
                    self._warned.add(str(record.path))
                    warnings.warn(f"skipping ambience file {record.path}: {err}", RuntimeWarning, stacklevel=2)
        return out, tuple(tuple(self.records[i].labels) for i in picks)
