"""Training configs: YAML -> validated dataclasses, errors that name the dotted key."""
from __future__ import annotations

import dataclasses
import re

import pytest
import yaml

from audiosep.nn.config import ResUNetConfig
from audiosep.train.cli import CONFIG_DIR, main
from audiosep.train.config import ConfigError, DataConfig, MixConfig, TrainConfig, config_from_dict, load_config

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
    (with_("training", precision="fp8"), "training.precision must be one of ('fp32', 'bf16', 'fp16'), got 'fp8'"),
    (with_("training", grad_accum_steps=0), "training.grad_accum_steps must be >= 1 (1: no accumulation), got 0"),
    (with_("training", ema_decay=1.0), "training.ema_decay must be in (0, 1), e.g. 0.999 (or null for no EMA), got 1.0"),
    (with_("training", logger="neptune"), "training.logger must be null or one of ('wandb', 'mlflow'), got 'neptune'"),
    (with_("schedule", kind="cosine"), "schedule.kind must be one of ('warmup_constant', 'warmup_linear_decay', 'warmup_cosine')"),
    (with_("training", steps="many"), "training.steps must be an integer, got 'many'"),
    (with_("training", dist_timeout_s=0), "training.dist_timeout_s must be > 0 (seconds), got 0"),
    (with_("training", grad_clip=0), "training.grad_clip must be > 0"),
    (with_("training", loss="l3"), "training.loss must be one of"),
    (with_("training", sync_batchnorm=True, freeze_batchnorm=True), "training.sync_batchnorm cannot be"),
    (with_("data", batch_size=0), "data.batch_size must be >= 1, got 0"),
    ({**with_("data", sample_rate=16000), "model": {"sample_rate": 32000}},
     "data.sample_rate (16000) must equal model.sample_rate"),
    (with_("mixing", lower_db=5, higher_db=-5), "mixing.lower_db must be <= mixing.higher_db (-5), got 5"),
    (with_("mixing", group_size=5), "mixing.group_size must divide data.batch_size (12)"),
    (with_("mixing", sources_per_mixture=3, paired=True),
     "mixing.paired makes two-source mixtures; set mixing.sources_per_mixture to 2 (it is 3) or paired to false"),
    (with_("data", speed_range=[1.2, 0.9]), "data.speed_range must be [low, high]"),
    (with_("data", speed_range=[0.2, 1.0]), "data.speed_range must be [low, high]"),
    (with_("data", short_clips="end"), "data.short_clips must be 'random' (a random offset in the segment) or 'start', got 'end'"),
    (with_("queries", audio_fraction=2), "queries.audio_fraction must be in [0, 1], got 2"),
    (with_("model", film="scale"), "model.film must be one of"),
    ({**GOOD, "query_encoder": {"dim": 3}}, "query_encoder.kind is required"),
    ({**GOOD, "query_encoder": []}, "query_encoder must be a mapping with a 'kind', got []"),
    (with_("optim", lrr=1e-3), "unknown key optim.lrr (did you mean 'lr'?); known keys of optim: amsgrad, betas,"),
    (with_("data", batch=2, sampel_rate=3), "unknown keys data.batch, data.sampel_rate; known keys of data:"),
    ({**GOOD, "model": [1]}, "model must be a mapping of keys to values, got [1]"),
    (with_("model", sample_rate=True), "model.sample_rate must be an integer, got True"),
    (with_("model", n_fft=512.5), "model.n_fft must be an integer, got 512.5"),
    (with_("model", pool_sizes=[[2], [2, 2]]), "model.pool_sizes[0] must be a list of 2 values, got [2]"),
    (with_("model", encoder_channels=5), "model.encoder_channels must be a list, got 5"),
    (with_("data", train_manifests=[["a.json"]]), "data.train_manifests[0] must be a string, got ['a.json']"),
    (with_("data", batch_size=True), "data.batch_size must be an integer, got True"),
    (with_("data", segment_seconds=1e-9), "data.segment_seconds must be > 0 and give at least one sample"),
    (with_("mixing", declip_peak="loud"), "mixing.declip_peak must be a number, got 'loud'"),
    (with_("mixing", higher_db=2.5), "mixing.higher_db must be an integer, got 2.5"),
    (with_("mixing", group_size=1), "mixing.group_size must be >= mixing.sources_per_mixture (2), got 1"),
    (with_("training", steps=0), "training.steps must be >= 1, got 0"),
])
def test_errors_name_the_dotted_key(raw, message):
    with pytest.raises(ConfigError) as err:
        config_from_dict(raw)
    assert message in str(err.value)
    assert "\n" not in str(err.value) and "MixConfig" not in str(err.value) and "DataConfig" not in str(err.value)


def test_one_mixing_config_checked_on_construction():
    from audiosep.train import mixing

    assert mixing.MixConfig is MixConfig and type(config_from_dict(GOOD).mixing) is MixConfig
    cfg = config_from_dict(with_("mixing", strict_distinct=True, group_size=4, lower_db=-3.0))
    assert (cfg.mixing.strict_distinct, cfg.mixing.group_size, cfg.mixing.lower_db) == (True, 4, -3)
    assert type(cfg.mixing.lower_db) is int
    with pytest.raises(ConfigError, match=r"^MixConfig.lower_db must be <= MixConfig.higher_db \(0\), got 5$"):
        MixConfig(lower_db=5, higher_db=0)
    with pytest.raises(ConfigError, match=r"^DataConfig.batch_size must be >= 1, got 0$"):
        DataConfig(batch_size=0)
    assert DataConfig(speed_range=[0.9, 1.1]).speed_range == (0.9, 1.1)  # lists become tuples


@pytest.mark.parametrize("text, message", [
    ("data: [1, 2\n", r"run\.yaml: invalid YAML at line 2, column 1 \(expected ',' or ']'.*\); fix the syntax"),
    ("data: !!python/object:os.system {}\n", r"run\.yaml: invalid YAML at line 1, column 7 \(could not determine a constructor"),
    ("- 1\n- 2\n", r"run\.yaml must hold a mapping of sections \(model, data, optim, \.\.\.\), got a list"),
    (b"\xff\xfedata: 1", r"run\.yaml is not UTF-8 text \(invalid start byte at byte 0\); save it as UTF-8"),
])
def test_unreadable_yaml_is_one_error_naming_the_file(tmp_path, text, message):
    path = tmp_path / "run.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError, match=message):
        load_config(path)


@pytest.mark.parametrize("override, message", [
    ("data.batch_size=[", r"--set 'data.batch_size=\[': invalid YAML at line 1, column 2"),
    (".x=1", r"--set '\.x=1': KEY must be dotted names such as optim.lr"),
    ("data.sample_rate=true", "data.sample_rate must be an integer, got True"),
])
def test_bad_overrides_are_named(tmp_path, override, message):
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(GOOD))
    with pytest.raises(ConfigError, match=message):
        load_config(path, [override])


def test_cli_errors_are_one_line(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("data: [1, 2\n")
    (tmp_path / "folder.yaml").mkdir()
    cases = [([str(tmp_path / "bad.yaml")], f"{tmp_path / 'bad.yaml'}: invalid YAML at line 2, column 1"),
             ([str(tmp_path / "folder.yaml")], f"config '{tmp_path / 'folder.yaml'}' is a folder; give a YAML file"),
             (["tiny_cpu", "--set", "data.batch_size=["], "--set 'data.batch_size=[': invalid YAML")]
    for argv, message in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"audiosep-train: error: {message}") and err.count("\n") == 1, err


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
    # a list key set to null is an empty list (switching a run from manifests to shards)
    assert load_config(path, ["data.train_manifests=null"]).data.train_manifests == ()
    with pytest.raises(ConfigError, match="model.encoder_channels and pool_sizes must have the same length"):
        load_config(path, ["model.encoder_channels=null"])


def test_date_like_values_stay_strings(tmp_path, monkeypatch):
    """YAML would read 2024-01-01 as a date; config values are never dates."""
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(GOOD) + "\n".join(["training:", "  out_dir: 2024-01-02", ""]))
    monkeypatch.chdir(tmp_path)
    cfg = load_config(path, ["query_encoder.model_dir=2024-01-01", "data.val_manifests=[2024-01-01T10:00:00]",
                             "training.steps=12", "training.grad_clip=1e-1", "data.random_crop=false"])
    assert cfg.query_encoder["model_dir"] == "2024-01-01"
    assert cfg.data.val_manifests == (str(tmp_path / "2024-01-01T10:00:00"),)
    assert cfg.training.out_dir == "2024-01-02"
    assert (cfg.training.steps, cfg.training.grad_clip, cfg.data.random_crop) == (12, 0.1, False)


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
