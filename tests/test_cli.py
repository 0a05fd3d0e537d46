import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from korlora.cli import COMMANDS, _available, main
from korlora.config import load_config, parse_config
from korlora.errors import KorloraError


@dataclass
class _Demo:
    input: str | None = None
    learning_rate: float = field(default=2e-4, metadata={"help": "lr"})
    num_samples: int = field(default=10, metadata={"aliases": ["-n"]})
    max_ratio: float = 0.05
    use_4bit: bool = False


def test_top_level_help_runs_as_console_script():
    out = subprocess.run([sys.executable, "-m", "korlora.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    assert "model build" in out.stdout


@pytest.mark.parametrize("command", [c for c in COMMANDS if _available(c)], ids=lambda c: " ".join(c.path))
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as e:
        main([*command.path, "--help"])
    assert e.value.code == 0
    assert "--config" in capsys.readouterr().out


def test_unknown_command_fails(capsys):
    assert main(["nope"]) == 2
    assert "unknown command" in capsys.readouterr().err


def test_seed_flag_spellings_and_yaml_overrides(tmp_path):
    for flags in (["--learning_rate", "5e-5"], ["--learning-rate", "5e-5"]):
        assert parse_config(_Demo, flags).learning_rate == 5e-5
    cfg = parse_config(_Demo, ["in.jsonl", "-n", "3", "--max-ratio", "0.1", "--use_4bit"], positional=["input"])
    assert (cfg.num_samples, cfg.max_ratio, cfg.use_4bit, cfg.input) == (3, 0.1, True, "in.jsonl")
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("learning_rate: 1.0e-4\nnum_samples: 7\n")
    cfg = parse_config(_Demo, ["--config", str(yaml_file), "-n", "9"])
    assert (cfg.learning_rate, cfg.num_samples) == (1e-4, 9)
    assert load_config(_Demo, yaml_file, num_samples=2).num_samples == 2
    with pytest.raises(KorloraError):
        load_config(_Demo, None, bogus=1)
    with pytest.raises(KorloraError):
        parse_config(_Demo, ["--config", str(tmp_path / "missing.yaml")])


def test_model_build_prints_path_and_parameters(tiny_ko, capsys):
    assert main(["model", "build", "tiny-ko"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == str(tiny_ko)
    assert out[1].startswith("parameters: ") and int(out[1].split()[1].replace(",", "")) > 1_000_000


def test_only_tiny_ko_can_be_built(capsys):
    assert main(["model", "build", "Qwen/Qwen2.5-1.5B"]) == 2
    assert "only 'tiny-ko'" in capsys.readouterr().err
