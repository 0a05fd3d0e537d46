"""Typed stage configs from YAML and the command line.

Each stage has one dataclass. A stage that trains (``relearn``, ``tune``, ``demo``) does not copy the
training options: it holds a :class:`~korlora.train.config.TrainConfig` in a field ``train`` (a *section*),
written as a ``train:`` mapping in YAML and as the same flat flags as ``korlora train`` on the command line.
Fields a stage sets itself (its output directory, the file it trains on) are listed in the section field's
``metadata["set_by_stage"]`` and are not flags of that stage.

Precedence, for every value: a flag > the ``--config`` file > the training profile (``--profile``, a YAML
of defaults) > the built-in default. Flags are accepted as ``--snake_case`` and ``--kebab-case``; a few
fields may be given positionally (``korlora data clean IN``).
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml

from korlora.errors import KorloraError

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class _Section:
    name: str
    cls: type
    defaults: Any  # an instance: the stage's own defaults for the section
    set_by_stage: tuple[str, ...]


def _sections(cls: type) -> dict[str, _Section]:
    hints = typing.get_type_hints(cls)
    sections = {}
    for f in dataclasses.fields(cls):
        if dataclasses.is_dataclass(hints[f.name]) and f.default_factory is not dataclasses.MISSING:
            sections[f.name] = _Section(f.name, hints[f.name], f.default_factory(),
                                        tuple(f.metadata.get("set_by_stage", ())))
    return sections


def _flag_fields(cls: type, defaults: Any = None, skip: Sequence[str] = ()) -> list[tuple[str, Any, Any]]:
    """``(name, resolved type, field)`` for ``make_dataclass``; defaults taken from ``defaults`` when given."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.name in skip or dataclasses.is_dataclass(hints[f.name]):
            continue
        if defaults is not None:
            value = getattr(defaults, f.name)
            new = (dataclasses.field(default_factory=lambda v=value: list(v), metadata=f.metadata)
                   if isinstance(value, list) else dataclasses.field(default=value, metadata=f.metadata))
        else:
            new = dataclasses.field(default=f.default, default_factory=f.default_factory, metadata=f.metadata)
        out.append((f.name, hints[f.name], new))
    return out


def build_parser(cls: type, prog: str, description: str, positional: Sequence[str] = (),
                 explicit_only: bool = False) -> argparse.ArgumentParser:
    """An argparse parser with every flag of ``cls`` and of its sections. ``explicit_only``: no defaults,
    so that the parsed namespace holds exactly the flags given."""
    from transformers import HfArgumentParser

    sections = _sections(cls)
    own = _flag_fields(cls)
    views = [dataclasses.make_dataclass(cls.__name__, own)]
    taken = {name for name, _, _ in own}
    for section in sections.values():
        fields = _flag_fields(section.cls, section.defaults, skip=(*section.set_by_stage, *taken))
        view = dataclasses.make_dataclass(section.cls.__name__, fields)
        view._argument_group_name = f"{section.name} (the '{section.name}:' mapping in YAML)"
        views.append(view)
    parser = HfArgumentParser(views, prog=prog, description=description,
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--config", metavar="YAML", default=None,
                        help="YAML file with defaults for any of the flags below")
    for name in positional:
        parser.add_argument(name, nargs="?", default=argparse.SUPPRESS, metavar=name.upper(),
                            help=f"same as --{name}")
    if explicit_only:
        for action in parser._actions:
            if action.dest != "help":
                action.default = argparse.SUPPRESS
    return parser


def _read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise KorloraError(f"config file not found: {path}")
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise KorloraError(f"config file is not valid YAML: {e}") from None
    if not isinstance(values, dict):
        raise KorloraError(f"config file {path} must contain a YAML mapping")
    return values


def _coerce(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """YAML reads ``5e-5`` (no dot) as a string: turn strings into the int/float a field expects."""
    hints = typing.get_type_hints(cls)
    out = dict(values)
    for name, value in values.items():
        if not isinstance(value, str):
            continue
        kinds = typing.get_args(hints[name]) or (hints[name],)
        for kind in (int, float):
            if kind in kinds and str not in kinds:
                try:
                    out[name] = kind(value)
                    break
                except ValueError:
                    pass
    return out


def _canonical(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    """YAML keys may use a flag's long aliases too (``num_epochs`` for ``num_train_epochs``)."""
    aliases = {a.lstrip("-").replace("-", "_"): f.name for f in dataclasses.fields(cls)
               for a in f.metadata.get("aliases", ()) if a.startswith("--")}
    return {aliases.get(k, k): v for k, v in values.items()}


def _check_keys(cls: type, values: dict[str, Any], where: str, allowed: set[str] | None = None) -> None:
    names = allowed if allowed is not None else {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise KorloraError(f"unknown {where} keys: {', '.join(unknown)} (known: {', '.join(sorted(names))})")


def resolve(cls: type[T], file_values: dict[str, Any] | None = None, flags: dict[str, Any] | None = None,
            base: Any = None) -> T:
    """Build ``cls`` from its defaults (``base`` or the dataclass's), a profile (if ``cls`` has
    ``profile_defaults``), file values and flags, in increasing precedence."""
    file_values, flags = _canonical(cls, file_values or {}), dict(flags or {})
    sections = _sections(cls)
    values = dataclasses.asdict(base) if base is not None else {}
    if base is not None:  # asdict recursed into sections: rebuild them below from their own defaults
        for name in sections:
            values.pop(name)
    if hasattr(cls, "profile_defaults"):
        profile = flags.get("profile", file_values.get("profile", values.get("profile")))
        values.update(cls.profile_defaults(profile))
    built = {}
    for name, section in sections.items():
        nested = file_values.pop(name, None) or {}
        if not isinstance(nested, dict):
            raise KorloraError(f"'{name}:' in the config file must be a mapping")
        nested = _canonical(section.cls, nested)
        allowed = {f.name for f in dataclasses.fields(section.cls)} - set(section.set_by_stage)
        _check_keys(section.cls, nested, f"'{name}:'", allowed)
        section_flags = {k: v for k, v in flags.items() if k in allowed and k not in
                         {f.name for f in dataclasses.fields(cls)}}
        built[name] = resolve(section.cls, nested, section_flags, base=section.defaults)
    own = {f.name for f in dataclasses.fields(cls)} - set(sections)
    _check_keys(cls, file_values, "config", own)
    values.update(_coerce(cls, file_values))
    values.update({k: v for k, v in flags.items() if k in own})
    return cls(**values, **built)


def parse_config(
    cls: type[T], argv: Sequence[str], prog: str = "korlora", description: str = "",
    positional: Sequence[str] = (),
) -> T:
    """Parse ``argv`` (flags, optional ``--config``) into an instance of the dataclass ``cls``."""
    argv = list(argv)
    if "--config" in argv and argv.index("--config") + 1 >= len(argv):
        raise KorloraError("--config needs a YAML file")
    build_parser(cls, prog, description, positional).parse_args(argv)  # --help, and errors with usage
    given = vars(build_parser(cls, prog, description, positional, explicit_only=True).parse_args(argv))
    config_path = given.pop("config", None)
    return resolve(cls, _read_yaml(config_path) if config_path else {}, given)


def load_config(cls: type[T], path: str | Path | None = None, **overrides: Any) -> T:
    """Build a stage config in code: YAML file (optional) first, then keyword overrides (as flags)."""
    names = {f.name for f in dataclasses.fields(cls)}
    for section in _sections(cls).values():
        names |= {f.name for f in dataclasses.fields(section.cls)} - set(section.set_by_stage)
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise KorloraError(f"unknown {cls.__name__} fields: {', '.join(unknown)}")
    return resolve(cls, _read_yaml(path) if path is not None else {}, overrides)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-friendly dict of a config (paths as strings; sections as nested dicts)."""
    def plain(value: Any) -> Any:
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value

    return {k: plain(v) for k, v in dataclasses.asdict(cfg).items()}
