"""The shipped demo mixture builder: longest training clips, 0 dB, sources that sum, attribution."""
import csv
import json

import numpy as np
import pytest
import soundfile as sf

from audiosep.recipes.debian_sounds.__main__ import main
from audiosep.recipes.debian_sounds.example import ExampleConfig, build_example

SR = 32000


def _dataset(root):
    """train.json with two piano and two rain clips (the longer one of each must be picked)."""
    rng = np.random.default_rng(0)
    items, rows = [], []
    for label, freq in (("piano", 520), ("rain", 1500)):
        for k, seconds in enumerate((2.0, 8.0)):
            rel = f"audio/{label}/{k}.flac"
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            n = int(SR * seconds)
            x = (0.05 + 0.2 * k) * np.sin(2 * np.pi * freq * np.arange(n) / SR) + 0.01 * rng.standard_normal(n)
            sf.write(root / rel, x, SR)
            items.append({"wav": rel, "caption": label, "labels": [label]})
            rows.append({"id": f"{label}{k}", "file": rel, "class": label, "split": "train", "group": rel,
                         "package": f"pkg-{label}", "version": "1.0", "original_path": f"usr/share/{label}{k}.ogg",
                         "licence": "CC-BY-SA-3.0", "package_licences": "CC-BY-SA-3.0",
                         "copyright_file": f"usr/share/doc/pkg-{label}/copyright"})
    (root / "train.json").write_text(json.dumps({"data": items}))
    with (root / "attribution.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_example_mixes_the_longest_clips_at_0_db_and_attributes_them(tmp_path):
    _dataset(tmp_path / "data")
    out = tmp_path / "ex"
    path = build_example(ExampleConfig(data=tmp_path / "data", out=out, seconds=5.0))
    mix, sr = sf.read(path, dtype="float32")
    piano, _ = sf.read(out / "source_piano.flac", dtype="float32")
    rain, _ = sf.read(out / "source_rain.flac", dtype="float32")
    assert sr == SR and mix.shape == piano.shape == rain.shape == (5 * SR,)
    np.testing.assert_allclose(mix, piano + rain, atol=2e-4)  # 16-bit mixture, 24-bit sources
    ratio_db = 20 * np.log10(np.sqrt(np.mean(piano ** 2)) / np.sqrt(np.mean(rain ** 2)))
    assert abs(ratio_db) < 0.01
    # The 8 s clips (amplitude 0.25) were used, not the 2 s ones (0.05): no zero padding.
    assert np.abs(piano[: SR // 10]).max() > 0.1
    text = (out / "ATTRIBUTION.md").read_text()
    for needle in ("usr/share/piano1.ogg", "usr/share/rain1.ogg", "pkg-piano 1.0", "CC-BY-SA-3.0", '"rain falling"'):
        assert needle in text
    assert "piano0" not in text


def test_example_refuses_to_overwrite_and_rejects_bad_classes(tmp_path):
    _dataset(tmp_path / "data")
    out = tmp_path / "ex"
    main(["example", "--data", str(tmp_path / "data"), "--out", str(out), "--seconds", "3"])
    before = (out / "mixture.wav").read_bytes()
    with pytest.raises(FileExistsError, match="--overwrite"):
        build_example(ExampleConfig(data=tmp_path / "data", out=out))
    assert (out / "mixture.wav").read_bytes() == before
    with pytest.raises(ValueError, match="no clip of class 'dog'"):
        build_example(ExampleConfig(data=tmp_path / "data", out=tmp_path / "x", classes=("dog", "rain")))
    with pytest.raises(ValueError, match="must differ"):
        build_example(ExampleConfig(data=tmp_path / "data", out=tmp_path / "x", classes=("rain", "rain")))
