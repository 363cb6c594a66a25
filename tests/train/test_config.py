"""Training configs: YAML -> validated dataclasses, errors that name the dotted key."""
from __future__ import annotations

import dataclasses
import re

import pytest
import yaml

from audiosep.nn.config import ResUNetConfig
from audiosep.train.cli import CONFIG_DIR, main
from audiosep.train.config import ConfigError, TrainConfig, config_from_dict, load_config

GOOD = {"query_encoder": {"kind": "hashed", "dim": 512}, "data": {"train_manifests": ["x.json"]}}


def with_(section, **values):
    raw = {k: dict(v) for k, v in GOOD.items()}
    raw.setdefault(section, {}).update(values)
    return raw


@pytest.mark.parametrize("raw, message", [
    ({**GOOD, "optimiser": {}}, "unknown key optimiser"),
    (with_("optim", learning_rate=1e-3), "unknown key optim.learning_rate"),
    (with_("model", channels=3), "unknown key model.channels"),
    (with_("optim", lr=-1), "optim.lr must be > 0, got -1"),
    (with_("optim", betas=[0.9]), "optim.betas must be two numbers in [0, 1)"),
    (with_("training", precision="fp16"), "training.precision must be one of ('fp32', 'bf16'), got 'fp16'"),
    (with_("training", steps="many"), "training.steps must be an integer, got 'many'"),
    (with_("training", grad_clip=0), "training.grad_clip must be > 0"),
    (with_("training", loss="l3"), "training.loss must be one of"),
    (with_("training", sync_batchnorm=True, freeze_batchnorm=True), "training.sync_batchnorm cannot be"),
    (with_("data", batch_size=0), "data.batch_size must be >= 1, got 0"),
    ({**with_("data", sample_rate=16000), "model": {"sample_rate": 32000}},
     "data.sample_rate (16000) must equal model.sample_rate"),
    (with_("mixing", lower_db=5, higher_db=-5), "mixing.lower_db must be <= mixing.higher_db"),
    (with_("mixing", group_size=5), "mixing.group_size must divide data.batch_size (12)"),
    (with_("mixing", sources_per_mixture=3, paired=True), "mixing.paired makes two-source mixtures"),
    (with_("data", speed_range=[1.2, 0.9]), "data.speed_range must be [low, high]"),
    (with_("data", speed_range=[0.2, 1.0]), "data.speed_range must be [low, high]"),
    (with_("data", short_clips="end"), "data.short_clips must be 'random' (a random offset in the segment) or 'start', got 'end'"),
    (with_("queries", audio_fraction=2), "queries.audio_fraction must be in [0, 1], got 2"),
    (with_("model", film="scale"), "model.film must be one of"),
    ({**GOOD, "query_encoder": {"dim": 3}}, "query_encoder.kind is required"),
])
def test_errors_name_the_dotted_key(raw, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw)
    assert message in str(err.value)


def test_defaults_are_the_reference_recipe():
    cfg = config_from_dict(GOOD)
    assert (cfg.optim.lr, cfg.optim.betas, cfg.optim.eps, cfg.optim.weight_decay, cfg.optim.amsgrad) == (
        1e-3, (0.9, 0.999), 1e-8, 0.0, True)
    assert cfg.schedule.warmup_steps == 10000 and cfg.training.loss == "l1"
    assert cfg.training.grad_clip is None and cfg.model == ResUNetConfig()


def test_reference_yaml(tmp_path):
    cfg = load_config(CONFIG_DIR / "reference.yaml")
    assert cfg.model == ResUNetConfig()
    assert cfg.query_encoder == {"kind": "clap"}
    assert (cfg.data.sample_rate, cfg.data.segment_seconds, cfg.data.batch_size) == (32000, 5.0, 12)
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.amsgrad, cfg.schedule.warmup_steps) == ("adamw", 1e-3, True, 10000)
    assert cfg.training.sync_batchnorm and cfg.training.precision == "bf16"
    assert (cfg.mixing.sources_per_mixture, cfg.mixing.lower_db, cfg.mixing.higher_db) == (2, -10, 10)


def test_overrides_and_manifest_paths(tmp_path, monkeypatch):
    path = tmp_path / "cfg" / "run.yaml"
    path.parent.mkdir()
    path.write_text(yaml.safe_dump({**GOOD, "data": {"train_manifests": "a.json"}}))
    monkeypatch.chdir(tmp_path)
    cfg = load_config(path, ["optim.lr=3e-4", "training.grad_clip=null", "data.val_manifests=[v.json]",
                             "model.encoder_channels=[8, 16]", "model.pool_sizes=[[2,2],[2,2]]"])
    assert cfg.optim.lr == 3e-4 and cfg.training.grad_clip is None
    assert cfg.data.train_manifests == (str(path.parent / "a.json"),)  # relative to the YAML
    assert cfg.data.val_manifests == (str(tmp_path / "v.json"),)  # --set: relative to the caller
    assert cfg.model.encoder_channels == (8, 16)
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(path, ["optim.lr"])


def test_tiny_cpu_yaml_and_cli_errors(capsys):
    cfg = load_config(CONFIG_DIR / "tiny_cpu.yaml")
    assert cfg.query_encoder["kind"] == "minilm" and cfg.model.condition_dim == 384
    assert main(["tiny_cpu", "--set", "optim.lr=-1"]) == 2
    assert "optim.lr must be > 0, got -1" in capsys.readouterr().err
    assert main(["tiny_cpu", "--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["model"]["n_fft"] == 512


def test_round_trip_through_to_dict():
    cfg = config_from_dict(with_("training", grad_clip=5.0, init_from="x.safetensors"))
    assert config_from_dict(cfg.to_dict()) == cfg


def test_readme_documents_every_key():
    text = (CONFIG_DIR / "README.md").read_text()
    documented = set(re.findall(r"^\| `([a-z_.]+)` \|", text, flags=re.M))
    keys = {f"model.{f.name}" for f in dataclasses.fields(ResUNetConfig)} | {"query_encoder.kind"}
    for section in dataclasses.fields(TrainConfig):
        if section.name in ("model", "query_encoder"):
            continue
        keys |= {f"{section.name}.{f.name}" for f in dataclasses.fields(getattr(TrainConfig(), section.name))}
    assert keys - documented == set(), f"undocumented keys: {sorted(keys - documented)}"
    assert documented - keys == set(), f"documented keys that do not exist: {sorted(documented - keys)}"


def test_offline_small_paired_continues_offline_small():
    """The second stage of the bundled model fine-tunes the first stage's export with the same
    network, encoder and data; only the mixer, augmentation, schedule and precision differ."""
    first = load_config(CONFIG_DIR / "offline_small.yaml")
    second = load_config(CONFIG_DIR / "offline_small_paired.yaml")
    assert second.model == first.model and second.query_encoder == first.query_encoder
    assert second.training.init_from == f"{first.training.out_dir}/final"
    assert second.training.out_dir != first.training.out_dir
    assert second.mixing.paired and not first.mixing.paired
    assert second.data.speed_range == (0.9, 1.1) and first.data.speed_range is None
    assert dataclasses.replace(second.data, speed_range=None) == first.data
    assert dataclasses.replace(second.mixing, paired=False) == first.mixing


def test_offline_small_placed_continues_offline_small_paired():
    """The third stage of the bundled model fine-tunes the second stage's export; the data differ
    only in where short clips are placed, the schedule is shorter and gentler."""
    second = load_config(CONFIG_DIR / "offline_small_paired.yaml")
    third = load_config(CONFIG_DIR / "offline_small_placed.yaml")
    assert third.model == second.model and third.query_encoder == second.query_encoder
    assert third.training.init_from == f"{second.training.out_dir}/final"
    assert third.training.out_dir not in (second.training.out_dir, second.training.init_from)
    assert (second.data.short_clips, third.data.short_clips) == ("start", "random")
    assert dataclasses.replace(third.data, short_clips="start") == second.data
    assert third.mixing == second.mixing and third.schedule == second.schedule
    assert (third.training.steps, third.optim.lr) == (4000, 3e-4)
    assert load_config(CONFIG_DIR / "offline_small.yaml").data.short_clips == "start"
