"""Recall and precision of the disclaimer detector on held-out sentences.

The held-out list (benchmarks/disclaimers_heldout.yaml) is never used by the generators or by the detector's
own family list. Each sentence is also tried inside an ordinary answer, at its start and at its end, since
collapsed models put disclaimers in either place.

    python benchmarks/disclaimer_detector.py                 # print the scores
    python benchmarks/disclaimer_detector.py --label after   # and store them under "after" in the results
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from korlora.clean.disclaimer import is_disclaimer

HERE = Path(__file__).parent
HELDOUT = HERE / "disclaimers_heldout.yaml"
RESULTS = HERE / "results_disclaimer_detector.json"
BODY = "적금은 만기까지 유지하면 약정한 이자를 모두 받을 수 있어요."


def contexts(sentence: str) -> dict[str, str]:
    return {"alone": sentence, "opening": f"{sentence} {BODY}", "closing": f"{BODY} {sentence}"}


def score(positives: list[str], negatives: list[str]) -> dict:
    out: dict = {"positives": len(positives), "negatives": len(negatives), "by_context": {}}
    for ctx in ("alone", "opening", "closing"):
        tp = sum(is_disclaimer(contexts(s)[ctx]) for s in positives)
        fp = sum(is_disclaimer(contexts(s)[ctx]) for s in negatives)
        out["by_context"][ctx] = {
            "recall": round(tp / len(positives), 4),
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "true_positives": tp, "false_positives": fp}
    out["recall"] = out["by_context"]["alone"]["recall"]
    out["precision"] = out["by_context"]["alone"]["precision"]
    out["missed"] = [s for s in positives if not is_disclaimer(s)]
    out["false_alarms"] = [s for s in negatives if is_disclaimer(s)]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", help="store the scores under this key of the results file (e.g. before, after)")
    parser.add_argument("--note", default="", help="a line stored with the scores")
    args = parser.parse_args(argv)
    data = yaml.safe_load(HELDOUT.read_text(encoding="utf-8"))
    result = score(data["disclaimers"], data["not_disclaimers"])
    result["note"] = args.note
    for ctx, s in result["by_context"].items():
        print(f"{ctx:8s} recall {s['recall']:.1%}  precision "
              f"{'n/a' if s['precision'] is None else format(s['precision'], '.1%')}  "
              f"(TP {s['true_positives']}/{result['positives']}, FP {s['false_positives']}/{result['negatives']})")
    print(f"missed: {len(result['missed'])}  false alarms: {len(result['false_alarms'])}")
    for s in result["false_alarms"]:
        print("  false alarm:", s)
    if args.label:
        stored = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
        stored["heldout"] = str(HELDOUT.relative_to(HERE.parent))
        stored[args.label] = result
        RESULTS.write_text(json.dumps(stored, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {RESULTS} [{args.label}]")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
