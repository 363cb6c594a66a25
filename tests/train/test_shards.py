"""Tar shards: ``audiosep-train shard`` writes what the manifests hold, and training reads each
clip of an epoch exactly once across ranks and DataLoader workers, cut as from the manifests."""
from __future__ import annotations

import json

import pytest
import torch

from audiosep.train.cli import main, write_tone_dataset
from audiosep.train.config import ConfigError, DataConfig, config_from_dict
from audiosep.train.dataset import ClipDataset, collate_clips
from audiosep.train.distributed import generator_for
from audiosep.train.manifest import read_manifest
from audiosep.train.shard_data import ShardClips, ShardIndex, iter_shard, load_shard_index, worker_part
from audiosep.train.shards import INDEX_FILE, PROGRESS_FILE, ShardError, write_shards

SR = 8000


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    """26 training clips (6 tones x 4 + 2 more), 6 validation clips."""
    root = tmp_path_factory.mktemp("tones")
    train, val = write_tone_dataset(root, per_tone=4, val_per_tone=1, sample_rate=SR, seconds=0.6)
    doc = json.loads(train.read_text())
    doc["data"] += [dict(doc["data"][0], caption="one more"), dict(doc["data"][5], caption="and another")]
    train.write_text(json.dumps(doc))
    return train, val


@pytest.fixture(scope="module")
def shards(tones, tmp_path_factory):
    out = tmp_path_factory.mktemp("shards") / "s"
    write_shards([tones[0]], out, shard_size=4, progress=False)
    return out


def data_config(**kw) -> DataConfig:
    return DataConfig(sample_rate=SR, segment_seconds=0.25, **{"batch_size": 3, "shuffle_buffer": 5, **kw})


def test_round_trip_keeps_audio_bytes_captions_labels_and_paths(tones, tmp_path, capsys):
    doc = json.loads(tones[0].read_text())
    doc["data"].insert(3, {"wav": "nowhere.wav", "caption": "gone"})
    doc["data"][1]["labels"] = "Bark; Dog"
    manifest = tones[0].parent / "with_bad.json"
    manifest.write_text(json.dumps(doc))
    records = [r for r in read_manifest(manifest) if r.path.is_file()]

    assert main(["shard", str(manifest), "--out", str(tmp_path / "s"), "--shard-size", "5", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    assert err.count("\n") == 1 and "nowhere.wav: file not found" in err
    assert "wrote 26 clips in 6 shards" in out and "skipped 1 bad audio file(s)" in out
    index = json.loads((tmp_path / "s" / INDEX_FILE).read_text())
    assert index["total"] == 26 and [s["count"] for s in index["shards"]] == [5, 5, 5, 5, 5, 1]
    assert index["manifests"] == [str(manifest)] and not (tmp_path / "s" / PROGRESS_FILE).exists()

    samples = [s for shard in index["shards"] for s in iter_shard(str(tmp_path / "s" / shard["name"]))]
    assert [key for key, _, _ in samples] == list(range(26))
    for (key, meta, audio), record in zip(samples, records):
        assert audio == record.path.read_bytes()
        assert (meta["caption"], tuple(meta["labels"]), meta["path"], meta["audio"]) == \
            (record.caption, record.labels, str(record.path), "wav")
    assert samples[1][1]["labels"] == ["Bark", "Dog"]


def test_a_second_run_is_refused_overwrite_replaces_and_an_interrupted_run_continues(tones, tmp_path, capsys,
                                                                                    monkeypatch):
    from audiosep.train import shards as shards_mod

    clean = tmp_path / "clean"
    write_shards([tones[0]], clean, shard_size=4, progress=False)
    assert main(["shard", str(tones[0]), "--out", str(clean), "--no-progress"]) == 2
    assert "already holds shards" in capsys.readouterr().err
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    assert main(["shard", str(tones[0]), "--out", str(tmp_path / "other"), "--no-progress", "--overwrite"]) == 2
    assert "holds other files (notes.txt)" in capsys.readouterr().err

    real, calls = shards_mod._audio_member, []

    def dies_at_the_tenth(record):
        calls.append(record)
        if len(calls) == 10:
            raise KeyboardInterrupt
        return real(record)

    monkeypatch.setattr(shards_mod, "_audio_member", dies_at_the_tenth)
    resumed = tmp_path / "resumed"
    assert main(["shard", str(tones[0]), "--out", str(resumed), "--shard-size", "4", "--no-progress"]) == 130
    assert sorted(p.name for p in resumed.iterdir()) == [PROGRESS_FILE, "train-000000.tar", "train-000001.tar"]
    monkeypatch.setattr(shards_mod, "_audio_member", real)
    assert main(["shard", str(tones[0]), "--out", str(resumed), "--shard-size", "4", "--no-progress"]) == 0
    assert "(8 of them by an earlier run)" in capsys.readouterr().out
    names = sorted(p.name for p in clean.iterdir())
    assert sorted(p.name for p in resumed.iterdir()) == names
    for name in names:
        assert (resumed / name).read_bytes() == (clean / name).read_bytes()
    with pytest.raises(ShardError, match="none of the 1 clips"):
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"wav": "x.wav", "caption": "c"}\n')
        write_shards([bad], tmp_path / "none", progress=False, report=lambda line: None)


def test_two_ranks_two_workers_see_every_clip_once_per_epoch(shards):
    index = load_shard_index([str(shards)])
    assert index.total == 26 and index.counts == (4, 4, 4, 4, 4, 4, 2)
    config = data_config(num_workers=2)
    per_epoch = []
    for epoch in range(2):
        keys, batches = [], []
        for rank in range(2):
            clips = ShardClips(index, config, seed=3, rank=rank, world_size=2)
            clips.set_epoch(epoch)
            assert clips.steps_per_epoch == 4  # 26 // (3 x 2)
            got = [[c.index for c in clips.part(residue, 2)] for residue in range(2)]
            batches.append(sum(len(g) for g in got) // 3)
            keys += [k for g in got for k in g]
        assert batches == [4, 4]  # equal steps on both ranks
        assert len(keys) == 24 and len(set(keys)) == 24  # never twice; 2 of 26 left out this epoch
        per_epoch.append(keys)
    assert per_epoch[0] != per_epoch[1] and set(per_epoch[0]) != set(per_epoch[1])


def test_worker_parts_tile_the_epoch_stream():
    for total, batch, world, workers in [(26, 3, 2, 2), (100, 4, 3, 5), (7, 7, 1, 3)]:
        steps = total // (batch * world)
        spans = sorted(worker_part(total, batch, world, r, c, workers)
                       for r in range(world) for c in range(workers))
        pos = 0
        for first, count, batches in spans:
            assert first == pos and count == batches * batch
            pos += count
        assert pos == steps * batch * world


def test_clips_are_cut_as_from_the_manifest(tones, shards):
    config = data_config(shuffle_buffer=1)
    reference = ClipDataset(read_manifest(tones[0]), config, seed=5)
    reference.set_epoch(1)
    clips = ShardClips(load_shard_index([str(shards / INDEX_FILE)]), config, seed=5)
    clips.set_epoch(1)
    seen = list(clips.part(0, 1))
    assert len(seen) == 24
    for clip in seen:
        expected = reference[clip.index]
        assert clip.caption == expected.caption and torch.equal(clip.audio, expected.audio)


def test_dataloader_workers_deliver_batches_in_order_and_resume_exactly(shards, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    index = load_shard_index([str(shards)])
    config = data_config(num_workers=2)
    clips = ShardClips(index, config, seed=1, rank=1, world_size=2)

    def batches(start_step: int, workers: int) -> list[list[int]]:
        clips.set_epoch(2, start_step)
        loader = torch.utils.data.DataLoader(clips, batch_size=3, num_workers=workers, collate_fn=collate_clips)
        return [b.indices for b in loader]

    clips.set_epoch(2)
    parts = [[c.index for c in clips.part(r, 2)] for r in range(2)]
    expected = [part[i: i + 3] for i in range(0, 6, 3) for part in parts]  # batches 0, 1, 2, 3
    full = batches(0, 2)
    assert full == expected
    assert batches(1, 2) == full[1:] and batches(3, 2) == full[3:]


def test_shard_lists_need_an_index_and_config_keys_exclude_each_other(shards, tmp_path, monkeypatch):
    names = [str(p) for p in sorted(shards.glob("train-*.tar"))]
    pattern = str(shards / "train-{000000..000006}.tar")
    via_pattern = load_shard_index([pattern], str(shards / INDEX_FILE))
    assert via_pattern == ShardIndex(tuple(names), (4, 4, 4, 4, 4, 4, 2))
    with pytest.raises(ShardError, match="lists 'train-000001.tar' more than once"):
        load_shard_index([pattern, names[1]], str(shards / INDEX_FILE))
    with pytest.raises(ShardError, match="set data.shard_index"):
        load_shard_index(names[:2])
    with pytest.raises(ShardError, match="does not list 1 of the data.train_shards"):
        load_shard_index([names[0], str(tmp_path / "train-000099.tar")], str(shards))
    with pytest.raises(ShardError, match="shard index not found"):
        load_shard_index([str(tmp_path)])
    monkeypatch.setitem(__import__("sys").modules, "webdataset", None)
    with pytest.raises(ShardError, match=r"needs the webdataset package; install it with: pip install"):
        load_shard_index([str(shards)])
    monkeypatch.undo()

    base = {"query_encoder": {"kind": "hashed", "dim": 16}, "model": {"condition_dim": 16}}
    with pytest.raises(ConfigError, match="data.train_shards and data.train_manifests are both set"):
        config_from_dict({**base, "data": {"train_shards": [str(shards)], "train_manifests": ["a.json"]}})
    with pytest.raises(ConfigError, match="data.shard_index gives the clip counts of data.train_shards"):
        config_from_dict({**base, "data": {"shard_index": str(shards)}})


def test_a_stale_index_is_reported(shards, tmp_path):
    copy = tmp_path / "s"
    copy.mkdir()
    for p in shards.iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    index = json.loads((copy / INDEX_FILE).read_text())
    index["shards"][0]["count"] = 5
    index["total"] += 1
    (copy / INDEX_FILE).write_text(json.dumps(index))
    clips = ShardClips(load_shard_index([str(copy)]), data_config(batch_size=27), seed=0)
    with pytest.raises(ShardError, match="holds 4 clips but its index says 5"):
        list(clips.part(0, 1))


def test_training_from_shards_through_audiosep_train_resumes_exactly(tones, shards, tmp_path, capsys):
    import yaml

    def config(name: str) -> str:
        raw = {
            "model": {"sample_rate": SR, "n_fft": 256, "hop_length": 80, "stem_channels": 4,
                      "encoder_channels": [4, 8], "pool_sizes": [[2, 2], [2, 2]], "condition_dim": 16},
            "query_encoder": {"kind": "hashed", "dim": 16},
            "data": {"train_shards": str(shards), "val_manifests": [str(tones[1])], "sample_rate": SR,
                     "segment_seconds": 0.25, "batch_size": 8, "shuffle_buffer": 3},
            "schedule": {"warmup_steps": 2},
            "training": {"steps": 5, "val_every": 0, "checkpoint_every": 2, "log_every": 1,
                         "out_dir": str(tmp_path / name), "device": "cpu", "progress": False},
        }
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(raw))
        return str(path)

    # 26 clips, batch 8: 3 steps per epoch, so 5 steps cross an epoch; the resume starts mid-epoch 0
    assert main([config("straight")]) == 0
    assert main([config("split"), "--set", "training.steps=2"]) == 0
    capsys.readouterr()
    # each (process, worker) reads its own part of the shards: another worker count is refused
    assert main([config("split"), "--resume", "auto", "--set", "data.num_workers=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("audiosep-train: error: checkpoint ") and err.endswith(
        "read tar shards on 1 process(es) with data.num_workers 0, this run on 1 with 1; each (process, worker) "
        "reads its own part of the shards, so the data order would change. Resume on 1 process(es) with "
        "data.num_workers: 0") and "\n" not in err
    assert main([config("split"), "--resume", "auto"]) == 0
    out = capsys.readouterr().out
    assert "trained steps 2 -> 5" in out and "best validation SDRi" in out

    from audiosep import AudioSep

    a = AudioSep.from_pretrained(tmp_path / "straight" / "final").separation_net.state_dict()
    b = AudioSep.from_pretrained(tmp_path / "split" / "final").separation_net.state_dict()
    assert all(torch.equal(v, b[k]) for k, v in a.items())
    losses = [json.loads(line)["loss"] for line in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()
              if json.loads(line)["kind"] == "train"]
    resumed = [json.loads(line)["loss"] for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()
               if json.loads(line)["kind"] == "train"]
    assert losses == resumed and len(losses) == 5


def test_a_silent_clip_in_a_shard_is_replaced_by_the_next_good_one(tones, tmp_path):
    import numpy as np
    import soundfile

    soundfile.write(tmp_path / "silent.wav", np.zeros(SR // 2, dtype="float32"), SR)
    doc = json.loads(tones[0].read_text())
    items = [dict(d, wav=str(tones[0].parent / d["wav"])) for d in doc["data"][:5]]
    items.insert(2, {"wav": str(tmp_path / "silent.wav"), "caption": "nothing"})
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"data": items}))
    write_shards([manifest], tmp_path / "s", shard_size=4, progress=False)
    clips = ShardClips(load_shard_index([str(tmp_path / "s")]), data_config(batch_size=6, shuffle_buffer=1), seed=0)
    with pytest.warns(RuntimeWarning, match="silent.wav .shard key 2.: all silent"):
        got = list(clips.part(0, 1))
    order = torch.randperm(2, generator=generator_for("shards", 0, 0)).tolist()  # the epoch's shard order
    keys = [k for s in order for k in ([0, 1, 2, 3], [4, 5])[s]]
    at = keys.index(2)
    assert len(got) == 6 and got[at].bad_files == (str(tmp_path / "silent.wav"),)
    assert got[at].index == (keys[at + 1] if at + 1 < 6 else keys[at - 1])
    assert got[at].caption != "nothing" and all(not c.bad_files for i, c in enumerate(got) if i != at)


def test_truncated_or_foreign_shard_files_are_one_line_errors(shards, tmp_path):
    tar = (shards / "train-000000.tar").read_bytes()
    (tmp_path / "cut.tar").write_bytes(tar[:5000])
    (tmp_path / "text.tar").write_bytes(b"not a tar file at all\n" * 40)
    with pytest.raises(ShardError, match="cut.tar ends inside a clip"):
        list(iter_shard(str(tmp_path / "cut.tar")))
    with pytest.raises(ShardError, match="text.tar is not a tar file"):
        list(iter_shard(str(tmp_path / "text.tar")))
    # a tar written by another tool (pax headers, directories) still reads where it holds our members
    import tarfile

    with tarfile.open(tmp_path / "pax.tar", "w", format=tarfile.PAX_FORMAT) as out:
        out.add(tmp_path, arcname="folder", recursive=False)
        with tarfile.open(shards / "train-000000.tar") as ours:
            for member in ours.getmembers():
                out.addfile(member, ours.extractfile(member))
    assert list(iter_shard(str(tmp_path / "pax.tar"))) == list(iter_shard(str(shards / "train-000000.tar")))


def test_pipe_urls_read_through_webdataset_give_the_same_clips(shards):
    piped = load_shard_index([f"pipe:cat {shards}/train-{{000000..000006}}.tar"], str(shards / INDEX_FILE))
    assert piped.urls[0] == f"pipe:cat {shards}/train-000000.tar" and piped.counts == (4, 4, 4, 4, 4, 4, 2)
    config = data_config(batch_size=4)
    local = ShardClips(load_shard_index([str(shards)]), config, seed=2)
    remote = ShardClips(piped, config, seed=2)
    a, b = list(local.part(0, 1)), list(remote.part(0, 1))
    assert [c.index for c in a] == [c.index for c in b] and len(a) == 24
    assert all(torch.equal(x.audio, y.audio) for x, y in zip(a, b))


def test_phrasings_go_through_shards_and_are_drawn_as_from_the_manifest(tones, tmp_path):
    doc = json.loads(tones[0].read_text())
    for e in doc["data"]:
        e["captions"] = [e["caption"], f"the sound of {e['caption']}", f"{e['caption']} nearby"]
    manifest = tones[0].parent / "phrased.json"
    manifest.write_text(json.dumps(doc))
    write_shards([manifest], tmp_path / "s", shard_size=4, progress=False)
    config = data_config(shuffle_buffer=1)
    reference = ClipDataset(read_manifest(manifest), config, seed=5)
    reference.set_epoch(1)
    clips = ShardClips(load_shard_index([str(tmp_path / "s" / INDEX_FILE)]), config, seed=5)
    clips.set_epoch(1)
    seen = list(clips.part(0, 1))
    for clip in seen:
        expected = reference[clip.index]
        assert (clip.caption, clip.phrasings) == (expected.caption, expected.phrasings)
        assert clip.caption in clip.phrasings and len(clip.phrasings) == 3
    assert sum(c.caption != c.phrasings[0] for c in seen) >= len(seen) // 3  # other phrasings are drawn
