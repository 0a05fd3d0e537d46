"""How often the cleaning gates agree with an editor's labels on real model answers to Korean questions.

Reads ``benchmarks/real_answers/answers.jsonl`` (labels: ``language`` ko/foreign, ``register``
consistent/mixed/n/a), runs :func:`korlora.clean.gates.gate_rows` on each question/answer pair and prints four
figures:

- consistent-register Korean answers called ``mixed_speech_level`` (every gate judged: ``all_reasons``);
- Korean answers called ``non_korean``;
- foreign-language answers whose (first) reason is ``non_korean``, as ``korlora clean`` records it;
- mixed-register answers caught as ``mixed_speech_level`` (every gate judged).

Usage: ``python benchmarks/gate_agreement.py [--out benchmarks/results_gate_agreement.json]``. To measure another
version of the gates, put its ``korlora`` package first on ``PYTHONPATH``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from korlora.clean.gates import GateOptions, gate_rows

HERE = Path(__file__).resolve().parent
DEFAULT_SET = HERE / "real_answers" / "answers.jsonl"
DEFAULT_OUT = HERE / "results_gate_agreement.json"
MIXED, NON_KOREAN = "mixed_speech_level", "non_korean"


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def verdicts(items: list[dict], all_reasons: bool) -> list[list[str]]:
    """The gates' reasons for each item (empty when kept)."""
    records = []
    for line, item in enumerate(items, start=1):
        row = {"id": item["id"], "messages": [{"role": "user", "content": item["question"]},
                                              {"role": "assistant", "content": item["answer"]}]}
        records.append((line, json.dumps(row, ensure_ascii=False).encode()))
    opts = GateOptions(max_chars=None, all_reasons=all_reasons, dedup_keys=False)
    return [r["reasons"] for r in gate_rows(records, opts)]


def figure(name: str, hits: list[str], total: int, target: str) -> dict:
    share = len(hits) / total if total else 0.0
    print(f"{name:<44} {len(hits):>3}/{total:<3} = {share:6.1%}   (target {target})")
    return {"count": len(hits), "total": total, "share": round(share, 4), "target": target, "ids": hits}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", type=Path, default=DEFAULT_SET)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    items = load(args.set)
    start = time.perf_counter()
    first = verdicts(items, all_reasons=False)
    every = verdicts(items, all_reasons=True)
    seconds = time.perf_counter() - start

    korean = [(it, f, e) for it, f, e in zip(items, first, every, strict=True) if it["language"] == "ko"]
    foreign = [(it, f) for it, f in zip(items, first, strict=True) if it["language"] == "foreign"]
    consistent = [(it, e) for it, _, e in korean if it["register"] == "consistent"]
    mixed = [(it, e) for it, _, e in korean if it["register"] == "mixed"]

    print(f"{len(items)} answers: {len(korean)} Korean ({len(consistent)} consistent, {len(mixed)} mixed), "
          f"{len(foreign)} foreign")
    figures = {
        "consistent_called_mixed": figure("consistent register called mixed", [
            it["id"] for it, e in consistent if MIXED in e], len(consistent), "<= 2%"),
        "korean_called_non_korean": figure("Korean answers called non_korean", [
            it["id"] for it, f, e in korean if NON_KOREAN in f or NON_KOREAN in e], len(korean), "<= 1%"),
        "foreign_coded_non_korean": figure("foreign answers coded non_korean", [
            it["id"] for it, f in foreign if f[:1] == [NON_KOREAN]], len(foreign), ">= 95%"),
        "mixed_caught": figure("mixed register caught", [
            it["id"] for it, e in mixed if MIXED in e], len(mixed), ">= 85%"),
    }
    other = {it["id"]: f for it, f in foreign if f[:1] != [NON_KOREAN]}
    result = {
        "set": str(args.set.relative_to(HERE.parent) if args.set.is_relative_to(HERE.parent) else args.set),
        "answers": len(items),
        "labels": {"ko_consistent": len(consistent), "ko_mixed": len(mixed), "foreign": len(foreign)},
        "figures": figures,
        "foreign_other_reasons": other,
        "seconds": round(seconds, 1),
        "python": platform.python_version(),
    }
    args.out.write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
