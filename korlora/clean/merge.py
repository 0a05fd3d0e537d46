"""``korlora data merge``: mix several datasets by weight into one training file, with a manifest.

The mix is one mapping ``weights: {name: weight}`` (the thing Ray Tune searches). Weights are the shares of
the output; without weights every row of every input is used once. Which rows are taken (and, with
``oversample``, repeated) and the output order depend only on ``seed``, each source's name and each row's
position in its file.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping
from pathlib import Path

from korlora.clean.config import MergeConfig
from korlora.clean.dedup import DEFAULT_THRESHOLD
from korlora.clean.imports import read_rows
from korlora.errors import KorloraError
from korlora.io import make_reject, sha256_file, write_json, write_jsonl
from korlora.schema import Reason


def _hash(*parts: object) -> int:
    text = "\x00".join(str(p) for p in parts)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def parse_input_spec(spec: str) -> tuple[str, str, float | None]:
    """``PATH``, ``PATH:WEIGHT``, ``NAME=PATH`` or ``NAME=PATH:WEIGHT`` → ``(name, path, weight)``."""
    name = None
    if "=" in spec:
        name, spec = spec.split("=", 1)
    path, weight = spec, None
    head, sep, tail = spec.rpartition(":")
    if sep and head:
        try:
            weight = float(tail)
            path = head
        except ValueError:
            pass
    if weight is not None and (weight < 0 or math.isnan(weight)):
        raise KorloraError(f"weight of {spec!r} must be a non-negative number")
    return (name or Path(path).stem), path, weight


def apportion(total: int, weights: Mapping[str, float]) -> dict[str, int]:
    """Split ``total`` by ``weights`` (largest remainder; ties by name): the quotas sum to ``total``."""
    wsum = sum(weights.values())
    raw = {k: total * w / wsum for k, w in weights.items()}
    quotas = {k: math.floor(v) for k, v in raw.items()}
    left = total - sum(quotas.values())
    for k in sorted(raw, key=lambda k: (-(raw[k] - quotas[k]), k))[:left]:
        quotas[k] += 1
    return quotas


def cross_source_duplicates(data: Mapping[str, list[dict]], threshold: float | None
                            ) -> dict[tuple[str, int], tuple[Reason, tuple[str, int], float]]:
    """Rows that repeat a row of an earlier source: ``{(source, index): (reason, (kept source, index), jaccard)}``.

    Sources are compared in the given order (the first keeps all its rows); duplicates inside one source are
    left to ``clean``. Exact: the same dedup form (spacing, punctuation and case aside). Near: character n-gram
    Jaccard of at least ``threshold``, by MinHash LSH verified exactly (``None``: exact only)."""
    from korlora.clean.dedup import dedup_text, exact_key, first_kept, near_duplicate_pairs

    flat = [(name, i) for name, rows in data.items() for i in range(len(rows))]
    texts = [dedup_text(data[name][i]) for name, i in flat]
    dropped: dict[tuple[str, int], tuple[Reason, tuple[str, int], float]] = {}
    first: dict[str, int] = {}
    for k, text in enumerate(texts):
        kept = first.setdefault(exact_key(text), k)
        if flat[kept][0] != flat[k][0]:
            dropped[flat[k]] = (Reason.CROSS_SOURCE_DUPLICATE, flat[kept], 1.0)
    if threshold is not None:
        pairs = [p for p in near_duplicate_pairs(texts, threshold)
                 if flat[p[0]][0] != flat[p[1]][0] and flat[p[0]] not in dropped and flat[p[1]] not in dropped]
        for k, (kept, score) in first_kept(len(flat), pairs).items():
            dropped[flat[k]] = (Reason.CROSS_SOURCE_NEAR_DUPLICATE, flat[kept], score)
    return dropped


def _merge(sources: Mapping[str, str | os.PathLike], weights: Mapping[str, float] | None, target_size: int | None,
           oversample: bool, seed: int, shuffle: bool, fmt: str,
           dedup: bool = True, near_dup_threshold: float | None = None) -> tuple[list[dict], dict, list[dict]]:
    if not sources:
        raise KorloraError("no sources to merge")
    if weights is not None:
        unknown = sorted(set(weights) - set(sources))
        if unknown:
            raise KorloraError(f"weights name unknown sources: {', '.join(unknown)} (sources: {', '.join(sources)})")
    data, lines, rejects, info = {}, {}, [], {}
    for name, path in sources.items():
        result = read_rows(path, fmt=fmt, max_chars=None)
        data[name], lines[name] = result.rows, result.line_numbers
        rejects += [{**r, "source": name} for r in result.rejects]
        info[name] = {"path": str(path), "sha256": sha256_file(path), "lines": result.lines,
                      "valid": len(result.rows), "rejected": len(result.rejects)}
    if dedup:
        duplicates = cross_source_duplicates(data, near_dup_threshold)
        for name in data:
            gone = {i for source, i in duplicates if source == name}
            for i in sorted(gone):
                reason, (kept, k), score = duplicates[name, i]
                rejects.append(make_reject(lines[name][i], reason, f"{kept} line {lines[kept][k]}"
                                           + (f", Jaccard {score:.2f}" if score < 1 else ""), data[name][i],
                                           source=name))
            data[name] = [row for i, row in enumerate(data[name]) if i not in gone]
            reasons = [duplicates[name, i][0] for i in gone]
            info[name].update(cross_source_duplicates=reasons.count(Reason.CROSS_SOURCE_DUPLICATE),
                              cross_source_near_duplicates=reasons.count(Reason.CROSS_SOURCE_NEAR_DUPLICATE))
    sizes = {name: len(rows) for name, rows in data.items()}
    if weights is None:
        if target_size is not None:
            raise KorloraError("target_size needs weights (the shares of the output)")
        mix = {name: 1.0 for name in sources}
        quotas = dict(sizes)
    else:
        mix = {name: float(weights.get(name, 1.0)) for name in sources}
        if sum(mix.values()) <= 0:
            raise KorloraError("the weights sum to zero")
        active = {k: w for k, w in mix.items() if w > 0}
        if target_size is None:
            if oversample:
                raise KorloraError("oversample needs target_size")
            wsum = sum(active.values())
            target_size = min(math.floor(sizes[k] * wsum / w + 1e-9) for k, w in active.items())
        quotas = {k: 0 for k in sources} | apportion(target_size, active)
    picked: list[tuple[tuple, dict]] = []
    for position, (name, rows) in enumerate(data.items()):
        want, n = quotas[name], len(rows)
        take = want if oversample else min(want, n)
        if take and not n:
            raise KorloraError(f"source {name!r} has no valid rows but its weight asks for {want}")
        copies, rest = divmod(take, n) if n else (0, 0)
        chosen = set(sorted(range(n), key=lambda i: (_hash(seed, "pick", name, i), i))[:rest]) if rest else set()
        for i, row in enumerate(rows):
            row = row if row.get("source") else {**row, "source": name}
            for copy in range(copies + (i in chosen)):
                order = (_hash(seed, "order", name, i, copy),) if shuffle else (position, copy, i)
                picked.append((order, row))
        info[name].update(weight=mix[name], quota=want, selected=take, short_by=max(0, want - take),
                          max_copies=copies + (1 if rest else 0))
    picked.sort(key=lambda p: p[0])
    rows = [row for _, row in picked]
    for name in info:
        info[name]["share"] = info[name]["selected"] / len(rows) if rows else 0.0
    manifest = {"sources": info, "weights": mix if weights is not None else None, "target_size": target_size,
                "oversample": oversample, "seed": seed, "shuffle": shuffle, "rows": len(rows),
                "counts": {name: info[name]["selected"] for name in info}}
    return rows, manifest, rejects


def merge_sources(sources: Mapping[str, str | os.PathLike], weights: Mapping[str, float] | None = None,
                  target_size: int | None = None, oversample: bool = False, seed: int = 42, shuffle: bool = True,
                  fmt: str = "auto", dedup: bool = True, near_dup_threshold: float | None = DEFAULT_THRESHOLD
                  ) -> tuple[list[dict], dict]:
    """Mix ``sources`` (name → file) by ``weights`` (name → share; missing names weigh 1.0).

    Without weights every valid row is used once. With weights the output has ``target_size`` rows (default:
    the most that need no repeats), split by weight; a source that has fewer rows than its share is repeated
    when ``oversample`` is on, else it gives what it has (``short_by`` in the manifest). With ``dedup``, rows
    that repeat a row of an earlier source (exactly, or near: ``near_dup_threshold``) are dropped first, with
    their counts in the manifest. Returns the rows
    and a manifest (per-source sha256, counts, weights, seed); every row carries a ``source``.
    """
    rows, manifest, _ = _merge(sources, weights, target_size, oversample, seed, shuffle, fmt, dedup,
                               near_dup_threshold)
    return rows, manifest


def merge_command(cfg: MergeConfig) -> int:
    specs = [parse_input_spec(s) for s in cfg.input]
    names = [name for name, _, _ in specs]
    if len(set(names)) != len(names):
        raise KorloraError(f"two inputs share a name ({', '.join(names)}); write them as NAME=PATH")
    weights = {name: w for name, _, w in specs if w is not None}
    weights.update(cfg.weights or {})
    rows, manifest, rejects = _merge({name: path for name, path, _ in specs}, weights or None, cfg.target_size,
                                     cfg.oversample, cfg.seed, cfg.shuffle, cfg.format, cfg.dedup,
                                     cfg.near_dup_threshold if cfg.near_dup else None)
    write_jsonl(cfg.output, rows)
    if rejects:
        write_jsonl(cfg.rejects, rejects)
    manifest["output"] = {"path": cfg.output, "sha256": sha256_file(cfg.output), "rows": len(rows)}
    manifest["rejects"] = cfg.rejects if rejects else None
    write_json(cfg.manifest, manifest)
    print(f"merge: {len(rows)} rows from {len(specs)} sources (seed {cfg.seed})")
    for name, s in manifest["sources"].items():
        short = f", short by {s['short_by']}" if s["short_by"] else ""
        print(f"  {name:<28} {s['selected']:>7} of {s['valid']:<7} share {s['share']:.1%}"
              f"  weight {s['weight']:g}{short}" + (f"  rejected {s['rejected']}" if s["rejected"] else ""))
        dup, near = s.get("cross_source_duplicates", 0), s.get("cross_source_near_duplicates", 0)
        if dup or near:
            print(f"  {'':<28} dropped as repeats of an earlier input: {dup} exact, {near} near")
    print(f"wrote {cfg.output}, {cfg.manifest}")
    return 0
