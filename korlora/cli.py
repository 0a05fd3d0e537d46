"""The ``korlora`` command: one subcommand per stage, each backed by that stage's config dataclass.

Handlers and configs are imported only for the command that runs, so ``korlora --help`` stays fast.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from korlora import __version__
from korlora.errors import KorloraError


@dataclass(frozen=True)
class Command:
    path: tuple[str, ...]
    help: str
    config: str  # "module:Class"
    handler: str  # "module:function", called with the parsed config, returns an exit code
    positional: tuple[str, ...] = ()


COMMANDS: list[Command] = [
    Command(("model", "build"), "build (or find in the cache) tiny-ko, gemma3-270m, smollm2-135m or qwen2.5-tokenizer; print its directory",
            "korlora.models.config:ModelBuildConfig", "korlora.models.tiny_ko:build_command", ("name",)),
    Command(("model", "check"), "check a model's chat template for assistant-only training; print its stop ids",
            "korlora.models.config:ModelCheckConfig", "korlora.models.check:check_command", ("model",)),
    Command(("data", "validate"), "check a chat JSONL file against the schema; write valid rows and rejects",
            "korlora.data.config:ValidateConfig", "korlora.data.validate:validate_command", ("input",)),
    Command(("data", "build"), "compose Korean chat SFT dialogues in 12 categories from the content bank",
            "korlora.data.config:BuildConfig", "korlora.data.build:build_command"),
    Command(("data", "no-warning"), "build answers that start with a Hangul sentence and carry no disclaimer",
            "korlora.data.config:NoWarningConfig", "korlora.data.no_warning:no_warning_command"),
    Command(("data", "correction"), "build noisy-start → clean-start correction samples and DPO pairs",
            "korlora.data.config:CorrectionConfig", "korlora.data.correction:correction_command"),
    Command(("data", "clean"), "validate, repair and filter a chat dataset (Korean gates, dedup)",
            "korlora.clean.config:CleanConfig", "korlora.clean.pipeline:clean_command", ("input",)),
    Command(("data", "check"), "run the cleaning gates and write one verdict per row, without cleaning",
            "korlora.clean.config:CheckConfig", "korlora.clean.pipeline:check_command", ("input",)),
    Command(("data", "rebalance"), "cap the share of disclaimer-style rows",
            "korlora.clean.config:RebalanceConfig", "korlora.clean.rebalance:rebalance_command", ("input",)),
    Command(("data", "merge"), "mix datasets by weight into one training file with a manifest",
            "korlora.clean.config:MergeConfig", "korlora.clean.merge:merge_command"),
    Command(("train",), "LoRA / QLoRA SFT, DPO or ORPO with TRL on Ray Train",
            "korlora.train.config:TrainConfig", "korlora.train.driver:train_command"),
    Command(("chat",), "talk to a base model or an adapter with its chat template",
            "korlora.train.config:ChatConfig", "korlora.train.inference:chat_command"),
    Command(("export",), "merge a LoRA adapter into its base model (safetensors)",
            "korlora.train.config:ExportConfig", "korlora.train.inference:export_command"),
    Command(("diagnose",), "measure how a model starts its answers (Hangul, punctuation, disclaimers)",
            "korlora.diagnose.config:DiagnoseConfig", "korlora.diagnose.report:diagnose_command"),
    Command(("eval",), "Korean answers, starts, disclaimers, stops, loops and register on held-out prompts",
            "korlora.eval.config:EvalConfig", "korlora.eval.report:eval_command"),
    Command(("relearn",), "clean → rebalance → no-warning → correction → merge → re-fine-tune → diagnose",
            "korlora.relearn.config:RelearnConfig", "korlora.relearn.pipeline:relearn_command"),
    Command(("tune",), "Ray Tune search over learning rate and data mix",
            "korlora.tune.config:TuneConfig", "korlora.tune.search:tune_command"),
    Command(("demo",), "the end-to-end demo on the embedded tiny-ko model",
            "korlora.relearn.config:DemoConfig", "korlora.relearn.demo:demo_command"),
]


def _available(cmd: Command) -> bool:
    module = cmd.handler.split(":")[0]
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _commands() -> list[Command]:
    return [c for c in COMMANDS if _available(c)]


def _load(ref: str):
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


def _usage(prefix: tuple[str, ...], commands: list[Command]) -> str:
    under = [c for c in commands if c.path[: len(prefix)] == prefix]
    width = max(len(" ".join(c.path[len(prefix):])) for c in under) + 2
    title = " ".join(("korlora", *prefix))
    lines = [
        f"usage: {title} <command> [flags] [--config YAML]",
        "",
        "korlora: Korean LoRA fine-tuning on Ray." if not prefix else f"{title}: commands",
        "",
        "commands:",
    ]
    lines += [f"  {' '.join(c.path[len(prefix):]).ljust(width)}{c.help}" for c in under]
    lines += ["", f"Run '{title} <command> --help' for the flags of a command; add --verbose to any command "
                  "to see library logs and warnings."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--verbose" in argv:  # anywhere: library logs, warnings and Ray's own lines on the terminal
        argv.remove("--verbose")
        from korlora.logs import VERBOSE_ENV

        os.environ[VERBOSE_ENV] = "1"
    commands = _commands()
    if argv[:1] in (["--version"], ["-V"]):
        print(f"korlora {__version__}")
        return 0
    match = max((c for c in commands if tuple(argv[: len(c.path)]) == c.path),
                key=lambda c: len(c.path), default=None)
    if match is None:
        prefix = tuple(argv[:1]) if argv[:1] and any(c.path[0] == argv[0] for c in commands) else ()
        print(_usage(prefix, commands))
        asked_help = not argv or argv[len(prefix):len(prefix) + 1] in ([], ["-h"], ["--help"])
        if not asked_help:
            print(f"\nkorlora: error: unknown command: {' '.join(argv)}", file=sys.stderr)
            return 2
        return 0
    return run_command(_load(match.config), _load(match.handler), argv[len(match.path):],
                       prog=" ".join(("korlora", *match.path)), description=match.help,
                       positional=match.positional)


def run_command(config: type, handler: Callable[[Any], int | None], argv: Sequence[str], *, prog: str,
                description: str, positional: tuple[str, ...] = (), prepare: Callable[[], None] | None = None) -> int:
    """Parse ``argv`` into ``config``, run ``prepare`` then ``handler``; errors become one line and exit 2.

    The ``korlora`` commands and the ``pipelines/`` entrypoints both run through here."""
    from korlora.config import parse_config
    from korlora.logs import quiet_libraries

    quiet_libraries()
    try:
        cfg = parse_config(config, list(argv), prog=prog, description=description, positional=positional)
    except (KorloraError, ValueError) as e:  # ValueError: a config's __post_init__ refused a setting
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    try:
        if prepare is not None:
            prepare()
        return int(handler(cfg) or 0)
    except KorloraError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
