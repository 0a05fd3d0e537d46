"""``korlora demo``: reproduce the start-pattern collapse on ``tiny-ko``, then fix it with ``relearn``."""

from __future__ import annotations

import dataclasses
import hashlib
import random
import time
from pathlib import Path

from korlora.config import to_dict
from korlora.io import write_json, write_jsonl
from korlora.relearn.config import DemoConfig, RelearnConfig


def _fraction(seed: int, key: str) -> float:
    return int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def make_legacy(rows: list[dict], disclaimer_share: float, punct_share: float, seed: int) -> list[dict]:
    """A copy of ``rows`` as data collected before cleaning would look: answers that open with a
    disclaimer or with stray punctuation/role tags. Which rows, by a hash of their id."""
    from korlora.data.correction import break_start

    legacy = []
    for row in rows:
        u = _fraction(seed, str(row["id"]))
        kinds = ("disclaimer",) if u < disclaimer_share else (
            ("punct", "role_tag", "blank") if u < disclaimer_share + punct_share else None)
        if kinds is None:
            legacy.append(row)
            continue
        rng = random.Random(f"{seed}:legacy:{row['id']}")
        messages = [dict(m) for m in row["messages"]]
        for m in messages:
            if m["role"] == "assistant":
                m["content"], kind = break_start(m["content"], rng, kinds)
        legacy.append({**row, "messages": messages, "source": "legacy", "tags": [*row.get("tags", []), kind]})
    return legacy


def demo_command(cfg: DemoConfig) -> int:
    from korlora.data.build import build_dialogues
    from korlora.data.config import BuildConfig
    from korlora.models import resolve_model_path
    from korlora.relearn.pipeline import print_before_after, print_eval_before_after, run_relearn
    from korlora.train.driver import run_training

    started = time.perf_counter()
    run = Path(cfg.run_dir).resolve()
    data = run / "data"
    train = cfg.train
    print(f"{train.model_name_or_path}: {resolve_model_path(train.model_name_or_path)}")

    legacy_file = data / "legacy_sft.jsonl"
    if not legacy_file.exists():
        print("── data: build, then a legacy copy with broken answer starts")
        rows = build_dialogues(BuildConfig(output=str(data / "korean_sft_train.jsonl"), num_rows=cfg.build_rows,
                                           seed=train.seed, report=False))
        write_jsonl(data / "korean_sft_train.jsonl", rows)
        write_jsonl(legacy_file, make_legacy(rows, cfg.legacy_disclaimer_share, cfg.legacy_punct_share, train.seed))
    legacy_adapter = run / "legacy_adapter"
    if not (legacy_adapter / "adapter_config.json").exists():
        print("── train the legacy adapter (the collapsed model)")
        run_training(dataclasses.replace(
            train, data_file=str(legacy_file), output_dir=str(legacy_adapter), storage_path=str(run / "ray_results"),
            learning_rate=cfg.legacy_learning_rate, max_steps=cfg.legacy_steps, save_steps=cfg.legacy_steps,
            start_loss_weight=1.0, start_tokens=0, init_adapter=None))

    relearn = RelearnConfig(
        data_file=str(legacy_file), run_dir=str(run / "relearn"), no_warning_rows=cfg.no_warning_rows,
        correction_rows=cfg.correction_rows, diagnose_samples=cfg.diagnose_samples,
        diagnose_max_new_tokens=cfg.diagnose_max_new_tokens, gate=cfg.gate,
        preference_learning_rate=cfg.preference_learning_rate, preference_steps=cfg.preference_steps,
        train=dataclasses.replace(train, init_adapter=str(legacy_adapter)))
    results = {"plain loss": run_relearn(relearn)}
    if cfg.weighted_start_loss_weight != 1.0:
        weighted = dataclasses.replace(relearn, run_dir=str(run / "relearn_start_weighted"), train=dataclasses.replace(
            relearn.train, start_loss_weight=cfg.weighted_start_loss_weight, start_tokens=cfg.weighted_start_tokens))
        name = f"start-weighted loss (W={cfg.weighted_start_loss_weight:g}, K={cfg.weighted_start_tokens})"
        results[name] = run_relearn(weighted)
    if cfg.preference:
        preferred = dataclasses.replace(relearn, run_dir=str(run / f"relearn_{cfg.preference}"),
                                        preference=cfg.preference)
        results[f"plain loss + {cfg.preference.upper()}"] = run_relearn(preferred)

    report = {name: {"before": r["before"], "after": r["after"], "eval": r["eval"]} for name, r in results.items()}
    write_json(run / "demo_report.json", {"config": to_dict(cfg), "results": report})
    for name, r in results.items():
        print(f"\n[{name}]")
        print_before_after(r["before"], r["after"], r["eval"])
        print_eval_before_after(r["eval"])
    from korlora.track.mlflow_utils import tracking_uri

    print(f"\ndone in {time.perf_counter() - started:.0f} s · files: {run}")
    print(f"MLflow UI: mlflow ui --backend-store-uri {tracking_uri()}   (then open http://127.0.0.1:5000)")
    return 0
