"""Typed stage configs from YAML and the command line.

Each stage has one dataclass. :func:`parse_config` builds a parser for it with TRL's ``TrlParser``
(``--config file.yaml`` sets the defaults, flags override them; every ``snake_case`` flag is also
accepted as ``kebab-case``), and lets a few fields be given positionally (``korlora data clean IN``).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from korlora.errors import KorloraError

T = TypeVar("T")


def build_parser(cls: type, prog: str, description: str, positional: Sequence[str] = ()) -> argparse.ArgumentParser:
    from trl import TrlParser  # light: TRL imports its trainers lazily

    parser = TrlParser(
        dataclass_types=[cls],
        prog=prog,
        description=description,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--config", metavar="YAML", default=None, help="YAML file with defaults for any of the flags below"
    )
    for name in positional:
        parser.add_argument(name, nargs="?", default=argparse.SUPPRESS, metavar=name.upper(),
                            help=f"same as --{name}")
    return parser


def parse_config(
    cls: type[T], argv: Sequence[str], prog: str = "korlora", description: str = "",
    positional: Sequence[str] = (),
) -> T:
    """Parse ``argv`` (flags, optional ``--config``) into an instance of the dataclass ``cls``."""
    parser = build_parser(cls, prog, description, positional)
    argv = list(argv)
    if "--config" in argv:
        i = argv.index("--config")
        if i + 1 >= len(argv):
            raise KorloraError("--config needs a YAML file")
        path = Path(argv[i + 1])
        if not path.is_file():
            raise KorloraError(f"config file not found: {path}")
    try:
        (cfg, *_) = parser.parse_args_and_config(argv)
    except yaml.YAMLError as e:
        raise KorloraError(f"config file is not valid YAML: {e}") from None
    return cfg


def load_config(cls: type[T], path: str | Path | None = None, **overrides: Any) -> T:
    """Build a stage config in code: YAML file (optional) first, then keyword overrides."""
    values: dict[str, Any] = {}
    if path is not None:
        with open(path, encoding="utf-8") as f:
            values = yaml.safe_load(f) or {}
        if not isinstance(values, dict):
            raise KorloraError(f"config file {path} must contain a YAML mapping")
    values.update(overrides)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise KorloraError(f"unknown {cls.__name__} fields: {', '.join(unknown)}")
    return cls(**values)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-friendly dict of a config (paths as strings)."""
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in dataclasses.asdict(cfg).items()}
