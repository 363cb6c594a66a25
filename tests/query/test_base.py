"""The shared QueryEncoder behaviour: an ordinary module, LRU cache, normalisation, freezing, errors."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from audiosep.query.base import QueryEncoder


class CountingEncoder(QueryEncoder):
    """Embeds a text as a fixed linear map of (length, vowels, spaces, 1), unnormalised."""

    kind = "counting"

    def __init__(self, cache_size: int = 4096) -> None:
        super().__init__(3, cache_size=cache_size)
        self.calls: list[list[str]] = []
        self.proj = nn.Linear(4, 3)
        with torch.no_grad():
            self.proj.weight.copy_(torch.arange(12.0).reshape(3, 4) / 10 + 0.1)
            self.proj.bias.fill_(0.5)
        self.freeze()

    def _embed_text(self, texts: list[str]) -> torch.Tensor:
        self.calls.append(list(texts))
        feats = torch.tensor(
            [[len(t), sum(c in "aeiou" for c in t), t.count(" "), 1.0] for t in texts], dtype=torch.float64
        )
        return self.proj(feats.float()) * 3.0  # deliberately not unit norm


def expected(text: str) -> torch.Tensor:
    enc = CountingEncoder()
    raw = enc._embed_text([text])[0]
    return raw / raw.norm()


def test_ordinary_module_frozen_from_construction():
    enc = CountingEncoder()
    params = list(enc.parameters())
    assert len(params) == 2 and not any(p.requires_grad for p in params)
    assert not enc.training and not enc.proj.training
    assert enc.state_dict()["proj.bias"].tolist() == [0.5, 0.5, 0.5]


def test_cache_follows_the_module_to_another_dtype_device():
    enc = CountingEncoder()
    first = enc.encode_text("rain")
    enc.to(torch.float64)  # a plain nn.Module move; the cached row is returned where the module is
    again = enc.encode_text("rain")
    assert len(enc.calls) == 1 and again.device == enc.device
    torch.testing.assert_close(again, first)


def test_embedding_dim_must_be_positive():
    class Empty(QueryEncoder):
        kind = "empty"

    with pytest.raises(ValueError, match="embedding_dim must be positive"):
        Empty(0)


def test_output_order_and_normalisation():
    enc = CountingEncoder()
    texts = ["rain", "a dog barking", "violin solo", "rain"]
    out = enc.encode_text(texts)
    assert out.shape == (4, 3) and out.dtype == torch.float32
    torch.testing.assert_close(out.norm(dim=-1), torch.ones(4))
    for row, t in zip(out, texts):
        torch.testing.assert_close(row, expected(t))
    assert not torch.allclose(out[0], out[1])
    torch.testing.assert_close(enc.encode_text("rain"), out[:1])  # a single string -> Tensor[1, D]


def test_cache_hits_and_duplicates():
    enc = CountingEncoder()
    enc.encode_text(["a", "b", "a", "b", "c"])
    assert enc.calls == [["a", "b", "c"]]  # duplicates in one batch embedded once, order kept
    enc.encode_text(["c", "a"])
    assert len(enc.calls) == 1  # all cached
    enc.encode_text(["a", "d"])
    assert enc.calls[-1] == ["d"]  # only the new one
    enc.clear_cache()
    enc.encode_text("a")
    assert enc.calls[-1] == ["a"]


def test_lru_eviction():
    enc = CountingEncoder(cache_size=2)
    enc.encode_text("x")
    enc.encode_text("y")
    enc.encode_text("x")  # x becomes most recent; y is now the least recent
    enc.encode_text("z")  # evicts y
    assert list(enc._cache) == ["x", "z"]
    n = len(enc.calls)
    enc.encode_text("x")
    assert len(enc.calls) == n
    enc.encode_text("y")
    assert enc.calls[-1] == ["y"]


@pytest.mark.parametrize("bad", ["", "   ", "\n\t"])
def test_empty_query_error(bad):
    enc = CountingEncoder()
    with pytest.raises(ValueError, match="e.g. 'a dog barking'"):
        enc.encode_text(["a dog", bad])
    assert enc.calls == []  # rejected before anything is embedded


def test_frozen():
    enc = CountingEncoder()
    assert enc.train() is enc and not enc.training and not enc.proj.training
    out = enc.encode_text("new text")
    assert not out.requires_grad


def test_encode_audio_on_text_only_encoder():
    enc = CountingEncoder()
    assert not enc.supports_audio
    with pytest.raises(ValueError, match="use a CLAP model"):
        enc.encode_audio(torch.zeros(1, 32000), 32000)


def test_batch_larger_than_cache():
    enc = CountingEncoder(cache_size=2)
    texts = ["a", "bb", "ccc", "a"]
    out = enc.encode_text(texts)
    for row, t in zip(out, texts):
        torch.testing.assert_close(row, expected(t))
    assert len(enc._cache) == 2 and list(enc._cache) == ["bb", "ccc"]
    enc_none = CountingEncoder(cache_size=0)
    torch.testing.assert_close(enc_none.encode_text(["a", "bb"]), out[:2])
    assert len(enc_none._cache) == 0
