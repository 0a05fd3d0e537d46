"""``korlora data clean`` and ``korlora data check`` on Ray Data.

The driver reads the records with their line numbers, Ray Data runs the per-row gates
(:func:`korlora.clean.gates.gate_batch`) in ``map_batches``, and the driver then decides exact and near
duplicates in input-line order, so the first occurrence is kept whatever the block layout. Every non-blank
input line ends up kept or dropped with a reason: ``kept + dropped == lines``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable

import numpy as np
from tqdm import tqdm

from korlora.clean.config import CheckConfig, CleanConfig
from korlora.clean.dedup import (
    DEFAULT_THRESHOLD,
    MinHasher,
    candidate_pairs,
    dedup_form,
    dedup_text,
    estimate_margin,
    first_kept,
    verify_pairs,
)
from korlora.clean.gates import GateOptions, gate_batch, gate_rows
from korlora.clean.imports import iter_records
from korlora.config import to_dict
from korlora.io import escape_raw, make_reject, write_json, write_jsonl
from korlora.schema import Reason

BATCH_SIZE = 256


def default_blocks(n: int) -> int:
    """Enough blocks to keep two cores busy and show progress, few enough to keep overhead low."""
    return max(1, min(32, n // 2000))


def _local_gates(records: list[tuple[int, bytes]], opts: GateOptions, batch_size: int) -> list[dict]:
    results: list[dict] = []
    for start in tqdm(range(0, len(records), batch_size), desc="gates", unit="batch", disable=len(records) < 5000):
        results += gate_rows(records[start: start + batch_size], opts)
    return results


def _ray_gates(records: list[tuple[int, bytes]], opts: GateOptions, num_blocks: int | None, batch_size: int,
               num_cpus: int | None) -> list[dict]:
    import ray

    from korlora.raycompat import configure_data_context, init_local_ray

    init_local_ray(num_cpus)
    configure_data_context()
    ds = ray.data.from_items([{"line": n, "raw": raw} for n, raw in records],
                             override_num_blocks=num_blocks or default_blocks(len(records)))
    ds = ds.map_batches(gate_batch, fn_kwargs={"opts": opts}, batch_size=batch_size, batch_format="numpy")
    results = []
    for batch in ds.iter_batches(batch_size=4096, batch_format="numpy"):
        for text, sig in zip(batch["result"], batch["sig"], strict=True):
            result = json.loads(text)
            result["sig"] = bytes(sig)
            results.append(result)
    return results


def run_gates(records: list[tuple[int, bytes]], opts: GateOptions, engine: str = "ray",
              num_blocks: int | None = None, batch_size: int = BATCH_SIZE, num_cpus: int | None = None) -> list[dict]:
    """Per-row verdicts for ``records``, sorted by line. ``engine="local"`` runs the same functions in this
    process (the single-process baseline)."""
    if not records:
        return []
    if engine == "local":
        results = _local_gates(records, opts, batch_size)
    else:
        results = _ray_gates(records, opts, num_blocks, batch_size, num_cpus)
    results.sort(key=lambda r: r["line"])
    return results


def decide_duplicates(results: list[dict], exact: bool = True, near: bool = True, threshold: float = DEFAULT_THRESHOLD,
                      hasher: MinHasher | None = None) -> dict[str, float]:
    """Mark later copies among the rows that passed the per-row gates (``results`` in line order):
    ``duplicate`` for the same dedup key, ``near_duplicate`` for verified n-gram Jaccard ≥ ``threshold``
    with an earlier kept row. Returns timings."""
    t0 = time.perf_counter()
    alive = [r for r in results if not r["reasons"]]
    if exact:
        first: dict[str, int] = {}
        for r in alive:
            if r["key"] in first:
                r["reasons"].append(str(Reason.DUPLICATE))
                r["details"].append(f"same normalised text as line {first[r['key']]}")
            else:
                first[r["key"]] = r["line"]
        alive = [r for r in alive if not r["reasons"]]
    t1 = time.perf_counter()
    if near and len(alive) > 1:
        hasher = hasher or MinHasher()
        sigs = np.frombuffer(b"".join(r["sig"] for r in alive), dtype=np.uint32).reshape(len(alive), -1)
        pairs = candidate_pairs(hasher.band_keys(sigs), signatures=sigs,
                                min_estimate=threshold - estimate_margin(threshold, hasher.num_perm))
        forms: dict[int, str] = {}
        for i in np.unique(pairs).tolist():
            forms[i] = dedup_form(dedup_text(alive[i]["row"]))
        verified = verify_pairs(forms, pairs, threshold, hasher.ngram, progress=len(pairs) > 100_000)
        verified.sort(key=lambda p: (p[1], p[0]))
        for j, (i, score) in first_kept(len(alive), verified).items():
            alive[j]["reasons"].append(str(Reason.NEAR_DUPLICATE))
            alive[j]["details"].append(f"n-gram Jaccard {score:.2f} with line {alive[i]['line']}")
    return {"exact_s": t1 - t0, "near_s": time.perf_counter() - t1}


def summarize(results: Iterable[dict], lines: int) -> dict:
    """Counts in, kept, repaired and dropped per reason (first reason of each dropped row)."""
    kept = repaired = disclaimers = 0
    dropped: Counter = Counter()
    for r in results:
        if r["reasons"]:
            dropped[r["reasons"][0]] += 1
        else:
            kept += 1
            repaired += "repaired" in r["tags"]
            disclaimers += "disclaimer" in r["tags"]
    order = {str(reason): i for i, reason in enumerate(Reason)}
    total = sum(dropped.values())
    if kept + total != lines:
        raise AssertionError(f"accounting error: kept {kept} + dropped {total} != {lines} input lines")
    return {"lines": lines, "kept": kept, "repaired": repaired, "dropped_total": total,
            "dropped": dict(sorted(dropped.items(), key=lambda kv: order.get(kv[0], 99))),
            "kept_with_disclaimer": disclaimers}


def print_summary(title: str, summary: dict) -> None:
    print(f"{title}: lines {summary['lines']}  kept {summary['kept']}  repaired {summary['repaired']}  "
          f"dropped {summary['dropped_total']}  ({summary['elapsed_s']:.1f} s, {summary['rows_per_s']:.0f} rows/s)")
    for reason, n in summary["dropped"].items():
        print(f"  {reason:<20} {n}")


def gate_file(cfg: CleanConfig | CheckConfig, all_reasons: bool) -> tuple[list[dict], dict[int, bytes], dict]:
    """Read ``cfg.input``, run the gates and dedup; returns results (line order), raw records and timings."""
    t0 = time.perf_counter()
    records = list(iter_records(cfg.input))
    opts = GateOptions.from_config(cfg, all_reasons=all_reasons)
    results = run_gates(records, opts, cfg.engine, cfg.num_blocks, num_cpus=cfg.num_cpus)
    t1 = time.perf_counter()
    hasher = MinHasher(num_perm=cfg.num_perm, bands=cfg.bands, ngram=cfg.ngram)
    timings = decide_duplicates(results, cfg.dedup, cfg.near_dup, cfg.near_dup_threshold, hasher)
    timings.update(read_and_gates_s=t1 - t0, elapsed_s=time.perf_counter() - t0)
    return results, dict(records), timings


def _finish_summary(summary: dict, cfg, timings: dict) -> dict:
    summary["elapsed_s"] = round(timings["elapsed_s"], 3)
    summary["rows_per_s"] = summary["lines"] / timings["elapsed_s"] if timings["elapsed_s"] else 0.0
    summary["timings_s"] = {k: round(v, 3) for k, v in timings.items()}
    summary["config"] = to_dict(cfg)
    return summary


def clean_dataset(cfg: CleanConfig) -> dict:
    """Clean ``cfg.input`` into ``cfg.output`` (+ rejects and summary files); returns the summary."""
    results, raws, timings = gate_file(cfg, all_reasons=False)
    kept = [r["row"] for r in results if not r["reasons"]]
    rejects = [make_reject(r["line"], r["reasons"][0], r["details"][0], escape_raw(raws[r["line"]]),
                           **({"id": r["id"]} if r["id"] is not None else {}))
               for r in results if r["reasons"]]
    write_jsonl(cfg.output, kept)
    write_jsonl(cfg.rejects, rejects)
    summary = _finish_summary(summarize(results, len(raws)), cfg, timings)
    summary.update(input=cfg.input, output=cfg.output, rejects=cfg.rejects)
    write_json(cfg.summary, summary)
    return summary


def verdict(result: dict) -> dict:
    """One line of a check report."""
    return {"line": result["line"], "id": result["id"], "verdict": "drop" if result["reasons"] else "keep",
            "reasons": result["reasons"], "tags": result["tags"], "details": result["details"]}


def check_dataset(cfg: CheckConfig) -> dict:
    """Write one verdict per input record to ``cfg.report``; returns the summary."""
    results, raws, timings = gate_file(cfg, all_reasons=True)
    write_jsonl(cfg.report, (verdict(r) for r in results))
    summary = _finish_summary(summarize(results, len(raws)), cfg, timings)
    summary["reasons_any"] = dict(Counter(reason for r in results for reason in r["reasons"]))
    summary.update(input=cfg.input, report=cfg.report)
    write_json(cfg.summary, summary)
    return summary


def clean_command(cfg: CleanConfig) -> int:
    summary = clean_dataset(cfg)
    print_summary("clean", summary)
    print(f"wrote {cfg.output} ({summary['kept']} rows), {cfg.rejects}, {cfg.summary}")
    return 0


def check_command(cfg: CheckConfig) -> int:
    summary = check_dataset(cfg)
    print_summary("check", summary)
    print(f"wrote {cfg.report}, {cfg.summary}")
    return 0
