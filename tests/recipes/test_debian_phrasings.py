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


def test_manifest_entries_carry_every_training_phrasing_and_the_package(tmp_path):
    import json

    import numpy as np

    from audiosep.recipes.debian_sounds.clips import Clip
    from audiosep.recipes.debian_sounds.manifests import class_table, write_manifest
    from audiosep.train.manifest import read_manifest

    clips = [Clip(id=f"{label}-{i}", label=label, package=f"pkg-{label}", version="1", origin="o", group=f"g{i}",
                  seconds=1.0, file=f"audio/{label}/{i}.flac", hash=str(i), print=np.zeros(1), split="train")
             for label in ("dog", "rain") for i in range(4)]
    write_manifest(tmp_path / "train.json", clips)
    raw = json.loads((tmp_path / "train.json").read_text())["data"]
    assert [e["package"] for e in raw] == ["pkg-dog"] * 4 + ["pkg-rain"] * 4
    records = read_manifest(tmp_path / "train.json")
    for clip, record in zip(clips, records):
        assert record.captions == training_phrasings(clip.label)
        assert record.caption in labels.CLASS_BY_NAME[clip.label].captions  # v1's captions for validation
        assert record.labels == (clip.label,)
    table = class_table(clips)
    assert table["dog"]["phrasings"] == list(training_phrasings("dog"))
    assert table["dog"]["heldout_phrasings"] == list(heldout_phrasings("dog"))
