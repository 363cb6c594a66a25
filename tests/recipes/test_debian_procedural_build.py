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


def test_keep_takes_restores_only_same_package_takes_of_flagged_packages():
    import numpy as np

    from audiosep.recipes.debian_sounds.build import keep_takes
    from audiosep.recipes.debian_sounds.clips import Clip
    from audiosep.recipes.debian_sounds.packages import select

    def c(i, package):
        return Clip(f"c{i}", "acoustic guitar", package, "1", f"o{i}", f"g{i}", 1.0, f"a/{i}.flac", str(i),
                    np.zeros(1))

    strums = "hydrogen-drumkits-effects"
    a, b, x, y, z = c(0, strums), c(1, strums), c(2, "lmms-common"), c(3, "lmms-common"), c(4, strums)
    kept, dropped = keep_takes([a, x], [(b, a), (y, x), (z, x)], select([strums, "lmms-common"]))
    assert [k.id for k in kept] == ["c0", "c2", "c1"]  # b: a take of a; y: not a flagged package
    assert [(d.id, k.id) for d, k in dropped] == [("c3", "c2"), ("c4", "c2")]  # z duplicates another package
