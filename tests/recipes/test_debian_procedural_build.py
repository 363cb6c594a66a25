"""The build with only the procedural classes: clips, attribution rows and manifest entries."""
import csv
import json

from audiosep.recipes.debian_sounds.build import BuildConfig, build
from audiosep.recipes.debian_sounds.synth import CLASSES


def test_procedural_only_build(tmp_path):
    out = tmp_path / "ds"
    stats = build(BuildConfig(out=out, cache=tmp_path / "cache", packages=["procedural"], render=False,
                              synth_clips_per_class=3, val_fraction=0.3, sample_rate=16000))
    assert stats["clips_train"] + stats["clips_val"] == 12 and stats["classes"] == 4
    assert not (tmp_path / "cache").exists()  # nothing was downloaded
    with open(out / "attribution.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["class"] for r in rows} == set(CLASSES)
    for r in rows:
        assert r["package"] == "procedural" and r["original_path"].startswith("procedural (audiosep recipe): ")
        assert r["licence"] == "MIT" and r["copyright_file"] == "copyright/procedural"
    assert "procedural (audiosep recipe)" in (out / "copyright" / "procedural").read_text()
    entries = json.loads((out / "train.json").read_text())["data"] + json.loads((out / "val.json").read_text())["data"]
    assert len(entries) == 12 and all(e["package"] == "procedural" for e in entries)
    assert {e["labels"][0] for e in entries} == set(CLASSES)
    table = json.loads((out / "classes.json").read_text())
    assert all(table[c]["packages"] == ["procedural"] for c in CLASSES)
