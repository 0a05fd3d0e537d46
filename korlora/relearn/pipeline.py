"""``korlora relearn``: the seed's run_relearn.sh as one job with one MLflow parent run.

clean → rebalance → no-warning → correction → merge → re-fine-tune → diagnose before and after. All files
live under ``run_dir``; ``run_dir/manifest.json`` lists them with their sha256. Stages are cached (see
:mod:`korlora.relearn.stages`), so a run killed during training restarts at training.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import asdict
from pathlib import Path

from korlora.config import to_dict
from korlora.io import write_json
from korlora.relearn.config import RelearnConfig
from korlora.relearn.stages import Stage, StageRunner, sha256_path


def _diagnose_stage(name: str, cfg: RelearnConfig, adapter: Path | None, out: Path, inputs: list[Path]) -> Stage:
    from korlora.diagnose.config import DiagnoseConfig
    from korlora.diagnose.report import diagnose_command

    dcfg = DiagnoseConfig(model_name_or_path=cfg.train.model_name_or_path, adapter=str(adapter) if adapter else None,
                          output_dir=str(out), samples=cfg.diagnose_samples,
                          max_new_tokens=cfg.diagnose_max_new_tokens, seed=cfg.train.seed, label=name,
                          heldout="none")  # the eval stage scores the reference answers

    def run() -> dict:
        import json

        diagnose_command(dcfg)
        report = json.loads((out / "diagnosis.json").read_text(encoding="utf-8"))
        g = report["greedy"]
        return {"hangul_start_share": g["hangul_start_share"], "punct_start_share": g["punct_start_share"],
                "disclaimer_start_share": g["disclaimer_start_share"],
                "next_token_disclaimer_mass": report["next_token"]["disclaimer_mass"]}

    return Stage(name, run, inputs=inputs, outputs=[out / "diagnosis.json"], settings=asdict(dcfg))


EVAL_KEYS = ("korean_share", "hangul_start_share", "punct_start_share", "invisible_start_share",
             "disclaimer_start_share", "disclaimer_anywhere_share", "stop_share", "repetition_share",
             "register_match_share", "heldout_answer_loss")


def _eval_stage(name: str, cfg: RelearnConfig, adapter: Path | None, out: Path, inputs: list[Path]) -> Stage:
    from korlora.eval.config import EvalConfig
    from korlora.eval.report import evaluate

    ecfg = EvalConfig(model_name_or_path=cfg.train.model_name_or_path, max_new_tokens=cfg.gate.eval_max_new_tokens,
                      prompts=cfg.gate.eval_prompts, output_dir=str(out), mlflow=False)

    def run() -> dict:
        result = evaluate(cfg.train.model_name_or_path, str(adapter) if adapter else None, ecfg)
        write_json(out / "eval.json", result)
        return {k: result["overall"][k] for k in EVAL_KEYS if result["overall"].get(k) is not None}

    return Stage(name, run, inputs=inputs, outputs=[out / "eval.json"], settings=asdict(ecfg))


def relearn_stages(cfg: RelearnConfig, run_dir: Path) -> list[Stage]:
    from korlora.clean.config import CleanConfig, MergeConfig, RebalanceConfig
    from korlora.clean.merge import merge_command
    from korlora.clean.pipeline import clean_dataset
    from korlora.clean.rebalance import rebalance_dataset
    from korlora.data.config import CorrectionConfig, NoWarningConfig
    from korlora.data.correction import correction_command
    from korlora.data.no_warning import no_warning_command
    from korlora.train.driver import run_training

    data = run_dir / "data"
    original = Path(cfg.data_file)
    cleaned, rebalanced = data / "korean_sft_train_cleaned.jsonl", data / "korean_sft_rebalanced.jsonl"
    no_warning, correction = data / "korean_sft_no_warning.jsonl", data / "korean_sft_correction.jsonl"
    final, adapter = data / "korean_sft_final.jsonl", run_dir / "adapter"
    final_adapter = run_dir / "adapter_preference" if cfg.preference else adapter
    init = Path(cfg.train.init_adapter) if cfg.train.init_adapter else None
    seed = cfg.train.seed

    clean_cfg = CleanConfig(input=str(original), output=str(cleaned))
    rebalance_cfg = RebalanceConfig(input=str(cleaned), output=str(rebalanced), max_ratio=cfg.max_ratio, seed=seed)
    nw_cfg = NoWarningConfig(output=str(no_warning), num_rows=cfg.no_warning_rows, seed=seed)
    fix_cfg = CorrectionConfig(output=str(correction), num_rows=cfg.correction_rows, seed=seed)
    merge_cfg = MergeConfig(input=[f"rebalanced={rebalanced}", f"no_warning={no_warning}", f"correction={correction}"],
                            output=str(final), weights=cfg.weights, target_size=cfg.target_size, seed=seed)
    train_cfg = dataclasses.replace(cfg.train, data_file=str(final), output_dir=str(adapter),
                                    storage_path=str(run_dir / "ray_results"),
                                    data_manifest=str(final.with_suffix(".manifest.json")))

    def summary_of(stats: dict, *keys: str) -> dict:
        return {k: stats[k] for k in keys if k in stats}

    return [
        _diagnose_stage("diagnose_before", cfg, init, run_dir / "diagnose_before", [init] if init else []),
        _eval_stage("eval_before", cfg, init, run_dir / "eval_before", [init] if init else []),
        Stage("clean", lambda: summary_of(clean_dataset(clean_cfg), "lines", "kept", "repaired", "dropped_total"),
              [original], [cleaned], to_dict(clean_cfg)),
        Stage("rebalance", lambda: {"before_share": (s := rebalance_dataset(rebalance_cfg))["before"]["share"],
                                    "after_share": s["after"]["share"], "kept": s["kept"]},
              [cleaned], [rebalanced], to_dict(rebalance_cfg)),
        Stage("no_warning", lambda: no_warning_command(nw_cfg) and None, [], [no_warning], to_dict(nw_cfg)),
        Stage("correction", lambda: correction_command(fix_cfg) and None, [], [correction, Path(fix_cfg.pairs_output)],
              to_dict(fix_cfg)),
        Stage("merge", lambda: merge_command(merge_cfg) and None, [rebalanced, no_warning, correction], [final],
              to_dict(merge_cfg)),
        Stage("train", lambda: summary_of(run_training(train_cfg).metrics, "eval_loss", "train_loss_final",
                                          "global_step"),
              [final, *([init] if init else [])], [adapter], {**to_dict(train_cfg), "run_dir": None}),
        *([_preference_stage(cfg, run_dir, Path(fix_cfg.pairs_output), adapter)] if cfg.preference else []),
        _diagnose_stage("diagnose_after", cfg, final_adapter, run_dir / "diagnose_after", [final_adapter]),
        _eval_stage("eval_after", cfg, final_adapter, run_dir / "eval_after", [final_adapter]),
    ]


def _preference_stage(cfg: RelearnConfig, run_dir: Path, pairs: Path, adapter: Path) -> Stage:
    """DPO / ORPO on the correction stage's pairs (the same prompt, a clean start chosen, a broken one
    rejected), continuing the re-fine-tuned adapter."""
    from korlora.train.driver import run_training

    pref_cfg = dataclasses.replace(
        cfg.train, method=cfg.preference, data_file=str(pairs), init_adapter=str(adapter),
        output_dir=str(run_dir / "adapter_preference"), storage_path=str(run_dir / "ray_results"), data_manifest=None,
        learning_rate=cfg.preference_learning_rate, max_steps=cfg.preference_steps, num_train_epochs=1.0,
        start_loss_weight=1.0, start_tokens=0, packing=False, sft={**(cfg.train.sft or {}), "beta": cfg.preference_beta})
    return Stage("preference", lambda: {k: v for k, v in run_training(pref_cfg).metrics.items()
                                        if k in ("eval_loss", "eval_rewards/margins", "train_loss_final", "global_step")},
                 [pairs, adapter], [run_dir / "adapter_preference"], {**to_dict(pref_cfg), "run_dir": None})


def run_relearn(cfg: RelearnConfig) -> dict:
    """Run (or resume) the relearn job; returns ``{"before": ..., "after": ..., "stages": [...]}``."""
    from korlora.raycompat import init_local_ray
    from korlora.track.runs import tracked_run

    run_dir = Path(cfg.run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    init_local_ray()  # the diagnosis and the training go to the cluster's (GPU) workers
    runner = StageRunner(run_dir)
    results: dict[str, dict] = {}
    parent_file = run_dir / "mlflow_parent_run_id"
    parent_id = parent_file.read_text().strip() if parent_file.exists() else None
    with tracked_run(cfg.train.experiment_name, run_name=f"relearn-{run_dir.name}", run_id=parent_id,
                     params=to_dict(cfg)) as parent:
        import mlflow

        parent_file.write_text(parent.info.run_id)
        for stage in relearn_stages(cfg, run_dir):
            results[stage.name] = runner(stage)
            if os.environ.get("KORLORA_TEST_STOP_AFTER") == stage.name:
                raise RuntimeError(f"stopped after {stage.name} (KORLORA_TEST_STOP_AFTER)")
        files = sorted(p for p in run_dir.rglob("*") if p.is_file() and "ray_results" not in p.parts
                       and p.parent.name != "stages" and not p.name.startswith("."))
        manifest = {"config": to_dict(cfg), "stages": runner.history,
                    "files": {str(p.relative_to(run_dir)): sha256_path(p) for p in files}}
        write_json(run_dir / "manifest.json", manifest)
        mlflow.log_artifact(str(run_dir / "manifest.json"))
        before, after = results.get("diagnose_before", {}), results.get("diagnose_after", {})
        mlflow.log_metrics({f"after_{k}": v for k, v in after.items()})
        evals = {"before": results.get("eval_before", {}), "after": results.get("eval_after", {})}
        mlflow.log_metrics({f"eval_after_{k}": v for k, v in evals["after"].items()})
        registered = None
        if cfg.register:
            registered = _register(cfg, parent.info.run_id, run_dir)
    return {"before": before, "after": after, "eval": evals, "registered": registered, "stages": runner.history,
            "run_dir": str(run_dir)}


def _register(cfg: RelearnConfig, run_id: str, run_dir: Path) -> dict:
    """The relearned adapter as a version of ``cfg.register``, tagged with its eval; champion past the gate."""
    import json

    import mlflow

    from korlora.track.registry import promote_champion

    mlflow.log_artifacts(str(run_dir / ("adapter_preference" if cfg.preference else "adapter")), "adapter")
    overall = json.loads((run_dir / "eval_after" / "eval.json").read_text(encoding="utf-8"))["overall"]
    return promote_champion(mlflow.MlflowClient(), cfg.register, run_id, "adapter", evaluation=overall,
                            gate=cfg.gate, tags={"base_model": cfg.train.model_name_or_path,
                                                 "init_adapter": cfg.train.init_adapter or "", "stage": "relearn"})


def print_before_after(before: dict, after: dict, evals: dict | None = None) -> None:
    rows = [("Hangul start", "hangul_start_share"), ("punctuation start", "punct_start_share"),
            ("disclaimer start", "disclaimer_start_share"), ("disclaimer-opening probability", "next_token_disclaimer_mass")]
    print(f"\n{'greedy answers':<34}{'before':>10}{'after':>10}")
    for label, key in rows:
        b = f"{before[key]:.1%}" if key in before else "-"
        a = f"{after[key]:.1%}" if key in after else "-"
        print(f"{label:<34}{b:>10}{a:>10}")
    evals = evals or {}
    losses = [evals.get(k, {}).get("heldout_answer_loss") for k in ("before", "after")]
    if any(v is not None for v in losses):
        b, a = ("-" if v is None else f"{v:.3f}" for v in losses)
        print(f"{'held-out answer loss (nats/token)':<34}{b:>10}{a:>10}")


def print_eval_before_after(evals: dict) -> None:
    """The held-out evaluation prompts (never used for selection) before and after."""
    before, after = evals.get("before", {}), evals.get("after", {})
    if not before and not after:
        return
    labels = {"korean_share": "Korean answers", "hangul_start_share": "Hangul start",
              "punct_start_share": "punctuation start", "invisible_start_share": "invisible start",
              "disclaimer_start_share": "disclaimer start", "disclaimer_anywhere_share": "disclaimer anywhere",
              "stop_share": "stops on its own", "repetition_share": "repetition loop",
              "register_match_share": "register as asked", "heldout_answer_loss": "reference loss (nats/token)"}
    print(f"\n{'eval set (held out)':<34}{'before':>10}{'after':>10}")
    for key, label in labels.items():
        cells = [("-" if key not in d else f"{d[key]:.3f}" if key == "heldout_answer_loss" else f"{d[key]:.1%}")
                 for d in (before, after)]
        print(f"{label:<34}{cells[0]:>10}{cells[1]:>10}")


def print_registration(registered: dict | None) -> None:
    if not registered:
        return
    gate = registered.get("gate") or {}
    verdict = ("champion now" if registered["promoted"] else
               "refused by the gate: " + "; ".join(gate["failures"]) if gate and not gate["passed"] else
               "passes the gate but does not beat the champion")
    print(f"registered {registered['name']} v{registered['version']}: {verdict}")


def relearn_command(cfg: RelearnConfig) -> int:
    result = run_relearn(cfg)
    print_before_after(result["before"], result["after"], result["eval"])
    print_eval_before_after(result["eval"])
    print_registration(result["registered"])
    print(f"\nrun directory: {result['run_dir']}")
    from korlora.track.mlflow_utils import tracking_uri

    print(f"MLflow UI: mlflow ui --backend-store-uri {tracking_uri()}")
    return 0
