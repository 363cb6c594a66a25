"""Streaming extraction from a tiny fake .deb (plain files, a zip, a copyright file) through the
whole build: labels, silence and duplicate drops, split, manifests and attribution."""
import csv
import io
import json
import shutil
import subprocess
import zipfile

import numpy as np
import pytest
import soundfile as sf

from audiosep.recipes.debian_sounds.build import add_package
from audiosep.recipes.debian_sounds.clips import ClipWriter
from audiosep.recipes.debian_sounds.dedupe import HygieneConfig
from audiosep.recipes.debian_sounds.extract import deb_field, iter_members, list_audio_paths
from audiosep.recipes.debian_sounds.manifests import write_all
from audiosep.recipes.debian_sounds.packages import PackageSpec
from audiosep.recipes.debian_sounds.split import assign_splits, drop_near_duplicates, merge_groups
from audiosep.train.manifest import read_manifest

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb")
SR = 16000


def _wav(freq, seconds=1.0, amp=0.3, fmt="WAV", noise=0.0, seed=0):
    t = np.arange(int(seconds * SR)) / SR
    x = amp * np.sin(2 * np.pi * freq * t) + noise * np.random.default_rng(seed).standard_normal(len(t))
    buf = io.BytesIO()
    sf.write(buf, x.astype(np.float32), SR, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def fake_deb(tmp_path_factory):
    root = tmp_path_factory.mktemp("pkg") / "fakesounds"
    snd = root / "usr/share/games/fake/sounds"
    snd.mkdir(parents=True)
    (root / "DEBIAN").mkdir()
    (root / "DEBIAN/control").write_text(
        "Package: fakesounds\nVersion: 1.2-3\nArchitecture: all\nMaintainer: Test <t@example.org>\n"
        "Description: fake sounds for tests\n")
    doc = root / "usr/share/doc/fakesounds"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text("Format: dep5\n\nFiles: *\nCopyright: 2020 Someone\nLicense: CC-BY-3.0\n\n"
                                   "Files: sounds/*\nLicense: GPL-2+\n")
    (snd / "dog_bark.1.wav").write_bytes(_wav(300))
    (snd / "dog_bark.2.wav").write_bytes(_wav(300, noise=1e-4, seed=1))  # near-duplicate variant
    (snd / "dog_bark_copy.wav").write_bytes(_wav(300))  # exact duplicate audio
    (snd / "fire_crackle.wav").write_bytes(_wav(900))
    (snd / "rain_heavy.wav").write_bytes(_wav(1300, amp=0.003))  # quiet: about -53 dBFS
    (snd / "door_open.wav").write_bytes(_wav(500, seconds=0.1))  # too short
    (snd / "menu_music.wav").write_bytes(_wav(700))  # excluded by the rules
    with zipfile.ZipFile(root / "usr/share/games/fake/extra.zip", "w") as zf:
        zf.writestr("audio/weather/rain_loop_light.ogg", _wav(2000, fmt="OGG"))
        zf.writestr("audio/readme.txt", "not audio")
    deb = root.parent / "fakesounds_1.2-3_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)], check=True,
                   capture_output=True)
    return deb


def test_streaming_extraction_reads_files_zip_members_and_copyright(fake_deb):
    paths = sorted(list_audio_paths(fake_deb))
    assert "usr/share/games/fake/extra.zip!audio/weather/rain_loop_light.ogg" in paths
    assert "usr/share/games/fake/sounds/fire_crackle.wav" in paths
    assert not any(p.endswith(".txt") for p in paths)
    cr = "usr/share/doc/fakesounds/copyright"
    got = {m.path: m.data for m in iter_members(fake_deb, want=lambda p: "fire" in p, extra=frozenset({cr}))}
    assert set(got) == {cr, "usr/share/games/fake/sounds/fire_crackle.wav"}
    assert b"CC-BY-3.0" in got[cr]
    assert deb_field(fake_deb, "Version") == "1.2-3"


def test_build_from_fake_deb(fake_deb, tmp_path):
    writer = ClipWriter(tmp_path, 32000, 30.0, HygieneConfig())
    version, copyright_text = add_package(PackageSpec("fakesounds", "fk", "test"), fake_deb, writer, tmp_path)
    assert version == "1.2-3" and "License: GPL-2+" in copyright_text
    assert writer.counts.reasons["exact duplicate"] == 1
    assert writer.counts.reasons["quieter than -50 dBFS"] == 1
    assert writer.counts.reasons["too short or all silent"] == 1
    kept, dropped = drop_near_duplicates(writer.clips, 0.97)
    assert [(c.origin.rsplit("/", 1)[-1], k.origin.rsplit("/", 1)[-1]) for c, k in dropped] == [
        ("dog_bark.2.wav", "dog_bark.1.wav")]
    assert [d[1].rsplit("/", 1)[-1] for d in writer.duplicates] == ["dog_bark_copy.wav"]
    merge_groups(kept, 0.9)
    assign_splits(kept, 0.5, seed=0)
    table = write_all(tmp_path, kept, {"fakesounds": copyright_text}, {"dropped": dict(writer.counts.reasons),
                                                                 "packages": {}})
    assert set(table) == {"dog", "fire", "rain"}
    balanced_records = read_manifest(tmp_path / "train_balanced.json")
    assert {r.path for r in balanced_records} == {r.path for r in read_manifest(tmp_path / "train.json")}
    records = read_manifest(tmp_path / "train.json") + (
        read_manifest(tmp_path / "val.json") if json.loads((tmp_path / "val.json").read_text())["data"] else [])
    assert len(records) == 3
    for r in records:
        info = sf.info(str(r.path))
        assert (info.samplerate, info.channels) == (32000, 1)
        assert r.path.parent.name == r.labels[0] and r.caption in table[r.labels[0]]["captions"]
    with open(tmp_path / "attribution.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["original_path"] for r in rows} == {
        "usr/share/games/fake/sounds/dog_bark.1.wav", "usr/share/games/fake/sounds/fire_crackle.wav",
        "usr/share/games/fake/extra.zip!audio/weather/rain_loop_light.ogg"}
    licence = {r["original_path"].rsplit("/", 1)[-1]: r["licence"] for r in rows}
    assert licence == {"dog_bark.1.wav": "GPL-2+", "fire_crackle.wav": "GPL-2+",  # Files: sounds/*
                       "rain_loop_light.ogg": "CC-BY-3.0"}  # Files: *
    assert all(r["version"] == "1.2-3" and r["package_licences"] == "CC-BY-3.0; GPL-2+" for r in rows)
    assert (tmp_path / "copyright" / "fakesounds").read_text().startswith("Format")
    classes = json.loads((tmp_path / "classes.json").read_text())
    assert classes["dog"]["heldout_paraphrases"] and "minutes_train" in classes["dog"]
