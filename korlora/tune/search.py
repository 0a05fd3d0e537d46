"""``korlora tune``: Ray Tune over the learning rate and the relearn data mix, tracked in MLflow.

The driver prepares the data once (clean → held-out clean eval split, no-warning, correction; cached like
the relearn stages), opens the sweep's MLflow parent run and runs a ``Tuner`` whose trainable is a driver
function: it mixes the trial's data and runs one Ray Train training (``run_training``) whose reports reach
Tune through ``TuneReportCallback``. Every evaluation reports ``objective``; Optuna proposes, ASHA stops.
Afterwards every trial's MLflow run gets its final status (ASHA-stopped runs are killed inside
``tune.report``, so the driver closes them), the charts are logged, and the best adapter becomes the
registered model's ``champion`` when it beats the current one.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

from korlora.config import to_dict
from korlora.errors import KorloraError
from korlora.io import read_jsonl, sha256_file, write_json, write_jsonl
from korlora.relearn.stages import Stage, StageRunner
from korlora.tune.config import SOURCES, TuneConfig

TRIAL_DRIVER_CPU = 0.01  # a Tune trial's own process; its Train worker holds the real CPUs


def _split_eval(cleaned: Path, train_out: Path, eval_out: Path, share: float, seed: int) -> dict:
    """Hold out a hash-selected share of the cleaned original as clean eval data (no disclaimer rows)."""
    from korlora.clean.rebalance import rebalance_rows, selection_hash, stable_key

    rows = read_jsonl(cleaned).rows
    train, held_out = [], []
    for row in rows:
        (held_out if selection_hash(seed, "eval:" + stable_key(row)) / 2**64 < share else train).append(row)
    clean_eval, _ = rebalance_rows(held_out, max_ratio=0.0, seed=seed)
    if not clean_eval:
        raise KorloraError(f"no eval rows: {cleaned} has {len(rows)} rows; raise --eval_share")
    write_jsonl(train_out, train)
    write_jsonl(eval_out, clean_eval)
    return {"train_rows": len(train), "eval_rows": len(clean_eval)}


def prepare_sources(cfg: TuneConfig, run_dir: Path) -> dict[str, Path]:
    """The files every trial mixes, as cached stages (a re-run reuses them)."""
    from korlora.clean.config import CleanConfig
    from korlora.clean.pipeline import clean_dataset
    from korlora.data.config import CorrectionConfig, NoWarningConfig
    from korlora.data.correction import correction_command
    from korlora.data.no_warning import no_warning_command

    if not Path(cfg.data_file).is_file():
        raise KorloraError(f"data file not found: {cfg.data_file}")
    data = run_dir / "data"
    files = {"cleaned": data / "cleaned.jsonl", "original": data / "original_train.jsonl",
             "eval": data / "eval_clean.jsonl", "no_warning": data / "no_warning.jsonl",
             "correction": data / "correction.jsonl"}
    seed = cfg.train.seed
    clean_cfg = CleanConfig(input=cfg.data_file, output=str(files["cleaned"]))
    nw_cfg = NoWarningConfig(output=str(files["no_warning"]), num_rows=cfg.no_warning_rows, seed=seed)
    fix_cfg = CorrectionConfig(output=str(files["correction"]), num_rows=cfg.correction_rows, seed=seed)
    runner = StageRunner(run_dir)
    for stage in (
        Stage("clean", lambda: {"kept": clean_dataset(clean_cfg)["kept"]}, [Path(cfg.data_file)],
              [files["cleaned"]], to_dict(clean_cfg)),
        Stage("eval_split", lambda: _split_eval(files["cleaned"], files["original"], files["eval"], cfg.eval_share,
                                                seed),
              [files["cleaned"]], [files["original"], files["eval"]], {"share": cfg.eval_share, "seed": seed}),
        Stage("no_warning", lambda: no_warning_command(nw_cfg) and None, [], [files["no_warning"]], to_dict(nw_cfg)),
        Stage("correction", lambda: correction_command(fix_cfg) and None, [], [files["correction"]],
              to_dict(fix_cfg)),
    ):
        runner(stage)
    return files


def trial_data(params: dict, sources: dict[str, str], out_dir: Path, rows: int, seed: int) -> tuple[Path, dict]:
    """One trial's training file: the original capped at ``disclaimer_cap``, mixed with the other sources by
    the trial's weights to ``rows`` rows (sources repeat when their share needs more rows than they have)."""
    from korlora.clean.merge import merge_sources
    from korlora.clean.rebalance import rebalance_rows

    out_dir.mkdir(parents=True, exist_ok=True)
    capped, stats = rebalance_rows(read_jsonl(sources["original"]).rows, params["disclaimer_cap"], seed=seed)
    write_jsonl(out_dir / "original_capped.jsonl", capped)
    inputs = {"original": out_dir / "original_capped.jsonl", "no_warning": Path(sources["no_warning"]),
              "correction": Path(sources["correction"])}
    weights = {name: params[f"weight_{name}"] for name in SOURCES}
    mixed, manifest = merge_sources(inputs, weights=weights, target_size=rows, oversample=True, seed=seed)
    manifest["disclaimer_cap"] = {"max_ratio": params["disclaimer_cap"], **stats}
    data_file = out_dir / "train.jsonl"
    write_jsonl(data_file, mixed)
    manifest["sha256"] = sha256_file(data_file)
    write_json(out_dir / "train.manifest.json", manifest)
    return data_file, manifest


def run_trial(params: dict, settings: dict) -> None:
    """Tune's trainable: one trial = its data mix + one Ray Train training, tracked in its own MLflow run."""
    from mlflow import MlflowClient
    from ray import tune
    from ray.tune.integration.ray_train import TuneReportCallback

    from korlora.train.config import TrainConfig
    from korlora.train.driver import run_training

    os.environ["MLFLOW_TRACKING_URI"] = settings["tracking_uri"]  # trials run in their own directory
    context = tune.get_context()
    trial_id = context.get_trial_id()
    trial_dir = Path(settings["run_dir"]) / "trials" / trial_id
    client = MlflowClient(settings["tracking_uri"])
    run = client.create_run(settings["experiment_id"], run_name=f"trial-{trial_id}",
                            tags={"mlflow.parentRunId": settings["parent_run_id"], "korlora.trial_id": trial_id,
                                  "korlora.sweep": settings["sweep"]})
    run_id = run.info.run_id
    client.log_batch(run_id, params=_params({f"search.{k}": v for k, v in params.items()}))
    try:
        data_file, manifest = trial_data(params, settings["sources"], trial_dir / "data", settings["train_rows"],
                                         settings["seed"])
        client.set_tag(run_id, "korlora.data_sha256", manifest["sha256"])
        train = TrainConfig(**{**settings["train"], "learning_rate": params["learning_rate"], "max_failures": 0,
                               "data_file": str(data_file), "data_manifest": str(trial_dir / "data" /
                                                                                  "train.manifest.json"),
                               "output_dir": str(trial_dir / "adapter"), "run_name": trial_id,
                               "storage_path": str(trial_dir / "ray_train")})
        # Tune ends the trial inside the last report (ASHA stops at max_t too): nothing after this line is
        # sure to run, so the sweep's driver closes the run and collects the adapter from the checkpoint.
        run_training(train, callbacks=[TuneReportCallback()], mlflow_run_id=run_id)
    except BaseException as e:
        client.set_tag(run_id, "korlora.error", f"{type(e).__name__}: {e}"[:5000])
        client.set_terminated(run_id, "FAILED")
        raise


def _params(values: dict):
    from mlflow.entities import Param

    return [Param(k, str(v)) for k, v in values.items()]


def _metrics(values: dict, step: int = 0):
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    return [Metric(k, float(v), now, step) for k, v in values.items() if isinstance(v, (int, float))]


def concurrency(cfg: TuneConfig) -> tuple[int, bool]:
    """``(max concurrent trials, use GPUs)``: one trial per GPU the cluster has or its autoscaler can launch,
    else one per ``cpus_per_worker`` CPUs."""
    import ray

    from korlora.train.cluster import cluster_gpu_capacity, resolve_use_gpu

    use_gpu = resolve_use_gpu(cfg.train.use_gpu)
    if use_gpu:
        auto = max(1, min(cfg.num_samples, cluster_gpu_capacity()["max_gpus"]))
    else:
        cpus = ray.cluster_resources().get("CPU", 1)
        auto = max(1, math.floor(cpus / ((cfg.train.cpus_per_worker or 1) + TRIAL_DRIVER_CPU)))
    return int(min(cfg.max_concurrent_trials or auto, cfg.num_samples)), use_gpu


def trial_outcomes(grid) -> list[dict]:
    """Every trial with its config, last metrics and outcome: finished, stopped_early (ASHA) or failed."""
    trials = []
    for result in grid:
        metrics = dict(result.metrics or {})
        trial_id = Path(result.path).name  # trial_dirname_creator names trial directories by id
        if result.error is not None:
            outcome = "failed"
        elif metrics.get("final"):
            outcome = "finished"
        else:
            outcome = "stopped_early"
        history = result.metrics_dataframe
        trials.append({
            "trial_id": trial_id, "outcome": outcome, "config": dict(result.config or {}),
            "metrics": {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)},
            "history": [] if history is None else history[[c for c in ("training_iteration", "step", "eval_loss",
                                                                       "objective", "start_disclaimer_share",
                                                                       "start_punct_share") if c in history]]
            .to_dict("records"),
            "error": str(result.error)[:2000] if result.error is not None else None,
            "checkpoint_path": metrics.get("checkpoint_path"),
        })
    return trials


def close_trial_runs(client, experiment_id: str, parent_id: str, trials: list[dict]) -> dict[str, str]:
    """Give every trial's MLflow run a final status; returns ``trial_id → run_id``."""
    runs = client.search_runs([experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'",
                              max_results=1000)
    by_trial = {r.data.tags.get("korlora.trial_id"): r for r in runs}
    for trial in trials:
        run = by_trial.get(trial["trial_id"])
        if run is None:
            continue
        client.set_tag(run.info.run_id, "korlora.outcome", trial["outcome"])
        if trial["outcome"] == "stopped_early":
            client.set_tag(run.info.run_id, "korlora.stopped_by", "ASHA")
        last = {k: v for k, v in trial["metrics"].items() if k == "objective" or k.startswith(("start_", "eval_"))}
        if last:
            client.log_batch(run.info.run_id, metrics=_metrics({f"final_{k}": v for k, v in last.items()}))
        status = {"finished": "FINISHED", "stopped_early": "KILLED", "failed": "FAILED"}[trial["outcome"]]
        if run.info.status != status:
            client.set_terminated(run.info.run_id, status)
    return {t: r.info.run_id for t, r in by_trial.items() if t}


def collect_adapter(trial: dict, out: Path) -> Path:
    """The trial's final adapter, from the checkpoint of its last report (``Result.checkpoint`` is None when
    Train reports through Tune, but the path is in the metrics)."""
    import shutil

    from korlora.train.worker import ADAPTER_DIR

    checkpoint = trial.get("checkpoint_path")
    source = Path(checkpoint) / ADAPTER_DIR if checkpoint else None
    if source is None or not (source / "adapter_config.json").is_file():
        raise KorloraError(f"trial {trial['trial_id']}: no adapter in its final checkpoint {checkpoint}")
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(source, out)
    return out


def log_datasets(files: dict[str, Path]) -> None:
    """``mlflow.log_input`` for the sources and the eval set, with their digests."""
    import mlflow
    import pandas as pd

    for name in ("original", *SOURCES[1:], "eval"):
        path = files[name]
        rows = read_jsonl(path).rows
        frame = pd.DataFrame({"messages": [str(r["messages"]) for r in rows]})
        dataset = mlflow.data.from_pandas(frame, source=str(path), name=name, digest=sha256_file(path)[:16])
        mlflow.log_input(dataset, context="eval" if name == "eval" else "training")


def run_sweep(cfg: TuneConfig) -> dict:
    import mlflow
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    from korlora.models import resolve_model_path
    from korlora.raycompat import init_local_ray
    from korlora.track.mlflow_utils import safe_params, tracking_uri
    from korlora.track.runs import tracked_run
    from korlora.tune.report import plot_sweep
    from korlora.tune.space import complete_points, to_tune

    started = time.perf_counter()
    run_dir = Path(cfg.run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    train = cfg.train
    init_adapter = Path(train.init_adapter).resolve() if train.init_adapter else None  # trials run elsewhere
    if init_adapter and not (init_adapter / "adapter_config.json").is_file():
        raise KorloraError(f"--init_adapter {train.init_adapter} is not a LoRA adapter directory")
    init_local_ray()
    model_path = resolve_model_path(train.model_name_or_path)
    limit, use_gpu = concurrency(cfg)
    evals = train.max_steps // train.save_steps
    sweep = f"sweep-{time.strftime('%Y%m%d-%H%M%S')}"
    train_settings = {**to_dict(train), "model_name_or_path": model_path,
                      "init_adapter": init_adapter and str(init_adapter), "use_gpu": use_gpu}

    with tracked_run(train.experiment_name, run_name=sweep,
                     params={**to_dict(cfg), "search_space": cfg.space()}) as parent:
        uri = tracking_uri()
        mlflow.log_params({"max_concurrent_trials_used": limit, "model_path": model_path})
        files = prepare_sources(cfg, run_dir)  # its stages nest under the sweep's run
        log_datasets(files)
        train_settings["eval_file"] = str(files["eval"])
        settings = {"tracking_uri": uri, "experiment_id": parent.info.experiment_id,
                    "parent_run_id": parent.info.run_id, "sweep": sweep, "run_dir": str(run_dir / sweep),
                    "sources": {k: str(v) for k, v in files.items()}, "train_rows": cfg.train_rows,
                    "seed": train.seed, "train": train_settings}
        search = OptunaSearch(seed=train.seed, points_to_evaluate=complete_points(cfg.points_to_evaluate, cfg.space()))
        tuner = tune.Tuner(
            tune.with_resources(tune.with_parameters(run_trial, settings=settings), {"cpu": TRIAL_DRIVER_CPU}),
            param_space=to_tune(cfg.space()),
            tune_config=tune.TuneConfig(
                metric="objective", mode="min", search_alg=search, num_samples=cfg.num_samples,
                max_concurrent_trials=limit, trial_dirname_creator=lambda trial: trial.trial_id,
                scheduler=ASHAScheduler(max_t=evals + 1, grace_period=cfg.grace_period,
                                        reduction_factor=cfg.reduction_factor)),
            run_config=tune.RunConfig(name=sweep, storage_path=str(run_dir / "ray_tune"), verbose=1,
                                      failure_config=tune.FailureConfig(max_failures=0)),
        )
        grid = tuner.fit()
        trials = trial_outcomes(grid)
        client = mlflow.MlflowClient(uri)
        run_ids = close_trial_runs(client, parent.info.experiment_id, parent.info.run_id, trials)
        for trial in trials:
            trial["mlflow_run_id"] = run_ids.get(trial["trial_id"])
        finished = [t for t in trials if t["outcome"] == "finished" and "objective" in t["metrics"]]
        counts = {o: sum(t["outcome"] == o for t in trials) for o in ("finished", "stopped_early", "failed")}
        mlflow.log_metrics({f"trials_{k}": v for k, v in counts.items()})
        charts = plot_sweep(trials, run_dir / sweep / "charts")
        for chart in charts:
            mlflow.log_artifact(str(chart), "charts")
        report = {"sweep": sweep, "mlflow_run_id": parent.info.run_id, "tracking_uri": uri, "counts": counts,
                  "trials": trials, "best": None, "champion": None, "seconds": None}
        if finished:
            best = min(finished, key=lambda t: t["metrics"]["objective"])
            best["adapter"] = str(collect_adapter(best, run_dir / sweep / "trials" / best["trial_id"] / "adapter"))
            client.log_artifacts(best["mlflow_run_id"], best["adapter"], "adapter")
            report["best"] = {k: best[k] for k in ("trial_id", "config", "metrics", "adapter", "mlflow_run_id")}
            mlflow.log_metrics({"best_objective": best["metrics"]["objective"]})
            mlflow.log_params(safe_params(best["config"], prefix="best."))
            report["champion"] = register_best(client, cfg, best, model_path, sweep)
        report["seconds"] = round(time.perf_counter() - started, 1)
        write_json(run_dir / sweep / "sweep.json", report)
        mlflow.log_artifact(str(run_dir / sweep / "sweep.json"))
    return report


def register_best(client, cfg: TuneConfig, best: dict, model_path: str, sweep: str) -> dict:
    """A registry version for the best trial's adapter, tagged with what made it and with its ``korlora eval``
    figures on the held-out evaluation prompts; ``champion`` moves to it when they pass the gate and beat
    the current champion's."""
    from korlora.eval.config import EvalConfig
    from korlora.eval.report import evaluate
    from korlora.track.registry import promote_champion

    evaluation = evaluate(model_path, best["adapter"], EvalConfig(max_new_tokens=cfg.gate.eval_max_new_tokens,
                                                                 mlflow=False))

    manifest = Path(best["adapter"]).parent / "data" / "train.manifest.json"
    figures = {k: round(v, 4) for k, v in best["metrics"].items()
               if k.startswith("start_") or k in ("eval_loss", "objective")}
    return promote_champion(
        client, cfg.registered_model, best["mlflow_run_id"], artifact_path="adapter",
        objective=best["metrics"]["objective"], evaluation=evaluation["overall"], gate=cfg.gate,
        tags={"base_model": cfg.train.model_name_or_path, "base_model_path": model_path,
              "data_manifest_sha256": sha256_file(manifest) if manifest.exists() else "",
              "learning_rate": best["config"]["learning_rate"],
              "mix": {k: round(best["config"][f"weight_{k}"], 4) for k in SOURCES},
              "disclaimer_cap": best["config"]["disclaimer_cap"], **figures, "sweep": sweep})


def print_sweep(report: dict) -> None:
    print(f"\n{'trial':<14}{'outcome':<15}{'lr':>10}{'objective':>11}{'eval loss':>11}{'bad starts':>12}")
    for t in sorted(report["trials"], key=lambda t: t["metrics"].get("objective", math.inf)):
        m = t["metrics"]
        bad = m.get("start_disclaimer_share", math.nan) + m.get("start_punct_share", math.nan)
        lr = t["config"].get("learning_rate", math.nan)
        print(f"{t['trial_id']:<14}{t['outcome']:<15}{lr:>10.2e}{m.get('objective', math.nan):>11.4f}"
              f"{m.get('eval_loss', math.nan):>11.4f}{bad:>12.1%}")
    champion = report.get("champion")
    if champion:
        gate = champion.get("gate") or {}
        if champion["promoted"]:
            moved = "moved to this sweep's best"
        elif gate and not gate["passed"]:
            moved = "kept: this sweep's best fails the gate (" + "; ".join(gate["failures"]) + ")"
        else:
            moved = "kept: this sweep's best does not beat it on the eval set"
        where = f"v{champion['champion_version']}" if champion["champion_version"] else "none yet"
        print(f"\nchampion: {champion['name']} {where} — {moved}")


def tune_command(cfg: TuneConfig) -> int:
    report = run_sweep(cfg)
    print_sweep(report)
    if report["best"] is None:
        raise KorloraError("no trial finished; see the failed trials above and their MLflow runs")
    print(f"\nsweep: {Path(cfg.run_dir).resolve() / report['sweep']}")
    print(f"MLflow UI: mlflow ui --backend-store-uri {report['tracking_uri']}")
    return 0

