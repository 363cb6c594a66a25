"""The trainer on a generated sine-tone dataset with a tiny network (CPU, offline)."""
from __future__ import annotations

import dataclasses
import json
import math
import warnings
from pathlib import Path

import pytest
import torch
import yaml

from audiosep.checkpoint import load_separation_net, read_state
from audiosep.query import QueryEncoder
from audiosep.train.cli import write_tone_dataset
from audiosep.train.config import config_from_dict
from audiosep.train.trainer import Trainer, lr_factor

SR = 8000


class ToyEncoder(QueryEncoder):
    """Text: fixed random vectors per caption; audio: a fixed projection of band energies."""

    kind = "toy"
    audio_sample_rate = SR

    def __init__(self) -> None:
        super().__init__(16)
        self.proj = torch.randn(32, 16, generator=torch.Generator().manual_seed(1))

    def _embed_text(self, texts):
        return torch.stack([torch.randn(16, generator=torch.Generator().manual_seed(sum(map(ord, t))))
                            for t in texts])

    def _embed_audio(self, audio):
        spec = torch.stft(audio, 62, window=torch.hann_window(62), return_complex=True).abs().mean(-1)
        return spec @ self.proj

    def config_dict(self):
        return {"kind": "toy"}

    def save_pretrained(self, directory):
        return self.config_dict()


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    root = tmp_path_factory.mktemp("tones")
    return write_tone_dataset(root, per_tone=4, val_per_tone=1, sample_rate=SR, seconds=0.6)


def tiny_config(train, val, out_dir, **training):
    raw = {
        "model": {"sample_rate": SR, "n_fft": 256, "hop_length": 80, "stem_channels": 4,
                  "encoder_channels": [4, 8], "pool_sizes": [[2, 2], [2, 2]], "condition_dim": 16},
        "query_encoder": {"kind": "hashed", "dim": 16},
        "data": {"train_manifests": [str(train)], "val_manifests": [str(val)] if val else [],
                 "sample_rate": SR, "segment_seconds": 0.5, "batch_size": 4, "val_batch_size": 6},
        "mixing": {"distinct_captions": True},
        "optim": {"lr": 3e-3},
        "schedule": {"warmup_steps": 2},
        "training": {"steps": 8, "val_every": 0, "checkpoint_every": 0, "log_every": 2,
                     "out_dir": str(out_dir), "device": "cpu", "progress": False, **training},
    }
    return config_from_dict(raw)


def params(net):
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def test_loss_falls_on_tones(tones, tmp_path):
    train, val = tones
    cfg = tiny_config(train, val, tmp_path / "run", steps=30, log_every=10, val_every=30)
    trainer = Trainer(cfg)
    before = trainer.validate()
    summary = trainer.fit()
    after = trainer.validate()
    assert after["val_loss"] < 0.8 * before["val_loss"], (before, after)
    assert after["val_sdri"] > before["val_sdri"] + 1.0, (before, after)
    assert summary.last_loss < 0.8 * summary.first_loss
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in records if r["kind"] == "train"]
    assert train_steps == [10, 20, 30]
    val_rec = [r for r in records if r["kind"] == "val"]
    assert len(val_rec) == 1 and math.isclose(val_rec[0]["val_sdri"], after["val_sdri"], rel_tol=1e-6)
    assert {"loss", "lr", "samples_per_s", "bad_files_total"} <= set(records[0])
    # the export loads with the library and holds the trained weights
    net = load_separation_net(tmp_path / "run" / "final")
    exported = dict(read_state(tmp_path / "run" / "final")[0])
    for k, v in trainer.net.state_dict().items():
        if not k.endswith("num_batches_tracked"):
            torch.testing.assert_close(exported[k], v, rtol=0, atol=0)
    assert net.config == trainer.net.config
    cfg_json = json.loads((tmp_path / "run" / "final" / "config.json").read_text())
    assert cfg_json["query_encoder"] == {"kind": "hashed", "dim": 16}


def test_resume_is_exact_mid_epoch(tones, tmp_path):
    train, _ = tones
    # 24 clips / batch 4 = 6 steps per epoch: resuming at step 4 is mid-epoch, 8 crosses epochs.
    # Half the queries are audio examples (the toy encoder supports audio), drawn per step.
    extra = {"queries": {"audio_fraction": 0.5}}
    straight = tiny_config(train, None, tmp_path / "a", steps=8, checkpoint_every=4)
    straight = type(straight)(**{**straight.__dict__, "queries": type(straight.queries)(**extra["queries"])})
    a = Trainer(straight, query_encoder=ToyEncoder())
    a.fit()
    ckpt = tmp_path / "a" / "checkpoints" / "step-00000004"
    assert (ckpt / "training_state.pt").is_file()
    resumed_cfg = type(straight)(**{**straight.__dict__, "training": type(straight.training)(
        **{**straight.training.__dict__, "out_dir": str(tmp_path / "b")})})
    b = Trainer(resumed_cfg, query_encoder=ToyEncoder(), resume=ckpt)
    assert b.step == 4
    b.fit()
    pa, pb = params(a.net), params(b.net)
    worst = max(float((pa[k].float() - pb[k].float()).abs().max()) for k in pa)
    assert worst <= 1e-6, worst
    # and training did move the weights
    fresh = Trainer(dataclasses.replace(straight, training=dataclasses.replace(
        straight.training, out_dir=str(tmp_path / "fresh"))), query_encoder=ToyEncoder())
    moved = max(float((pa[k].float() - v.float()).abs().max()) for k, v in params(fresh.net).items())
    assert moved > 1e-3
    # fine-tuning starts from the exported weights (init_from)
    tuned_cfg = type(straight)(**{**straight.__dict__, "training": type(straight.training)(
        **{**straight.training.__dict__, "init_from": str(tmp_path / "a" / "final"), "out_dir": str(tmp_path / "c")})})
    tuned = Trainer(tuned_cfg, query_encoder=ToyEncoder())
    assert all(torch.equal(v, pa[k]) for k, v in params(tuned.net).items() if not k.endswith("num_batches_tracked"))
    # the state file loads without unrestricted unpickling
    state = torch.load(ckpt / "training_state.pt", weights_only=True)
    assert state["step"] == 4 and state["epoch"] == 0 and state["epoch_step"] == 4


def test_bad_file_is_skipped_counted_and_reported(tones, tmp_path, capsys):
    train, _ = tones
    data = json.loads(Path(train).read_text())
    for item in data["data"]:
        item["wav"] = str(Path(train).parent / item["wav"])
    missing = tmp_path / "no_such_clip.wav"
    data["data"].insert(0, {"wav": str(missing), "caption": "a ghost"})
    manifest = tmp_path / "with_missing.json"
    manifest.write_text(json.dumps(data))
    # 25 clips, batch 4: 6 steps cover 24 of them; 12 steps (two epochs) surely draw the bad one
    cfg = tiny_config(manifest, None, tmp_path / "run", steps=12, log_every=6)
    with pytest.warns(RuntimeWarning, match="no_such_clip.wav"):
        summary = Trainer(cfg).fit()
    assert summary.steps == 12
    assert summary.bad_files.get(str(missing), 0) >= 1
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert records[-1]["bad_files_total"] == summary.bad_files[str(missing)]
    assert sum(r["bad_files_new"] for r in records) == records[-1]["bad_files_total"]
    text = (tmp_path / "run" / "summary.txt").read_text()
    assert "bad files skipped: 1 file(s)" in text and str(missing) in text
    assert str(missing) in capsys.readouterr().out


def test_warmup_schedule(tones, tmp_path):
    cfg = tiny_config(tones[0], None, tmp_path, steps=100)
    cfg = type(cfg)(**{**cfg.__dict__, "schedule": type(cfg.schedule)(warmup_steps=10)})
    assert [lr_factor(s, cfg) for s in (0, 4, 9, 10, 99)] == [0.1, 0.5, 1.0, 1.0, 1.0]
    decay = type(cfg)(**{**cfg.__dict__, "schedule": type(cfg.schedule)(
        kind="warmup_linear_decay", warmup_steps=10, final_lr_fraction=0.0)})
    assert lr_factor(55, decay) == pytest.approx(0.5)


@pytest.mark.slow
def test_cli_tiny_cpu_with_minilm_exports_a_loadable_model(tmp_path, monkeypatch, capsys):
    """`audiosep-train tiny_cpu` end to end (MiniLM encoder), then AudioSep.from_pretrained."""
    from audiosep import AudioSep
    from audiosep.train.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["tiny_cpu", "--make-tone-data", "tones"]) == 0
    sets = ["data.train_manifests=[tones/train.json]", "data.val_manifests=[tones/val.json]",
            "training.steps=6", "training.val_every=3", "training.checkpoint_every=3",
            "training.out_dir=run", "training.progress=false"]
    assert main(["tiny_cpu", *[a for s in sets for a in ("--set", s)]]) == 0
    assert main(["tiny_cpu", "--resume", "run", *[a for s in sets[:-2] for a in ("--set", s)],
                 "--set", "training.steps=9", "--set", "training.out_dir=run"]) == 0
    out = capsys.readouterr().out
    assert "trained steps 6 -> 9" in out and "best validation SDRi" in out
    model = AudioSep.from_pretrained(tmp_path / "run" / "final")
    assert model.query_encoder.kind == "minilm"
    mixture = torch.randn(1, 1, 16000) * 0.1
    est = model(mixture, model.embed("a tone at 440 hertz"))
    assert est.shape == mixture.shape and torch.isfinite(est).all()


def test_loss_registry_matches_the_metrics():
    from audiosep.metrics import sdr, si_sdr
    from audiosep.train.losses import LOSSES, get_loss

    g = torch.Generator().manual_seed(0)
    target = torch.randn(3, 1, 800, generator=g)
    est = target + 0.3 * torch.randn(3, 1, 800, generator=g)
    assert {"l1", "l2", "neg_sdr", "neg_si_sdr"} <= set(LOSSES)
    assert float(get_loss("l1")(est, target)) == pytest.approx(float((est - target).abs().mean()))
    assert float(get_loss("neg_si_sdr")(est, target)) == pytest.approx(-float(si_sdr(est, target).mean()), abs=1e-4)
    assert float(get_loss("neg_sdr")(est, target)) == pytest.approx(-float(sdr(est, target).mean()), abs=1e-4)
    with pytest.raises(ValueError, match="unknown loss 'l3'"):
        get_loss("l3")


def test_fine_tuning_a_saved_model_adopts_its_network_and_query_encoder(tones, tmp_path):
    from audiosep.model import AudioSep
    from audiosep.nn import ResUNet
    from audiosep.query.hashed import HashedTextEncoder

    train, _ = tones
    base = tiny_config(train, None, tmp_path / "unused")
    start_cfg = type(base.model)(**{**base.model.__dict__, "encoder_channels": (4, 4), "condition_dim": 8})
    torch.manual_seed(0)  # parameter init only
    start = AudioSep(ResUNet(start_cfg), HashedTextEncoder(dim=8)).save_pretrained(tmp_path / "start")
    cfg = tiny_config(train, None, tmp_path / "run", steps=2, checkpoint_every=2, init_from=str(start))
    assert cfg.model.condition_dim == 16 and cfg.query_encoder["dim"] == 16  # the config says otherwise
    with pytest.warns(UserWarning, match="using its model and query_encoder"):
        trainer = Trainer(cfg)
    assert trainer.config.model == start_cfg and trainer.encoder.embedding_dim == 8
    trainer.fit()
    written = yaml.safe_load((tmp_path / "run" / "checkpoints" / "step-00000002" / "config.yaml").read_text())
    assert written["model"]["encoder_channels"] == [4, 4] and written["query_encoder"] == {"kind": "hashed", "dim": 8}
    tuned = AudioSep.from_pretrained(tmp_path / "run" / "final")
    assert tuned.separation_net.config == start_cfg and tuned.query_encoder.config_dict()["dim"] == 8


def test_paired_training_mixes_pairs_but_validates_the_ordinary_way(tones, tmp_path):
    from audiosep.train.dataset import collate_clips

    train, val = tones
    ordinary = Trainer(tiny_config(train, val, tmp_path / "a"))
    cfg = tiny_config(train, val, tmp_path / "b")
    paired = Trainer(dataclasses.replace(cfg, mixing=dataclasses.replace(cfg.mixing, paired=True)))
    # validation mixtures are the same whichever mixer trains
    for (m1, t1, c1), (m2, t2, c2) in zip(ordinary._build_val_batches(), paired._build_val_batches(), strict=True):
        assert torch.equal(m1, m2) and torch.equal(t1, t2) and torch.equal(c1, c2)
    # a training batch: every mixture serves two items, one per source, with different queries
    first = {}  # one clip of each of four tones
    for i, record in enumerate(paired.dataset.records):
        first.setdefault(record.caption, i)
    assert len(first) >= 4
    batch = collate_clips([paired.dataset[i] for i in list(first.values())[:4]])
    mixtures, targets, conds = paired.make_inputs(batch, step=0)
    partners = {n: [m for m in range(4) if m != n and torch.equal(mixtures[m], mixtures[n])] for n in range(4)}
    assert all(len(p) == 1 for p in partners.values()), partners
    for n, (m,) in partners.items():
        assert batch.captions[n] != batch.captions[m] and not torch.equal(conds[n], conds[m])
        torch.testing.assert_close(targets[n] + targets[m], mixtures[n])


def test_fine_tuning_run_that_sets_input_level_switches_it_on_for_the_starting_network(tones, tmp_path):
    from audiosep.checkpoint import load_separation_net, save_separation_net
    from audiosep.nn import ResUNet

    train, _ = tones
    base = tiny_config(train, None, tmp_path / "unused")
    start = save_separation_net(ResUNet(base.model), tmp_path / "start.safetensors")  # level off
    cfg = tiny_config(train, None, tmp_path / "run", steps=2, init_from=str(start))
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, input_level_db=-24.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing else differs: no "using its model" warning
        trainer = Trainer(cfg)
    assert trainer.net.config.input_level_db == -24.0 and trainer.config.model == cfg.model
    trainer.fit()
    assert load_separation_net(tmp_path / "run" / "final").config.input_level_db == -24.0
    # a run that leaves it unset keeps the starting network's level
    again = tiny_config(train, None, tmp_path / "again", steps=1, init_from=str(tmp_path / "run" / "final"))
    with pytest.warns(UserWarning, match="using its model"):
        assert Trainer(again).net.config.input_level_db == -24.0


@pytest.mark.parametrize("which", ["train", "val"])
def test_cli_names_missing_audio_files_instead_of_the_batch_size(tones, tmp_path, capsys, which):
    """Every audio file of a manifest missing (here: moved away) is one error saying so, not
    "fewer than one global batch; lower data.batch_size"."""
    from audiosep.train.cli import main

    train, val = tones
    moved = tmp_path / f"{which}.json"
    moved.write_text(Path(train if which == "train" else val).read_text())  # relative wav paths, no wav here
    raw = tiny_config(moved if which == "train" else train, moved if which == "val" else val, tmp_path / "run").to_dict()
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(raw))
    assert main([str(tmp_path / "run.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"audiosep-train: error: none of the ") and err.count("\n") == 1
    assert f"audio files listed in data.{which}_manifests ({moved}) exists (the first: {tmp_path / 'wav'}" in err
    assert "batch_size" not in err and not (tmp_path / "run").exists()


def test_init_from_a_folder_reads_its_config_json_with_the_model_checks(tones, tmp_path):
    from audiosep.model import AudioSep, ModelConfigError
    from audiosep.nn import ResUNet
    from audiosep.query.hashed import HashedTextEncoder
    from audiosep.train.trainer import starting_point

    train, _ = tones
    base = tiny_config(train, None, tmp_path / "unused")
    start = AudioSep(ResUNet(base.model), HashedTextEncoder(dim=16)).save_pretrained(tmp_path / "start")
    config = json.loads((start / "config.json").read_text())
    config["separation_net"]["mask_exponent"] = 0.5  # config.json, not the copy inside the weights, decides
    (start / "config.json").write_text(json.dumps(config))
    cfg = tiny_config(train, None, tmp_path / "run", init_from=str(start))
    net, encoder_cfg = starting_point(cfg)
    assert net.config.mask_exponent == 0.5 and encoder_cfg == {"kind": "hashed", "dim": 16}
    (start / "config.json").write_text("[1, 2]")
    with pytest.raises(ModelConfigError, match=r"start/config.json must hold a JSON object"):
        starting_point(cfg)
