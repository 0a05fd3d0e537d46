"""The registry gate: an adapter becomes ``champion`` only when its ``korlora eval`` results pass every
threshold of :class:`~korlora.eval.config.GateConfig` and score higher than the current champion's."""

from __future__ import annotations

from korlora.eval.config import GateConfig

# the shares that should be high and those that should be low; the score is their difference of means
GOOD = ("korean_share", "hangul_start_share", "stop_share", "register_match_share")
BAD = ("disclaimer_start_share", "noise_start_share", "repetition_share", "code_switch_share")


def noise_start_share(overall: dict) -> float:
    return sum(overall.get(k, 0.0) for k in ("punct_start_share", "invisible_start_share", "role_tag_start_share"))


def score(overall: dict) -> float:
    """Higher is better: mean of :data:`GOOD` minus mean of :data:`BAD` (shares in [0, 1])."""
    values = {**overall, "noise_start_share": noise_start_share(overall)}
    good = [values.get(k) or 0.0 for k in GOOD]
    bad = [values.get(k) or 0.0 for k in BAD]
    return sum(good) / len(good) - sum(bad) / len(bad)


def failures(overall: dict, gate: GateConfig) -> list[str]:
    """The thresholds ``overall`` misses, in words (empty: it passes)."""
    checks = [("Korean answers", overall["korean_share"], ">=", gate.min_korean_share),
              ("disclaimer starts", overall["disclaimer_start_share"], "<=", gate.max_disclaimer_start_share),
              ("noise starts", noise_start_share(overall), "<=", gate.max_noise_start_share),
              ("answers that stop", overall["stop_share"], ">=", gate.min_stop_share)]
    return [f"{name} {value:.1%} (needs {op} {limit:.0%})" for name, value, op, limit in checks
            if (value < limit if op == ">=" else value > limit)]


def decide(overall: dict, gate: GateConfig, champion_score: float | None) -> dict:
    """``{"passed", "failures", "score", "champion_score", "beats_champion", "promote"}``."""
    missed = failures(overall, gate)
    mine = score(overall)
    beats = champion_score is None or mine > champion_score
    return {"passed": not missed, "failures": missed, "score": mine, "champion_score": champion_score,
            "beats_champion": beats, "promote": not missed and beats}
