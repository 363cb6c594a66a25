"""Phrasings in training: one drawn per item (deterministic, validation fixed), and the text
augmentations of BatchQueries (label dropout, caption averaging, embedding mixup and noise)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
import soundfile as sf
import torch

from audiosep.query.hashed import HashedTextEncoder
from audiosep.train.config import ConfigError, DataConfig, QueryConfig, config_from_dict
from audiosep.train.data_source import query_texts
from audiosep.train.dataset import ClipDataset, collate_clips
from audiosep.train.manifest import ClipRecord
from audiosep.train.queries import BatchQueries

SR = 8000
DOG = ("a dog barking", "dogs", "Dog, bark", "a puppy yapping", "barking in the background")
RAIN = ("rain falling", "rainfall", "a downpour on a roof")


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    root = tmp_path_factory.mktemp("phr")
    out = []
    for i in range(6):
        path = root / f"c{i}.wav"
        sf.write(str(path), (0.3 * np.random.default_rng(i).standard_normal(SR)).astype(np.float32), SR)
        caps = DOG if i % 2 == 0 else RAIN
        out.append(ClipRecord(path, caps[0], ("dog",) if i % 2 == 0 else ("rain",), caps))
    out.append(ClipRecord(root / "c0.wav", "no phrasings here", ("x",)))
    return out


def test_each_item_draws_a_phrasing_deterministically_and_validation_keeps_the_caption(records):
    config = DataConfig(sample_rate=SR, segment_seconds=0.5)
    ds = ClipDataset(records, config, seed=3)
    drawn = {}
    for epoch in range(8):
        ds.set_epoch(epoch)
        drawn[epoch] = [ds[i].caption for i in range(len(ds))]
        for i, caption in enumerate(drawn[epoch]):
            assert caption in (records[i].captions or (records[i].caption,))
    assert {drawn[e][i] for e in drawn for i in (0, 2, 4)} == set(DOG)  # all 5 phrasings are drawn
    assert len({drawn[e][0] for e in drawn}) > 1  # also for one item across epochs
    assert all(drawn[e][6] == "no phrasings here" for e in drawn)
    again = ClipDataset(records, config, seed=3)
    again.set_epoch(5)
    assert [again[i].caption for i in range(len(ds))] == drawn[5]
    other = ClipDataset(records, config, seed=4)
    assert [other[i].caption for i in range(6)] != drawn[0][:6]  # the seed matters
    # crops do not depend on the phrasings: the same records without them give the same audio
    plain = ClipDataset([ClipRecord(r.path, r.caption, r.labels) for r in records], config, seed=3)
    plain.set_epoch(5)
    assert all(torch.equal(plain[i].audio, again[i].audio) for i in range(len(ds)))
    val = ClipDataset(records, config, seed=3, draw_captions=False)
    for epoch in range(4):
        val.set_epoch(epoch)
        assert [val[i].caption for i in range(len(ds))] == [r.caption for r in records]
    batch = collate_clips([ds[0], ds[1], ds[6]])
    assert batch.phrasings == [DOG, RAIN, ()]


def test_query_texts_hold_captions_phrasings_and_labels_once(records):
    texts = query_texts(records)
    assert len(texts) == len(set(texts))
    assert set(texts) == set(DOG) | set(RAIN) | {"dog", "rain", "x", "no phrasings here"}


def queries(**cfg) -> BatchQueries:
    return BatchQueries(HashedTextEncoder(dim=32), config=QueryConfig(**cfg))


CAPTIONS = ["a puppy yapping", "rainfall", "no phrasings here", "dogs"]
LABELS = [("dog",), ("rain",), (), ("dog",)]
PHRASINGS = [DOG, RAIN, (), DOG]


def call(q: BatchQueries, seed: int = 0, **kw):
    gen = torch.Generator().manual_seed(seed)
    cond = q(CAPTIONS, torch.zeros(len(CAPTIONS), 1, 10), gen, labels=LABELS, phrasings=PHRASINGS, **kw)
    return cond, gen


def emb(texts):
    return HashedTextEncoder(dim=32).encode_text(list(texts))


def test_all_options_off_give_todays_embeddings_and_leave_the_generator_alone():
    cond, gen = call(queries())
    assert torch.equal(cond, emb(CAPTIONS))
    assert torch.equal(gen.get_state(), torch.Generator().manual_seed(0).get_state())
    cond, _ = call(queries(label_dropout=0.0, caption_average=0.0, embedding_mixup=0.0, embedding_noise=0.0))
    assert torch.equal(cond, emb(CAPTIONS))


def test_label_dropout_one_gives_the_labels_embedding_and_keeps_unlabelled_items():
    cond, _ = call(queries(label_dropout=1.0))
    assert torch.allclose(cond, emb(["dog", "rain", "no phrasings here", "dog"]))


def test_caption_average_is_the_normalised_mean_of_k_distinct_phrasings():
    cond, _ = call(queries(caption_average=1.0, caption_average_count=3))
    table = dict(zip(DOG + RAIN, emb(DOG + RAIN)))
    for i in (0, 1, 3):
        # find which 3 phrasings were averaged: the only subset whose normalised mean matches
        hits = [s for s in itertools.combinations(PHRASINGS[i], 3)
                if torch.allclose(cond[i], torch.nn.functional.normalize(sum(table[t] for t in s) / 3, dim=-1),
                                  atol=1e-6)]
        assert len(hits) == 1
    assert torch.equal(cond[2], emb(["no phrasings here"])[0])  # fewer than two phrasings: unchanged
    assert torch.allclose(cond.norm(dim=-1), torch.ones(4))
    # all of them when k exceeds the phrasings
    cond, _ = call(queries(caption_average=1.0, caption_average_count=9))
    assert torch.allclose(cond[1], torch.nn.functional.normalize(emb(RAIN).mean(0), dim=-1), atol=1e-6)


def test_embedding_mixup_lies_between_two_phrasings():
    cond, _ = call(queries(embedding_mixup=1.0))
    e = emb(DOG)
    for i in (0, 3):
        # cond[i] is in the span of two phrasings' embeddings with non-negative weights
        found = False
        for a in range(len(DOG)):
            for b in range(len(DOG)):
                if a == b:
                    continue
                basis = torch.stack([e[a], e[b]], 1)
                w = torch.linalg.lstsq(basis, cond[i][:, None]).solution[:, 0]
                if torch.allclose(basis @ w, cond[i], atol=1e-5) and bool((w >= -1e-6).all()):
                    found = True
        assert found
    assert torch.allclose(cond.norm(dim=-1), torch.ones(4))


def test_embedding_noise_keeps_unit_norm_moves_the_embedding_by_its_size_and_is_seeded():
    clean = emb(CAPTIONS)
    cond, _ = call(queries(embedding_noise=0.5))
    assert torch.allclose(cond.norm(dim=-1), torch.ones(4), atol=1e-6)
    cos = (cond * clean).sum(-1)  # about 1 / sqrt(1 + 0.5**2) = 0.89 (noise norm ~0.5 +- 0.06 in 32 dims)
    assert bool((cos < 0.97).all()) and bool((cos > 0.8).all()), cos
    assert torch.equal(call(queries(embedding_noise=0.5), seed=0)[0], cond)
    assert not torch.equal(call(queries(embedding_noise=0.5), seed=1)[0], cond)
    # the size does not depend on the embedding size: 512 dims move as far as 32
    wide = BatchQueries(HashedTextEncoder(dim=512), config=QueryConfig(embedding_noise=0.5))
    wide_cos = (wide(CAPTIONS, torch.zeros(4, 1, 10), torch.Generator().manual_seed(0))
                * HashedTextEncoder(dim=512).encode_text(CAPTIONS)).sum(-1)
    assert torch.allclose(wide_cos, torch.full((4,), 0.8944), atol=0.03)


def test_options_combine_deterministically_per_seed():
    q = queries(label_dropout=0.3, caption_average=0.3, embedding_mixup=0.3, embedding_noise=0.05)
    assert torch.equal(call(q, seed=7)[0], call(q, seed=7)[0])
    assert not torch.equal(call(q, seed=7)[0], call(q, seed=8)[0])


@pytest.mark.parametrize("key,value,message", [
    ("label_dropout", 1.5, "queries.label_dropout must be in [0, 1], got 1.5"),
    ("caption_average", -0.1, "queries.caption_average must be in [0, 1]"),
    ("embedding_mixup", 2, "queries.embedding_mixup must be in [0, 1]"),
    ("embedding_noise", -1, "queries.embedding_noise must be >= 0"),
    ("caption_average_count", 1, "queries.caption_average_count must be >= 2"),
    ("embedding_noise", "lots", "queries.embedding_noise must be a number"),
])
def test_config_errors_name_the_key(key, value, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config_from_dict({"queries": {key: value}, "query_encoder": {"kind": "hashed"}})


def test_probabilities_must_not_sum_above_one():
    with pytest.raises(ConfigError, match=r"queries.label_dropout \+ queries.caption_average \+ "
                                          r"queries.embedding_mixup must be <= 1"):
        config_from_dict({"queries": {"label_dropout": 0.6, "caption_average": 0.6},
                          "query_encoder": {"kind": "hashed"}})


def test_offline_small_v2_fine_tunes_v1_with_phrasing_augmentations():
    """v2's config continues the shipped model with v1's network, encoder and data settings, plus
    the phrasing augmentations, EMA, a cosine schedule and precomputed text embeddings."""
    import dataclasses

    from audiosep.train.cli import CONFIG_DIR
    from audiosep.train.config import load_config

    v1 = load_config(CONFIG_DIR / "offline_small_placed.yaml")
    v2 = load_config(CONFIG_DIR / "offline_small_v2.yaml")
    assert v2.model == v1.model and v2.query_encoder == v1.query_encoder
    assert v2.training.init_from == "audiosep-offline-small" and v2.training.out_dir != v1.training.out_dir
    assert v2.training.ema_decay == 0.999 and v2.schedule.kind == "warmup_cosine" and v2.data.precompute_text
    assert v2.queries.augments_text and v2.queries.audio_fraction == 0
    assert v2.data == v1.data
    assert dataclasses.replace(v2.mixing, lower_db=-5, higher_db=5) == v1.mixing


def test_training_with_phrasings_and_augmentations_resumes_exactly(tmp_path):
    import json

    from audiosep.train.cli import write_tone_dataset
    from audiosep.train.trainer import Trainer

    train, _ = write_tone_dataset(tmp_path / "tones", per_tone=2, val_per_tone=0, sample_rate=SR, seconds=0.6)
    doc = json.loads(train.read_text())
    for e in doc["data"]:
        e["captions"] = [e["caption"], f"the sound of {e['caption']}", f"{e['caption']} in the background"]
        e["labels"] = [e["caption"].split()[0]]
    train.write_text(json.dumps(doc))

    def config(out, **training):
        return config_from_dict({
            "model": {"sample_rate": SR, "n_fft": 256, "hop_length": 80, "stem_channels": 4,
                      "encoder_channels": [4, 8], "pool_sizes": [[2, 2], [2, 2]], "condition_dim": 16},
            "query_encoder": {"kind": "hashed", "dim": 16},
            "queries": {"label_dropout": 0.2, "caption_average": 0.2, "embedding_mixup": 0.2, "embedding_noise": 0.3},
            "data": {"train_manifests": [str(train)], "sample_rate": SR, "segment_seconds": 0.5, "batch_size": 4,
                     "precompute_text": True},
            "mixing": {"distinct_captions": True},
            "schedule": {"warmup_steps": 2},
            "training": {"steps": 4, "val_every": 0, "checkpoint_every": 2, "log_every": 0, "out_dir": str(out),
                         "device": "cpu", "progress": False, **training},
        })

    a = Trainer(config(tmp_path / "a"))
    every = {t for e in doc["data"] for t in e["captions"] + [", ".join(e["labels"])]}
    assert every <= set(a.queries.table)  # every phrasing and label embedded once, up front
    batch = next(iter(a.train_data.loader(0)))
    assert len(set(batch.captions) - {e["caption"] for e in doc["data"]}) > 0  # other phrasings drawn
    _, _, cond = a.make_inputs(batch, step=0)
    assert not torch.allclose(cond, a.queries.text(batch.captions))  # augmented
    assert torch.equal(cond, a.make_inputs(batch, step=0)[2])  # a function of the step
    a.fit()
    b = Trainer(config(tmp_path / "b"), resume=tmp_path / "a" / "checkpoints" / "step-00000002")
    assert b.step == 2
    b.fit()
    pa, pb = a.net.state_dict(), b.net.state_dict()
    assert max(float((pa[k].float() - pb[k].float()).abs().max()) for k in pa) <= 1e-6


def test_options_no_record_can_use_are_named(records):
    from audiosep.train.queries import unused_options

    plain = [ClipRecord(r.path, r.caption) for r in records]
    cfg = QueryConfig(label_dropout=0.1, caption_average=0.1)
    assert unused_options(cfg, records) == []
    messages = unused_options(cfg, plain)
    assert len(messages) == 2 and "queries.caption_average" in messages[0] and "queries.label_dropout" in messages[1]
    assert unused_options(QueryConfig(embedding_noise=0.3), plain) == []
