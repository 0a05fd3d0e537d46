"""``korlora data rebalance``: cap the share of disclaimer-style rows.

Rows are flagged by the disclaimer family detector (:mod:`korlora.clean.disclaimer`) in Ray Data
``map_batches``; the driver then keeps the disclaimer rows with the smallest ``hash(seed, key)`` up to the
cap. The key is a row's ``id`` (or a hash of its text), so the same rows stay at any parallelism and in any
input order.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Sequence

import numpy as np

from korlora.clean.config import RebalanceConfig
from korlora.clean.dedup import dedup_text, exact_key
from korlora.clean.disclaimer import disclaimer_spans
from korlora.io import escape_raw, iter_lines, make_reject, parse_line, write_json, write_jsonl
from korlora.schema import Reason


def stable_key(row: dict, key: str = "id") -> str:
    """The row's ``key`` field, or a hash of its user/assistant text when it has none."""
    value = row.get(key)
    return f"{key}:{value}" if value is not None else f"text:{exact_key(dedup_text(row))}"


def selection_hash(seed: int, key: str) -> int:
    return int.from_bytes(hashlib.blake2b(f"{seed}\x00{key}".encode(), digest_size=8).digest(), "big")


def disclaimer_cap(other_rows: int, max_ratio: float) -> int:
    """The most disclaimer rows ``k`` with ``k / (other_rows + k) <= max_ratio``."""
    if max_ratio <= 0:
        return 0
    k = int(max_ratio * other_rows / (1 - max_ratio))
    while (k + 1) <= max_ratio * (other_rows + k + 1):
        k += 1
    while k > 0 and k > max_ratio * (other_rows + k):
        k -= 1
    return k


def row_disclaimer_patterns(row: dict) -> list[str]:
    """Names of the disclaimer patterns found in the assistant messages of ``row``."""
    return [name for m in row["messages"] if m["role"] == "assistant" for _, _, name in disclaimer_spans(m["content"])]


def select_rows(flags: Sequence[bool], hashes: Sequence[int], max_ratio: float) -> tuple[list[int], list[int]]:
    """Indices to keep (all non-disclaimer rows and the disclaimer rows with the smallest hashes, up to the
    cap) and indices dropped; both ascending. Ties of equal hashes go to the earlier index."""
    disclaimers = [i for i, flag in enumerate(flags) if flag]
    cap = disclaimer_cap(len(flags) - len(disclaimers), max_ratio)
    chosen = set(sorted(disclaimers, key=lambda i: (hashes[i], i))[:cap])
    dropped = [i for i in disclaimers if i not in chosen]
    dropped_set = set(dropped)
    return [i for i in range(len(flags)) if i not in dropped_set], dropped


def rebalance_rows(rows: Sequence[dict], max_ratio: float, seed: int = 0, key: str = "id") -> tuple[list[dict], dict]:
    """Library form: ``(kept rows in input order, stats)``."""
    flags = [bool(row_disclaimer_patterns(r)) for r in rows]
    hashes = [selection_hash(seed, stable_key(r, key)) for r in rows]
    keep, dropped = select_rows(flags, hashes, max_ratio)
    return [rows[i] for i in keep], share_stats(flags, keep, max_ratio)


def share_stats(flags: Sequence[bool], keep: Sequence[int], max_ratio: float) -> dict:
    before = sum(flags)
    after = sum(flags[i] for i in keep)
    return {"max_ratio": max_ratio,
            "before": {"rows": len(flags), "disclaimer_rows": before, "share": before / len(flags) if flags else 0.0},
            "after": {"rows": len(keep), "disclaimer_rows": after, "share": after / len(keep) if keep else 0.0}}


def flag_batch(batch: dict[str, np.ndarray], seed: int, key: str) -> dict[str, list]:
    """``map_batches``: parse each line, flag disclaimers and hash the stable key."""
    out: dict[str, list] = {"line": [], "result": []}
    for line, raw in zip(batch["line"].tolist(), batch["raw"], strict=True):
        row, reject = parse_line(int(line), bytes(raw), max_chars=None)
        if reject is not None:
            result = {"reject": [reject["reason"], reject["detail"]]}
        else:
            result = {"patterns": row_disclaimer_patterns(row), "hash": selection_hash(seed, stable_key(row, key)),
                      "row": row}
        out["line"].append(int(line))
        out["result"].append(json.dumps(result, ensure_ascii=False))
    return out


def _flag_all(records: list[tuple[int, bytes]], cfg: RebalanceConfig) -> list[tuple[int, dict]]:
    if not records:
        return []
    columns = {"line": np.array([n for n, _ in records]), "raw": np.array([r for _, r in records], dtype=object)}
    if cfg.engine == "local":
        out = flag_batch(columns, cfg.seed, cfg.key)
        pairs = list(zip(out["line"], out["result"], strict=True))
    else:
        import ray

        from korlora.clean.pipeline import default_blocks
        from korlora.raycompat import configure_data_context, init_local_ray

        init_local_ray(cfg.num_cpus)
        configure_data_context()
        ds = ray.data.from_items([{"line": n, "raw": raw} for n, raw in records],
                                 override_num_blocks=cfg.num_blocks or default_blocks(len(records)))
        ds = ds.map_batches(flag_batch, fn_kwargs={"seed": cfg.seed, "key": cfg.key}, batch_size=512,
                            batch_format="numpy")
        pairs = [(int(r["line"]), r["result"]) for r in ds.iter_rows()]
    return sorted(((line, json.loads(text)) for line, text in pairs), key=lambda p: p[0])


def rebalance_dataset(cfg: RebalanceConfig) -> dict:
    """Write ``cfg.output`` (rows kept, input order), rejects and the before/after stats; return the stats."""
    t0 = time.perf_counter()
    records = list(iter_lines(cfg.input))
    raws = dict(records)
    flagged = _flag_all(records, cfg)
    valid = [(line, r) for line, r in flagged if "reject" not in r]
    flags = [bool(r["patterns"]) for _, r in valid]
    keep, dropped = select_rows(flags, [r["hash"] for _, r in valid], cfg.max_ratio)
    rejects = [make_reject(line, r["reject"][0], r["reject"][1], escape_raw(raws[line]))
               for line, r in flagged if "reject" in r]
    for i in dropped:
        line, r = valid[i]
        extra = {"id": r["row"]["id"]} if r["row"].get("id") is not None else {}
        rejects.append(make_reject(line, Reason.DISCLAIMER_OVER_CAP, f"patterns: {', '.join(r['patterns'])}",
                                   escape_raw(raws[line]), **extra))
    rejects.sort(key=lambda x: x["line"])
    write_jsonl(cfg.output, (valid[i][1]["row"] for i in keep))
    write_jsonl(cfg.rejects, rejects)
    stats = share_stats(flags, keep, cfg.max_ratio)
    stats.update(lines=len(records), invalid=len(rejects) - len(dropped), dropped_disclaimers=len(dropped),
                 kept=len(keep), seed=cfg.seed, key=cfg.key, input=cfg.input, output=cfg.output,
                 patterns=dict(Counter(p for _, r in valid for p in set(r["patterns"]))),
                 elapsed_s=round(time.perf_counter() - t0, 3))
    if stats["kept"] + len(rejects) != stats["lines"]:
        raise AssertionError("accounting error in rebalance")
    write_json(cfg.stats, stats)
    return stats


def rebalance_command(cfg: RebalanceConfig) -> int:
    stats = rebalance_dataset(cfg)
    b, a = stats["before"], stats["after"]
    print(f"rebalance: disclaimer rows {b['disclaimer_rows']}/{b['rows']} ({b['share']:.1%}) → "
          f"{a['disclaimer_rows']}/{a['rows']} ({a['share']:.1%}), cap {cfg.max_ratio:.1%}")
    if stats["invalid"]:
        print(f"  invalid lines: {stats['invalid']} (see {cfg.rejects})")
    print(f"wrote {cfg.output} ({stats['kept']} rows), {cfg.rejects}, {cfg.stats}")
    return 0
