"""Rendering row specs on Ray Data.

Specs travel as JSON strings and rows come back as JSON strings, so blocks stay flat Arrow columns. Each
row depends only on its spec, and the result is sorted by id: the output is byte-identical for any number
of blocks or workers.
"""

from __future__ import annotations

import importlib
import json

import numpy as np


def _renderer(ref: str):
    module, name = ref.split(":")
    return getattr(importlib.import_module(module), name)


def render_batch(batch: dict[str, np.ndarray], renderer: str) -> dict[str, list[str]]:
    from korlora.data.compose import items_by_id

    render, items = _renderer(renderer), items_by_id()
    out: dict[str, list[str]] = {"row": [], "extra": []}
    for spec in batch["spec"]:
        result = render(json.loads(spec), items)
        row, extra = result if isinstance(result, tuple) else (result, None)
        out["row"].append(json.dumps(row, ensure_ascii=False))
        out["extra"].append(json.dumps(extra, ensure_ascii=False) if extra is not None else "")
    return out


def render_specs(specs: list[dict], renderer: str, num_blocks: int | None = None) -> tuple[list[dict], list[dict]]:
    """Render ``specs`` with ``renderer`` ("module:function") across Ray workers.

    Returns ``(rows, extras)`` sorted by row id; ``extras`` holds the second value of renderers that return
    a pair (e.g. DPO pairs), else it is empty.
    """
    import ray

    from korlora.raycompat import init_local_ray

    init_local_ray()
    blocks = num_blocks or max(1, min(16, len(specs) // 250))
    ds = ray.data.from_items([{"spec": json.dumps(s, ensure_ascii=False)} for s in specs],
                             override_num_blocks=blocks)
    ds = ds.map_batches(render_batch, fn_kwargs={"renderer": renderer}, batch_size=128)
    results = [(json.loads(r["row"]), json.loads(r["extra"]) if r["extra"] else None) for r in ds.iter_rows()]
    results.sort(key=lambda pair: pair[0]["id"])
    return [row for row, _ in results], [extra for _, extra in results if extra is not None]
