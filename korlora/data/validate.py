"""``korlora data validate``: the schema check on its own."""

from __future__ import annotations

from collections import Counter

from korlora.data.config import ValidateConfig
from korlora.io import read_jsonl, write_jsonl


def validate_command(cfg: ValidateConfig) -> int:
    result = read_jsonl(cfg.input, max_chars=cfg.max_chars)
    if cfg.output:
        write_jsonl(cfg.output, result.rows)
    rejects_path = cfg.rejects or (f"{cfg.output}.rejects.jsonl" if cfg.output else None)
    if rejects_path:
        write_jsonl(rejects_path, result.rejects)
    print(f"lines: {result.lines}  valid: {len(result.rows)}  rejected: {len(result.rejects)}")
    for reason, n in Counter(r["reason"] for r in result.rejects).most_common():
        print(f"  {reason}: {n}")
    return 0 if not result.rejects else 1
