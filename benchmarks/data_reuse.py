"""How often the relearn's training set repeats an answer, at the seed's sizes.

    python benchmarks/data_reuse.py                       # build 1500, no-warning 3000, correction 3500
    python benchmarks/data_reuse.py --out benchmarks/results_data_reuse.json

The relearn's merged set, made the way ``korlora relearn`` makes it from korlora's own data: ``data build``
(the original) → clean → rebalance, then no-warning and correction rows, then ``data merge`` (which drops
rows that repeat a row of an earlier source). Reports distinct assistant texts / assistant turns, the
largest and median number of times one text appears, and what the merge dropped.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path


def reuse(rows: list[dict]) -> dict:
    texts = Counter(m["content"] for r in rows for m in r["messages"] if m["role"] == "assistant")
    counts = sorted(texts.values())
    return {"rows": len(rows), "assistant_turns": sum(counts), "distinct_texts": len(counts),
            "max_reuse": counts[-1], "median_reuse": statistics.median(counts),
            "texts_over_3": sum(c > 3 for c in counts)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--build_rows", type=int, default=1500)
    p.add_argument("--no_warning_rows", type=int, default=3000)
    p.add_argument("--correction_rows", type=int, default=3500)
    p.add_argument("--workdir", default=None)
    p.add_argument("--out", default=None, help="write the results JSON here")
    args = p.parse_args(argv)

    from korlora.clean.config import CleanConfig, MergeConfig, RebalanceConfig
    from korlora.clean.merge import merge_command
    from korlora.clean.pipeline import clean_dataset
    from korlora.clean.rebalance import rebalance_dataset
    from korlora.data.build import build_dialogues
    from korlora.data.config import BuildConfig, CorrectionConfig, NoWarningConfig
    from korlora.data.correction import correction_command
    from korlora.data.no_warning import no_warning_command
    from korlora.io import load_jsonl_plain, write_jsonl

    work = Path(args.workdir or tempfile.mkdtemp(prefix="korlora-reuse-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    original = work / "original.jsonl"
    write_jsonl(original, build_dialogues(BuildConfig(output=str(original), num_rows=args.build_rows, report=False)))
    clean_dataset(CleanConfig(input=str(original), output=str(work / "cleaned.jsonl"), engine="local"))
    rebalance_dataset(RebalanceConfig(input=str(work / "cleaned.jsonl"), output=str(work / "rebalanced.jsonl"),
                                      engine="local"))
    no_warning_command(NoWarningConfig(output=str(work / "no_warning.jsonl"), num_rows=args.no_warning_rows,
                                       report=False))
    correction_command(CorrectionConfig(output=str(work / "correction.jsonl"), num_rows=args.correction_rows,
                                        report=False))
    sources = {name: work / f"{name}.jsonl" for name in ("rebalanced", "no_warning", "correction")}
    requested = sum(len(load_jsonl_plain(path)) for path in sources.values())
    merged = work / "merged.jsonl"
    merge_command(MergeConfig(input=[f"{name}={path}" for name, path in sources.items()], output=str(merged)))
    manifest = json.loads(Path(f"{merged}.manifest.json").read_text(encoding="utf-8"))
    rows = load_jsonl_plain(merged)
    unmerged = [r for path in sources.values() for r in load_jsonl_plain(path)]
    result = {
        "sizes": {"build": args.build_rows, "no_warning": args.no_warning_rows, "correction": args.correction_rows},
        "requested_rows": requested, "merged_rows": len(rows), "kept_share": len(rows) / requested,
        "dropped_by_merge": {name: {"exact": s.get("cross_source_duplicates", 0),
                                    "near": s.get("cross_source_near_duplicates", 0)}
                             for name, s in manifest["sources"].items()},
        "before_merge": reuse(unmerged), "merged": reuse(rows),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(result, ensure_ascii=False, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(result, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
