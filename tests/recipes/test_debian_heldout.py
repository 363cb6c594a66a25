"""Held-out packages: every clip of them (and of their recording groups) lands in heldout.json,
never in the training or validation manifests; names are checked before any download."""
import json

import numpy as np
import pytest

from audiosep.recipes.debian_sounds.__main__ import main
from audiosep.recipes.debian_sounds.clips import Clip
from audiosep.recipes.debian_sounds.manifests import write_all
from audiosep.recipes.debian_sounds.packages import ALLOWED
from audiosep.recipes.debian_sounds.split import (DEFAULT_HELDOUT_PACKAGES, assign_splits, heldout_set,
                                                  hold_out_packages)


def _clip(i, label, package, group, seconds=4.0):
    return Clip(id=f"c{i}", label=label, package=package, version="1", origin=f"p/{i}.wav", group=group,
                seconds=seconds, file=f"audio/{label}/c{i}.flac", hash=str(i), print=np.zeros(4))


def _clips():
    clips = []
    for i in range(40):  # two packages sharing classes, ten groups each
        package = "wesnoth-1.16-data" if i % 2 else "0ad-data"
        clips.append(_clip(i, ("dog", "rain")[i % 4 // 2], package, f"{package}:{i % 20}"))
    # a clip of another package that the fingerprint merge put into a held-out recording's group
    clips.append(_clip(99, "dog", "minetest-data", "wesnoth-1.16-data:1"))
    return clips


def test_held_out_packages_never_reach_train_or_val(tmp_path):
    clips = _clips()
    counts = hold_out_packages(clips, frozenset({"wesnoth-1.16-data"}))
    assign_splits(clips, 0.3, seed=0)
    assert counts == {"minetest-data": 1, "wesnoth-1.16-data": 20}
    held = {c.id for c in clips if c.split == "heldout"}
    assert held == {c.id for c in clips if c.package == "wesnoth-1.16-data"} | {"c99"}
    rest = [c for c in clips if c.split != "heldout"]
    assert {c.split for c in rest} == {"train", "val"}  # the others are still split by group
    write_all(tmp_path, clips, {}, {"dropped": {}, "packages": {}, "heldout_packages": ["wesnoth-1.16-data"]})
    entries = {name: {e["wav"] for e in json.loads((tmp_path / name).read_text())["data"]}
               for name in ("train.json", "train_balanced.json", "val.json", "heldout.json")}
    held_files = {c.file for c in clips if c.id in held}
    assert entries["heldout.json"] == held_files
    for name in ("train.json", "train_balanced.json", "val.json"):
        assert entries[name] and not entries[name] & held_files
    ambience = {e["wav"] for e in json.loads((tmp_path / "ambience.json").read_text())["data"]}
    assert ambience == {c.file for c in clips if c.split == "train" and c.label == "rain"}  # rain: an ambience
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["clips_heldout"] == 21 and stats["clips_train"] + stats["clips_val"] == 20
    table = json.loads((tmp_path / "classes.json").read_text())
    assert table["dog"]["clips_heldout"] == 11 and table["rain"]["clips_heldout"] == 10
    assert "Held out (`heldout.json`, never trained on): 21 clips" in (tmp_path / "README.md").read_text()


def test_nothing_held_out_keeps_the_old_split(tmp_path):
    a, b = _clips(), _clips()
    assert hold_out_packages(a, heldout_set(())) == {}
    assign_splits(a, 0.3, seed=0)
    assign_splits(b, 0.3, seed=0)
    assert [c.split for c in a] == [c.split for c in b] and "heldout" not in {c.split for c in a}


def test_heldout_names_are_checked():
    assert heldout_set(None) == frozenset(DEFAULT_HELDOUT_PACKAGES) & ALLOWED
    assert heldout_set(("0ad-data",)) == {"0ad-data"}
    with pytest.raises(ValueError, match=r"\['warmux-data'\], which the recipe does not read"):
        heldout_set(("0ad-data", "warmux-data"))


def test_cli_refuses_an_unknown_heldout_package_before_downloading(tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["build", "--out", str(out), "--cache", str(tmp_path / "cache"),
                 "--heldout-packages", "0ad-data,warmux-data"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "warmux-data" in err and err.startswith("python -m audiosep.recipes")
    assert not out.exists() and not (tmp_path / "cache").exists()


def test_cli_package_list():
    from audiosep.recipes.debian_sounds.__main__ import _package_list

    assert _package_list("festvox-ru, 0ad-data") == ("festvox-ru", "0ad-data")
    assert _package_list("none") == () and _package_list("") == ()
