"""The trainer with background ambiences and 2..3 sources: the ambience reaches every training
mixture (probability 1), is seeded by the step, and validation mixtures stay the ordinary ones."""
from __future__ import annotations

import dataclasses
import json
import math

import soundfile
import torch
from test_trainer import SR, tiny_config, tones  # noqa: F401  (tones is a fixture)

from audiosep.train.dataset import collate_clips
from audiosep.train.trainer import Trainer

AMBIENCE_HZ = 2800.0  # between the test tones at 1760 and 3520 Hz


def _ambience_manifest(root, label="hum"):
    root.mkdir(parents=True, exist_ok=True)
    t = torch.arange(SR) / SR
    soundfile.write(root / "amb.wav", (0.2 * torch.sin(2 * math.pi * AMBIENCE_HZ * t)).numpy(), SR)
    (root / "amb.json").write_text(json.dumps({"data": [{"wav": "amb.wav", "caption": "a hum", "labels": [label]}]}))
    return str(root / "amb.json")


def _band_share(x: torch.Tensor) -> torch.Tensor:
    """Share of each item's energy near AMBIENCE_HZ: Tensor[B, 1, T] -> Tensor[B]."""
    spec = torch.fft.rfft(x[:, 0].double(), dim=-1).abs().pow(2)
    freqs = torch.fft.rfftfreq(x.shape[-1], 1 / SR)
    return spec[:, (freqs > AMBIENCE_HZ - 150) & (freqs < AMBIENCE_HZ + 150)].sum(-1) / spec.sum(-1).clamp_min(1e-20)


def _trainer(train, val, out, **mixing):
    cfg = tiny_config(train, val, out)
    return Trainer(dataclasses.replace(cfg, mixing=dataclasses.replace(cfg.mixing, **mixing)))


def test_ambience_in_every_training_mixture_and_not_in_validation(tones, tmp_path):
    train, val = tones
    amb = _ambience_manifest(tmp_path / "amb")
    plain = _trainer(train, val, tmp_path / "a")
    trainer = _trainer(train, val, tmp_path / "b", ambience_manifests=(amb,), ambience_probability=1.0,
                       max_sources=3)
    first = {}  # one clip of each of the four lowest tones
    for i, record in enumerate(trainer.dataset.records):
        first.setdefault(record.caption, i)
    batch = collate_clips([trainer.dataset[i] for i in list(first.values())[:4]])
    assert len(set(batch.captions)) == 4
    mixtures, targets, _ = trainer.make_inputs(batch, step=0)
    assert torch.all(_band_share(mixtures - targets) > 0.01)  # the ambience is under every target
    assert torch.all(_band_share(targets) < 1e-3)  # and never in the target
    again, _, _ = trainer.make_inputs(batch, step=0)
    other, _, _ = trainer.make_inputs(batch, step=1)
    assert torch.equal(mixtures, again) and not torch.equal(mixtures, other)
    base, _, _ = plain.make_inputs(batch, step=0)
    assert torch.all(_band_share(base - targets) < 1e-3)
    for (m1, t1, _), (m2, t2, _) in zip(plain._build_val_batches(), trainer._build_val_batches(), strict=True):
        assert torch.equal(m1, m2) and torch.equal(t1, t2)


def test_a_missing_ambience_manifest_is_the_missing_manifest_error(tones, tmp_path):
    import pytest

    train, val = tones
    with pytest.raises(FileNotFoundError, match=r"manifest not found: .*nothing.json; check the path"):
        _trainer(train, val, tmp_path / "c", ambience_manifests=(str(tmp_path / "nothing.json"),),
                 ambience_probability=0.5)
