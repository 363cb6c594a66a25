"""Phrasings of the Debian sounds recipe: counts, disjoint held-out sets, every class covered."""
import pytest

from audiosep.recipes.debian_sounds import labels
from audiosep.recipes.debian_sounds.phrasings import (PHRASINGS, heldout_phrasings, normalise,
                                                      training_phrasings)

NAMES = [c.name for c in labels.CLASSES]
NEW_CLASSES = ["typing", "applause", "siren", "alarm", "phone ringing", "beep", "glass breaking", "engine", "gong"]


def test_normalise_drops_case_and_punctuation():
    assert normalise("  Dog,  bark!") == normalise("dog bark") == "dog bark"
    assert normalise("Hi-hat") == "hi hat"


@pytest.mark.parametrize("name", sorted(set(NAMES) | set(NEW_CLASSES)))
def test_every_class_has_enough_disjoint_phrasings(name):
    train, held = training_phrasings(name), heldout_phrasings(name)
    assert len(train) >= 20 and len(held) >= 6
    train_norm = [normalise(t) for t in train]
    held_norm = [normalise(h) for h in held]
    assert len(set(train_norm)) == len(train_norm) and len(set(held_norm)) == len(held_norm)
    assert not set(train_norm) & set(held_norm), "a held-out phrasing is also a training phrasing"
    assert all(t.strip() == t and t for t in train + held)


def test_labels_captions_come_first_and_their_heldout_stays_heldout():
    for spec in labels.CLASSES:
        assert training_phrasings(spec.name)[: len(spec.captions)] == spec.captions
        assert set(spec.heldout) <= set(heldout_phrasings(spec.name))


def test_no_training_phrasing_names_two_classes():
    owner: dict[str, str] = {}
    for name in PHRASINGS:
        for t in training_phrasings(name):
            assert owner.setdefault(normalise(t), name) == name, f"{t!r} of {name!r} is also {owner[normalise(t)]!r}'s"
    for name in PHRASINGS:  # nor is a held-out query of one class a training phrasing of another
        for h in heldout_phrasings(name):
            assert owner.get(normalise(h), name) == name, f"held-out {h!r} of {name!r} trains {owner[normalise(h)]!r}"


def test_unknown_class_names_the_file_to_edit():
    with pytest.raises(KeyError, match="phrasings.py"):
        training_phrasings("kazoo")
