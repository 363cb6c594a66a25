"""Caption embeddings computed once per run and kept on disk (audiosep/train/text_cache.py)."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch

from audiosep.query.hashed import HashedTextEncoder
from audiosep.train import queries as queries_module
from audiosep.train.cli import write_tone_dataset
from audiosep.train.config import config_from_dict
from audiosep.train.distributed import DistInfo
from audiosep.train.queries import BatchQueries
from audiosep.train.text_cache import TextEmbeddingCache
from audiosep.train.trainer import Trainer
from audiosep.weight_files import read_safetensors

SR = 8000
CAPTIONS = ["a dog barking", "rain on a roof", "a dog barking", "a violin", "  spaced  "]


class CountingEncoder(HashedTextEncoder):
    """The hashed encoder, counting the texts it really embeds (the LRU cache's misses)."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__(dim)
        self.embedded: list[str] = []

    def _embed_text(self, texts: list[str]) -> torch.Tensor:
        self.embedded += texts
        return super()._embed_text(texts)


def fill(folder: Path, encoder=None, rank: int = 0) -> tuple[BatchQueries, CountingEncoder]:
    encoder = encoder or CountingEncoder()
    queries = BatchQueries(encoder)
    assert queries.precompute(CAPTIONS, chunk=2, cache_dir=folder, dist_info=DistInfo(rank=rank)) == 4
    return queries, encoder


def test_the_cache_holds_the_encoders_embeddings_and_a_second_fill_embeds_nothing(tmp_path):
    queries, first = fill(tmp_path)
    assert sorted(first.embedded) == sorted(set(CAPTIONS))  # each distinct caption once
    expected = HashedTextEncoder(16).encode_text(list(dict.fromkeys(CAPTIONS)))
    assert torch.equal(torch.stack([queries.table[c] for c in dict.fromkeys(CAPTIONS)]), expected)
    files = list(tmp_path.iterdir())
    assert len(files) == 1 and files[0].name.startswith("text-") and files[0].suffix == ".safetensors"
    tensors, meta = read_safetensors(files[0])
    assert json.loads(meta["captions"]) == list(dict.fromkeys(CAPTIONS))
    assert torch.equal(tensors["embeddings"], expected)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again, second = fill(tmp_path)
    assert second.embedded == []
    assert all(torch.equal(again.table[c], queries.table[c]) for c in queries.table)

    # a new caption (say, a manifest added on resume): only it is embedded, and the file keeps all
    more = BatchQueries(third := CountingEncoder())
    more.precompute(CAPTIONS + ["a siren"], cache_dir=tmp_path)
    assert third.embedded == ["a siren"]
    assert len(TextEmbeddingCache(tmp_path, third).load()) == 5


def test_other_ranks_read_rank_0s_file(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(queries_module, "barrier", lambda info: calls.append(info.rank))
    main, _ = fill(tmp_path, rank=0)
    other, encoder = fill(tmp_path, rank=1)
    assert calls == [0, 1] and encoder.embedded == []
    assert all(torch.equal(other.table[c], main.table[c]) for c in main.table)
    assert len(list(tmp_path.iterdir())) == 1
    # a rank that cannot see rank 0's file (no shared folder) embeds for itself, writing nothing
    _, encoder = fill(tmp_path / "elsewhere", rank=1)
    assert sorted(encoder.embedded) == sorted(set(CAPTIONS)) and not (tmp_path / "elsewhere").exists()


def test_another_encoder_config_does_not_use_the_cache(tmp_path):
    fill(tmp_path)
    (path,) = tmp_path.iterdir()
    queries, encoder = fill(tmp_path, CountingEncoder(dim=8))  # other settings: another file
    assert sorted(encoder.embedded) == sorted(set(CAPTIONS)) and len(list(tmp_path.iterdir())) == 2
    # a file of another encoder under this encoder's name is refused too, and replaced
    (mine,) = set(tmp_path.iterdir()) - {path}
    path.replace(mine)
    with pytest.warns(UserWarning, match="unusable \\(written for another query encoder"):
        _, encoder = fill(tmp_path, CountingEncoder(dim=8))
    assert sorted(encoder.embedded) == sorted(set(CAPTIONS))
    assert read_safetensors(mine)[0]["embeddings"].shape == (4, 8)


@pytest.mark.parametrize("damage", ["truncated", "flipped", "empty"])
def test_a_damaged_cache_is_rebuilt_with_a_warning(tmp_path, damage):
    queries, _ = fill(tmp_path)
    (path,) = tmp_path.iterdir()
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[: len(data) - 20]
    elif damage == "flipped":
        data[-5] ^= 0x01  # inside the embeddings
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    match = "checksum does not match" if damage == "flipped" else "truncated or corrupt"
    with pytest.warns(UserWarning, match=f"caption embedding cache {path} is unusable .*{match}"):
        again, encoder = fill(tmp_path)
    assert sorted(encoder.embedded) == sorted(set(CAPTIONS))
    assert all(torch.equal(again.table[c], queries.table[c]) for c in queries.table)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, encoder = fill(tmp_path)  # the rebuilt file is whole
    assert encoder.embedded == []


def run_config(tmp_path: Path, out_dir: str, **data) -> dict:
    train, val = write_tone_dataset(tmp_path / "tones", per_tone=2, val_per_tone=1, sample_rate=SR, seconds=0.6)
    return {
        "model": {"sample_rate": SR, "n_fft": 256, "hop_length": 80, "stem_channels": 4,
                  "encoder_channels": [4, 8], "pool_sizes": [[2, 2], [2, 2]], "condition_dim": 16},
        "query_encoder": {"kind": "hashed", "dim": 16},
        "data": {"train_manifests": [str(train)], "val_manifests": [str(val)], "sample_rate": SR,
                 "segment_seconds": 0.5, "batch_size": 4, "precompute_text": True, **data},
        "training": {"steps": 2, "val_every": 2, "checkpoint_every": 2, "log_every": 1,
                     "out_dir": str(tmp_path / out_dir), "device": "cpu", "progress": False},
    }


def test_a_resumed_run_embeds_no_caption_again(tmp_path):
    raw = run_config(tmp_path, "run")
    first = CountingEncoder()
    Trainer(config_from_dict(raw), query_encoder=first, dist_info=DistInfo()).fit()
    assert len(first.embedded) == len(set(first.embedded)) == 6  # six tone captions, each embedded once
    raw["training"]["steps"] = 4
    second = CountingEncoder()
    Trainer(config_from_dict(raw), query_encoder=second, dist_info=DistInfo(), resume="auto").fit()
    assert second.embedded == []  # training and validation used the cached embeddings only
    assert [p.name for p in (tmp_path / "run" / "cache").iterdir()] == [
        TextEmbeddingCache(tmp_path, second).path.name]


def test_runs_sharing_data_embedding_cache_embed_once(tmp_path):
    shared = tmp_path / "embeddings"
    encoders = [CountingEncoder(), CountingEncoder()]
    for name, encoder in zip(("a", "b"), encoders):
        raw = run_config(tmp_path, name, embedding_cache=str(shared))
        Trainer(config_from_dict(raw), query_encoder=encoder, dist_info=DistInfo()).fit()
        assert not (tmp_path / name / "cache").exists()
    assert len(encoders[0].embedded) == 6 and encoders[1].embedded == []
    assert len(list(shared.iterdir())) == 1
    with pytest.raises(ValueError, match="data.embedding_cache must be a folder or null"):
        config_from_dict(run_config(tmp_path, "c", embedding_cache=" "))
