"""Properties of the loudness-augmented mixer over many seeded random batches."""
from __future__ import annotations

import math

import pytest
import torch

from audiosep.train.mixing import MixConfig, choose_backgrounds, mix_batch


def _batch(seed: int, batch: int = 6, length: int = 400) -> torch.Tensor:
    g = torch.Generator().manual_seed(10_000 + seed)
    # widely varying levels, some loud enough to force de-clipping
    level = torch.pow(10.0, torch.empty(batch, 1, 1).uniform_(-3, 0.5, generator=g))
    return torch.randn(batch, 1, length, generator=g) * level


def _energy(x: torch.Tensor) -> torch.Tensor:
    return x.double().pow(2).mean(dim=(-2, -1))


@pytest.mark.parametrize("sources", [2, 3])
def test_properties_over_random_batches(sources):
    config = MixConfig(sources_per_mixture=sources, lower_db=-10, higher_db=10)
    declipped = 0
    for seed in range(60):
        audio = _batch(seed)
        out = mix_batch(audio, config, torch.Generator().manual_seed(seed))
        assert out.mixture.shape == out.target.shape == out.background.shape == audio.shape
        # exact decomposition
        assert torch.equal(out.mixture, out.target + out.background)
        # target is the (possibly de-clipped) clean item
        factor = out.target.flatten(1).norm(dim=1) / audio.flatten(1).norm(dim=1)
        assert torch.all(factor <= 1 + 1e-6)
        declipped += int((factor < 1 - 1e-6).sum())
        # background-to-target energy ratio: an integer number of dB inside the range
        ratio_db = 10 * torch.log10(_energy(out.background) / _energy(out.target))
        assert torch.allclose(ratio_db, out.background_db.double(), atol=1e-3)
        assert torch.all((out.background_db >= -10) & (out.background_db <= 10))
        assert out.background_db.dtype in (torch.int64, torch.int32)
        # peak never above 1; de-clipped items peak at declip_peak
        peak = out.mixture.abs().amax(dim=(-2, -1))
        assert torch.all(peak <= 1.0)
        clipped = factor < 1 - 1e-6
        assert torch.allclose(peak[clipped], torch.full_like(peak[clipped], 0.9), atol=1e-5)
        # cyclic backgrounds, sources - 1 of them
        assert out.background_indices == tuple(
            tuple((n + j) % 6 for j in range(1, sources)) for n in range(6)
        )
    assert declipped > 0  # the de-clipping branch was exercised


def test_three_sources_use_two_backgrounds():
    # orthogonal one-hot clips: the background's support shows which items were used
    audio = torch.zeros(4, 1, 8)
    for n in range(4):
        audio[n, 0, 2 * n : 2 * n + 2] = 0.1
    out = mix_batch(audio, MixConfig(sources_per_mixture=3), torch.Generator().manual_seed(0))
    for n in range(4):
        used = {m for m in range(4) if out.background[n, 0, 2 * m :].abs()[:2].sum() > 0}
        assert used == {(n + 1) % 4, (n + 2) % 4}


def test_same_seed_same_output_and_generator_is_the_only_randomness():
    audio = _batch(3)
    config = MixConfig()
    torch.manual_seed(1)
    a = mix_batch(audio, config, torch.Generator().manual_seed(7))
    torch.manual_seed(2)  # the global RNG must not matter
    b = mix_batch(audio, config, torch.Generator().manual_seed(7))
    c = mix_batch(audio, config, torch.Generator().manual_seed(8))
    assert torch.equal(a.mixture, b.mixture) and torch.equal(a.target, b.target)
    assert not torch.equal(a.background_db, c.background_db)


def test_gains_cover_the_integer_range():
    audio = _batch(0, batch=8)
    seen = set()
    for seed in range(40):
        out = mix_batch(audio, MixConfig(lower_db=-2, higher_db=2), torch.Generator().manual_seed(seed))
        seen |= set(out.background_db.tolist())
    assert seen == {-2, -1, 0, 1, 2}


def test_distinct_captions_never_pairs_equal_captions_or_labels():
    config = MixConfig(sources_per_mixture=3, distinct_captions=True)
    pool = [("dog barking", ("Dog",)), ("a dog barks", ("Dog", "Animal")), ("rain", ("Rain",)),
            ("Rain ", ()), ("piano", ("Music",)), ("guitar", ("Music", "Guitar")), ("car", ("Vehicle",))]
    for seed in range(50):
        g = torch.Generator().manual_seed(seed)
        pick = torch.randint(len(pool), (8,), generator=g).tolist()
        caps = [pool[p][0] for p in pick]
        labs = [pool[p][1] for p in pick]
        chosen = choose_backgrounds(8, config, caps, labs)
        for n, bgs in enumerate(chosen):
            assert n not in bgs and len(bgs) <= 2
            for m in bgs:
                assert caps[m].strip().lower() != caps[n].strip().lower()
                assert not set(labs[m]) & set(labs[n])
            # the first qualifying following items, in cyclic order
            ok = [(n + j) % 8 for j in range(1, 8)
                  if caps[(n + j) % 8].strip().lower() != caps[n].strip().lower()
                  and not set(labs[(n + j) % 8]) & set(labs[n])]
            assert list(bgs) == ok[:2]


def test_distinct_fallback_uses_fewer_or_raises_when_strict():
    audio = _batch(1, batch=3)
    caps = ["dog", "dog", "rain"]
    out = mix_batch(audio, MixConfig(distinct_captions=True), torch.Generator().manual_seed(0), captions=caps)
    assert out.background_indices == ((2,), (2,), (0,))
    out = mix_batch(audio, MixConfig(sources_per_mixture=3, distinct_captions=True),
                    torch.Generator().manual_seed(0), captions=["x", "x", "x"])
    assert out.background_indices == ((), (), ())
    assert torch.equal(out.mixture, out.target) and not out.background.any()
    with pytest.raises(ValueError, match="strict_distinct"):
        mix_batch(audio, MixConfig(sources_per_mixture=3, distinct_captions=True, strict_distinct=True),
                  torch.Generator().manual_seed(0), captions=caps)
    with pytest.raises(ValueError, match="captions and/or labels"):
        mix_batch(audio, MixConfig(distinct_captions=True), torch.Generator().manual_seed(0))


def test_batch_too_small_for_sources():
    with pytest.raises(ValueError, match="batch size of at least 3"):
        mix_batch(_batch(0, batch=2), MixConfig(sources_per_mixture=3), torch.Generator())


@pytest.mark.parametrize(
    "kwargs, field",
    [({"sources_per_mixture": 1}, "sources_per_mixture"), ({"lower_db": 5, "higher_db": 0}, "lower_db"),
     ({"declip_peak": 0.0}, "declip_peak"), ({"declip_peak": 1.5}, "declip_peak"), ({"higher_db": 2.5}, "higher_db")],
)
def test_config_validation_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=f"MixConfig.{field}"):
        MixConfig(**kwargs)


def test_reference_recipe_by_hand():
    """One item worked out with explicit gains, to pin the order of the operations."""
    audio = torch.tensor([[[0.1, -0.2, 0.3, 0.0]], [[1.0, 1.0, -1.0, -1.0]]])
    g = torch.Generator().manual_seed(123)
    out = mix_batch(audio, MixConfig(), g)
    g = torch.Generator().manual_seed(123)
    gains = torch.randint(-10, 11, (2, 1), generator=g)
    total = torch.randint(-10, 11, (2,), generator=g)
    e0, e1 = audio[0].pow(2).mean(), audio[1].pow(2).mean()
    bg = audio[1] * math.sqrt(e0 / max(e1, 1e-10)) * 10 ** (gains[0, 0].item() / 20)
    bg = bg * math.sqrt(e0 / max(bg.pow(2).mean(), 1e-10)) * 10 ** (total[0].item() / 20)
    mix = audio[0] + bg
    s = 0.9 / mix.abs().max() if mix.abs().max() > 1 else 1.0
    assert torch.allclose(out.mixture[0], mix * s, atol=1e-6)
    assert torch.allclose(out.target[0], audio[0] * s, atol=1e-7)


def _paired_cases():
    captions = ["dog", "cat", "dog", "rain", "rain", "bell", "cat"]
    return captions, [[c] for c in captions]


def test_paired_mixtures_serve_both_queries():
    captions, labels = _paired_cases()
    config = MixConfig(lower_db=-5, higher_db=5, distinct_captions=True, paired=True)
    for seed in range(20):
        audio = _batch(seed, batch=len(captions))
        out = mix_batch(audio, config, torch.Generator().manual_seed(seed), captions, labels)
        torch.testing.assert_close(out.mixture, out.target + out.background)
        partners = {n: idx[0] for n, idx in enumerate(out.background_indices) if idx}
        paired = [n for n, m in partners.items() if partners.get(m) == n]
        assert len(paired) == 6  # three pairs; the seventh item is mixed the ordinary way
        for n in paired:
            m = partners[n]
            assert captions[n] != captions[m]
            torch.testing.assert_close(out.mixture[n], out.mixture[m])  # one mixture, two queries
            torch.testing.assert_close(out.target[n], out.background[m])
            # each target is its own clip (up to a gain); the pair's gains are opposite
            cos = torch.nn.functional.cosine_similarity(out.target[n].flatten(), audio[n].flatten(), dim=0)
            assert cos > 0.9999
            assert int(out.background_db[n]) == -int(out.background_db[m])
            ratio_db = 10 * torch.log10(_energy(out.target[m][None]) / _energy(out.target[n][None]))
            assert abs(float(ratio_db) - int(out.background_db[n])) < 1e-3
            assert -5 <= int(out.background_db[n]) <= 5


def test_paired_is_deterministic_and_draws_like_the_cyclic_mixer():
    captions, labels = _paired_cases()
    audio = _batch(3, batch=len(captions))
    paired = MixConfig(distinct_captions=True, paired=True)
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    a = mix_batch(audio, paired, g1, captions, labels)
    b = mix_batch(audio, MixConfig(distinct_captions=True), g2, captions, labels)
    assert torch.equal(g1.get_state(), g2.get_state())  # same number of draws
    again = mix_batch(audio, paired, torch.Generator().manual_seed(5), captions, labels)
    assert torch.equal(a.mixture, again.mixture)
    # the unpaired item keeps the ordinary cyclic background
    lone = [n for n, idx in enumerate(a.background_indices) if a.background_indices[idx[0]] != (n,)]
    assert lone == [6]
    torch.testing.assert_close(a.mixture[6], b.mixture[6])


def test_paired_needs_two_sources():
    with pytest.raises(ValueError, match="sources_per_mixture to 2"):
        MixConfig(sources_per_mixture=3, paired=True)
