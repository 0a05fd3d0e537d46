"""One training config for every command that trains: precedence (flag > --config > profile > default),
every option reachable from relearn / tune / demo, SFTConfig reached by name, shipped configs load."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml

from korlora.config import load_config, parse_config
from korlora.errors import KorloraError
from korlora.relearn.config import RELEARN_SETS, DemoConfig, RelearnConfig
from korlora.train.config import TrainConfig
from korlora.tune.config import TUNE_SETS, TuneConfig

ROOT = Path(__file__).resolve().parent.parent


def write_yaml(path: Path, values: dict) -> str:
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return str(path)


def test_profile_is_a_default_that_flags_and_config_files_override(tmp_path):
    h100 = TrainConfig.profile_defaults("h100")
    assert h100["per_device_train_batch_size"] == 4 and h100["bf16"] is True
    plain = parse_config(TrainConfig, [])
    assert plain.per_device_train_batch_size == 2 and plain.bf16 is None  # built-in defaults
    profiled = parse_config(TrainConfig, ["--profile", "h100"])
    assert (profiled.per_device_train_batch_size, profiled.gradient_accumulation_steps, profiled.bf16) == (4, 2, True)
    flag = parse_config(TrainConfig, ["--profile", "h100", "--per_device_train_batch_size", "8"])
    assert flag.per_device_train_batch_size == 8  # the flag wins over the profile
    assert flag.gradient_accumulation_steps == 2  # what the flag did not say still comes from the profile
    config = write_yaml(tmp_path / "t.yaml", {"profile": "h100", "gradient_accumulation_steps": 16,
                                              "per_device_train_batch_size": 1})
    from_file = parse_config(TrainConfig, ["--config", config, "--per_device_train_batch_size", "3"])
    assert (from_file.gradient_accumulation_steps, from_file.per_device_train_batch_size) == (16, 3)
    assert from_file.bf16 is True and from_file.profile == "h100"
    with pytest.raises(ValueError, match="unknown profile 'a100'; choose from cpu, h100"):
        parse_config(TrainConfig, ["--profile", "a100"])


def test_relearn_takes_every_training_flag_and_keeps_its_own_defaults(tmp_path):
    cfg = parse_config(RelearnConfig, ["--profile", "h100", "--per_device_train_batch_size", "8", "--model",
                                       "my/model", "--use_4bit", "--packing", "--attn_implementation", "eager",
                                       "--lora_alpha", "64", "--gradient_checkpointing", "--max_ratio", "0.02"])
    train = cfg.train
    assert train.per_device_train_batch_size == 8 and train.gradient_accumulation_steps == 2 and train.bf16
    assert (train.model_name_or_path, train.use_4bit, train.packing, train.attn_implementation) == (
        "my/model", True, True, "eager")
    assert train.lora_alpha == 64 and train.gradient_checkpointing and cfg.max_ratio == 0.02
    assert (train.learning_rate, train.num_train_epochs) == (5e-5, 1.0)  # the seed's relearn recipe
    config = write_yaml(tmp_path / "r.yaml", {"max_ratio": 0.03, "train": {
        "profile": "h100", "gradient_accumulation_steps": 16, "learning_rate": 1e-4}})
    cfg = parse_config(RelearnConfig, ["--config", config, "--learning_rate", "2e-5"])
    assert cfg.max_ratio == 0.03
    assert (cfg.train.gradient_accumulation_steps, cfg.train.per_device_train_batch_size) == (16, 4)
    assert cfg.train.learning_rate == 2e-5


@pytest.mark.parametrize("cls,set_by_stage", [(RelearnConfig, RELEARN_SETS), (TuneConfig, TUNE_SETS),
                                              (DemoConfig, RELEARN_SETS)])
def test_every_training_option_is_a_flag_of_every_training_command(cls, set_by_stage, capsys):
    from korlora.config import build_parser

    parser = build_parser(cls, "korlora", "")
    flags = {s for a in parser._actions for s in a.option_strings}
    for f in dataclasses.fields(TrainConfig):
        if f.name in set_by_stage:
            assert f"--{f.name}" not in flags or f.name in {g.name for g in dataclasses.fields(cls)}
        else:
            assert f"--{f.name}" in flags, f.name
    assert "--model" in flags and "--model_name_or_path" in flags


def test_config_files_are_checked(tmp_path):
    with pytest.raises(KorloraError, match="unknown 'train:' keys: data_file"):
        parse_config(RelearnConfig, ["--config", write_yaml(tmp_path / "a.yaml", {"train": {"data_file": "x"}})])
    with pytest.raises(KorloraError, match="unknown config keys: learning_rate"):
        parse_config(RelearnConfig, ["--config", write_yaml(tmp_path / "b.yaml", {"learning_rate": 1e-4})])
    with pytest.raises(KorloraError, match="must be a mapping"):
        parse_config(RelearnConfig, ["--config", write_yaml(tmp_path / "c.yaml", {"train": [1, 2]})])
    # YAML 1.1 reads 5e-5 (no dot) as a string: the float field still gets a float
    cfg = parse_config(TrainConfig, ["--config", write_yaml(tmp_path / "d.yaml", {"learning_rate": "5e-5"})])
    assert cfg.learning_rate == 5e-5


def test_other_sft_settings_pass_through_by_name(tmp_path):
    cfg = parse_config(TrainConfig, ["--config", write_yaml(tmp_path / "s.yaml", {
        "sft": {"optim": "sgd", "max_grad_norm": 0.5}, "learning_rate": 1e-3, "num_epochs": 2})])
    values = cfg.sft_values()
    assert values["optim"] == "sgd" and values["max_grad_norm"] == 0.5
    assert values["learning_rate"] == 1e-3 and values["num_train_epochs"] == 2
    assert "output_dir" not in values and "bf16" not in values  # the worker decides these
    with pytest.raises(ValueError, match="not SFTConfig settings"):
        TrainConfig(sft={"optimizer_name": "sgd"})
    with pytest.raises(ValueError, match="set by korlora"):
        TrainConfig(sft={"bf16": True})


def test_seed_spellings_work_on_the_training_config():
    cfg = parse_config(TrainConfig, ["--num_epochs", "1", "--use_4bit", "--warmup_ratio", "0.1",
                                     "--target_modules", "q_proj", "v_proj"])
    assert (cfg.num_train_epochs, cfg.use_4bit, cfg.warmup_steps, cfg.lora_target_modules) == (
        1.0, True, 0.1, ["q_proj", "v_proj"])


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    cls = {"demo.yaml": DemoConfig, "demo-gemma.yaml": DemoConfig, "demo-smollm2.yaml": DemoConfig,
           "tune.yaml": TuneConfig}.get(path.name)
    if cls is None:
        pytest.skip(f"no command known for {path.name}")
    cfg = parse_config(cls, ["--config", str(path)])
    assert cfg.train.model_name_or_path  # the train: section was read
    assert load_config(cls, path) == cfg
