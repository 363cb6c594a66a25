"""Mixtures closer to real use: a random number of sources (mixing.max_sources) and background
ambiences (mixing.ambience_*), with the reference mixer untouched when both are off."""
from __future__ import annotations

import pytest
import torch

from audiosep.train.config import ConfigError, MixConfig, config_from_dict
from audiosep.train.mixing import choose_ambience, mix_batch

B, T = 6, 64
LABELS = [["dog"], ["rain"], ["dog"], ["speech"], ["wind"], ["speech"]]
AMB_LABELS = [["rain"], ["wind"], ["crowd"], ["traffic"]]


def _items(seed: int = 0) -> torch.Tensor:
    """One-hot items: item n lives on samples 2n..2n+1 at a random level."""
    g = torch.Generator().manual_seed(seed)
    audio = torch.zeros(B, 1, T)
    for n in range(B):
        audio[n, 0, 2 * n: 2 * n + 2] = float(torch.empty(()).uniform_(0.05, 0.5, generator=g))
    return audio


def _ambience() -> torch.Tensor:
    """Ambience clip a lives on samples 20+4a..23+4a, apart from every item."""
    amb = torch.zeros(len(AMB_LABELS), 1, T)
    for a in range(len(AMB_LABELS)):
        amb[a, 0, 20 + 4 * a: 24 + 4 * a] = 0.05
    return amb


def _energy(x: torch.Tensor) -> torch.Tensor:
    return x.double().pow(2).mean(dim=(-2, -1))


def _used_items(background: torch.Tensor) -> set[int]:
    return {m for m in range(B) if background[0, 2 * m: 2 * m + 2].abs().sum() > 0}


def _used_ambience(background: torch.Tensor) -> set[int]:
    return {a for a in range(len(AMB_LABELS)) if background[0, 20 + 4 * a: 24 + 4 * a].abs().sum() > 0}


def test_defaults_draw_exactly_what_the_reference_mixer_draws():
    g = torch.Generator().manual_seed(3)
    ref = torch.Generator().manual_seed(3)
    out = mix_batch(_items(), MixConfig(), g, labels=LABELS, ambience=_ambience(), ambience_labels=AMB_LABELS)
    gains = torch.randint(-10, 11, (B, 1), generator=ref)
    total = torch.randint(-10, 11, (B,), generator=ref)
    assert torch.equal(out.background_db, total) and gains.shape == (B, 1)
    assert torch.equal(torch.rand(4, generator=g), torch.rand(4, generator=ref))  # nothing else was drawn
    assert all(not _used_ambience(out.background[n]) for n in range(B))  # probability 0: no ambience


def test_two_or_three_sources_drawn_per_mixture():
    config = MixConfig(sources_per_mixture=2, max_sources=3)
    counts = {1: 0, 2: 0}
    for seed in range(60):
        out = mix_batch(_items(seed), config, torch.Generator().manual_seed(seed))
        again = mix_batch(_items(seed), config, torch.Generator().manual_seed(seed))
        assert torch.equal(out.mixture, again.mixture) and out.background_indices == again.background_indices
        for n, picks in enumerate(out.background_indices):
            assert picks == tuple((n + j) % B for j in range(1, len(picks) + 1))
            assert _used_items(out.background[n]) == set(picks)  # exactly the drawn backgrounds are in it
            counts[len(picks)] += 1
        # target-to-background energy ratio spans -10..+10 dB whatever the number of sources
        tbr = 10 * torch.log10(_energy(out.target) / _energy(out.background))
        assert torch.allclose(tbr, -out.background_db.double(), atol=1e-3)
        assert torch.all(out.background_db.abs() <= 10)
    share = counts[2] / (counts[1] + counts[2])
    assert 0.4 < share < 0.6, counts  # uniform over {2, 3} sources


def test_ambience_is_never_the_target_class_and_keeps_the_ratio():
    config = MixConfig(ambience_manifests=("amb.json",), ambience_probability=0.5, distinct_captions=True)
    used = 0
    for seed in range(60):
        out = mix_batch(_items(seed), config, torch.Generator().manual_seed(seed), labels=LABELS,
                        ambience=_ambience(), ambience_labels=AMB_LABELS)
        for n in range(B):
            amb = _used_ambience(out.background[n])
            assert len(amb) <= 1
            for a in amb:
                assert not set(AMB_LABELS[a]) & set(LABELS[n])
                used += 1
        tbr = 10 * torch.log10(_energy(out.target) / _energy(out.background))
        assert torch.allclose(tbr, -out.background_db.double(), atol=1e-3)
    assert 0.4 < used / (60 * B) < 0.6  # about half the mixtures


def test_ambience_level_relative_to_the_target():
    # one background at 0 dB and the ambience at -3 dB, both relative to the target's energy
    config = MixConfig(lower_db=0, higher_db=0, ambience_manifests=("amb.json",), ambience_probability=1.0,
                       ambience_lower_db=-3, ambience_higher_db=-3)
    out = mix_batch(_items(), config, torch.Generator().manual_seed(0), labels=LABELS,
                    ambience=_ambience(), ambience_labels=AMB_LABELS)
    for n in range(B):
        first = n % len(AMB_LABELS)  # cyclically from the item's index, skipping its own class
        assert _used_ambience(out.background[n]) == {first + (AMB_LABELS[first] == LABELS[n])}
        amb = out.background[n, 0, 20:].double().pow(2).sum()
        other = out.background[n, 0, :20].double().pow(2).sum()
        assert 10 * torch.log10(amb / other) == pytest.approx(-3.0, abs=1e-3)
    assert choose_ambience([["RAIN "]], [["rain"], ["wind"]]) == [1]  # labels compared like captions
    assert choose_ambience([["rain"]], [["rain"]]) == [None]
    # items whose only ambience is their own class get none
    out = mix_batch(_items(), config, torch.Generator().manual_seed(0), labels=[["rain"]] * B,
                    ambience=_ambience()[:1], ambience_labels=AMB_LABELS[:1])
    assert all(not _used_ambience(out.background[n]) for n in range(B))


def test_ambience_needs_its_clips_and_labels():
    config = MixConfig(ambience_manifests=("amb.json",), ambience_probability=0.5)
    with pytest.raises(ValueError, match="pass ambience, ambience_labels and labels"):
        mix_batch(_items(), config, torch.Generator(), labels=LABELS)
    with pytest.raises(ValueError, match="ambience must be Tensor"):
        mix_batch(_items(), config, torch.Generator(), labels=LABELS, ambience=torch.zeros(2, 1, 5),
                  ambience_labels=[["a"], ["b"]])


@pytest.mark.parametrize("kwargs, message", [
    (dict(max_sources=1), "MixConfig.max_sources must be >= MixConfig.sources_per_mixture (2)"),
    (dict(max_sources=3, paired=True), "MixConfig.paired makes two-source mixtures; set MixConfig.max_sources"),
    (dict(ambience_probability=0.2), "MixConfig.ambience_probability needs ambience clips; list their manifests in MixConfig.ambience_manifests"),
    (dict(ambience_probability=1.5, ambience_manifests=("a",)), "MixConfig.ambience_probability must be in [0, 1]"),
    (dict(ambience_probability=0.5, ambience_manifests=("a",), paired=True),
     "MixConfig.ambience_probability cannot be combined with MixConfig.paired"),
    (dict(ambience_lower_db=3, ambience_higher_db=0), "MixConfig.ambience_lower_db must be <="),
    (dict(max_sources=4, group_size=3), "MixConfig.group_size must be >= MixConfig.max_sources (4)"),
])
def test_config_checks(kwargs, message):
    with pytest.raises(ConfigError) as err:
        MixConfig(**kwargs)
    assert str(err.value).startswith(message)


def test_batch_must_hold_the_most_sources():
    raw = {"model": {"sample_rate": 8000}, "data": {"sample_rate": 8000, "batch_size": 3},
           "query_encoder": {"kind": "hashed"}, "mixing": {"max_sources": 4}}
    with pytest.raises(ConfigError, match=r"data.batch_size must be >= mixing.max_sources \(4\), got 3"):
        config_from_dict(raw)
