"""The search space as YAML: ``name: {distribution: args}`` → Ray Tune sample domains."""

from __future__ import annotations

from typing import Any

DISTRIBUTIONS = {"loguniform": 2, "uniform": 2, "quniform": 3, "choice": None}
NAMES = ("learning_rate", "weight_original", "weight_no_warning", "weight_correction", "disclaimer_cap")


def check_space(space: dict[str, Any]) -> None:
    """Refuse unknown names and malformed entries with a message that says what is accepted."""
    for name, spec in space.items():
        if name not in NAMES:
            raise ValueError(f"search_space: unknown parameter {name!r} (known: {', '.join(NAMES)})")
        if not isinstance(spec, dict) or len(spec) != 1:
            raise ValueError(f"search_space.{name}: write one distribution, e.g. {{loguniform: [1.0e-5, 3.0e-4]}}")
        (kind, args), = spec.items()
        if kind not in DISTRIBUTIONS:
            raise ValueError(f"search_space.{name}: unknown distribution {kind!r} "
                             f"(known: {', '.join(DISTRIBUTIONS)})")
        if not isinstance(args, list) or not args:
            raise ValueError(f"search_space.{name}: {kind} takes a list of values")
        if DISTRIBUTIONS[kind] is not None and len(args) != DISTRIBUTIONS[kind]:
            raise ValueError(f"search_space.{name}: {kind} takes {DISTRIBUTIONS[kind]} values, not {len(args)}")
        if kind != "choice":
            low, high = float(args[0]), float(args[1])
            if not low < high:
                raise ValueError(f"search_space.{name}: the lower bound must be below the upper one")
            if kind == "loguniform" and low <= 0:
                raise ValueError(f"search_space.{name}: loguniform bounds must be positive")
        if name == "disclaimer_cap":
            values = [float(a) for a in (args if kind == "choice" else args[:2])]
            if min(values) < 0 or max(values) >= 1:
                raise ValueError("search_space.disclaimer_cap must lie in [0, 1)")


def to_tune(space: dict[str, dict]) -> dict[str, Any]:
    from ray import tune

    out = {}
    for name, spec in space.items():
        (kind, args), = spec.items()
        out[name] = tune.choice(list(args)) if kind == "choice" else getattr(tune, kind)(*map(float, args))
    return out


def center(spec: dict) -> Any:
    """A central value of a distribution: geometric mean (loguniform), midpoint, or the first choice."""
    (kind, args), = spec.items()
    if kind == "choice":
        return args[0]
    low, high = float(args[0]), float(args[1])
    return (low * high) ** 0.5 if kind == "loguniform" else (low + high) / 2


def complete_points(points: list[dict] | None, space: dict[str, dict]) -> list[dict] | None:
    """Points to evaluate first, each completed with the centre of every parameter it leaves out."""
    if not points:
        return None
    for point in points:
        unknown = sorted(set(point) - set(space))
        if unknown:
            raise ValueError(f"points_to_evaluate: unknown parameter(s) {', '.join(unknown)}")
    return [{name: point.get(name, center(spec)) for name, spec in space.items()} for point in points]
