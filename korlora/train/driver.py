"""``korlora train``: the Ray Train driver around :func:`korlora.train.worker.train_loop_per_worker`.

The driver resolves the model, checks the assistant mask, opens the MLflow run, launches a
``TorchTrainer`` (GPU workers when the cluster has GPUs, gloo on CPU), and finally copies the adapter from
the last checkpoint into ``output_dir`` and logs it. Re-running with the same run name resumes from the
last checkpoint; ``max_failures`` restarts killed workers from it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from korlora.config import to_dict
from korlora.errors import KorloraError
from korlora.io import sha256_file
from korlora.train.config import TrainConfig
from korlora.train.model import load_tokenizer, resolve_model_choice
from korlora.train.sft import assistant_mask_coverage, load_chat_rows
from korlora.train.worker import ADAPTER_DIR, train_loop_per_worker


@dataclass
class TrainResult:
    output_dir: Path
    metrics: dict
    mlflow_run_id: str | None
    attn_implementation: str


def _absolute(cfg: TrainConfig) -> TrainConfig:
    """Workers chdir into their own run directory, so every path they get must be absolute."""
    def fix(p: str | None) -> str | None:
        return str(Path(p).resolve()) if p and "://" not in p else p

    return dataclasses.replace(
        cfg, output_dir=str(Path(cfg.output_dir).resolve()), data_file=str(Path(cfg.data_file).resolve()),
        init_adapter=fix(cfg.init_adapter), storage_path=fix(cfg.storage_path), data_manifest=fix(cfg.data_manifest),
        eval_file=fix(cfg.eval_file), profile=None)


def _worker_resources(num_workers: int, use_gpu: bool, cpus_per_worker: int | None = None) -> dict:
    """One GPU per worker on GPU clusters; on CPU, share the machine's cores so torch uses them all
    (Ray sets each worker's thread count from its CPUs)."""
    import ray

    if use_gpu:
        return {"CPU": 1, "GPU": 1}
    if cpus_per_worker:
        return {"CPU": cpus_per_worker}
    cpus = int(ray.available_resources().get("CPU", 1))
    return {"CPU": max(1, cpus // num_workers)}


def default_run_name(cfg: TrainConfig, data_digest: str) -> str:
    settings = {k: v for k, v in to_dict(cfg).items() if k not in ("run_name", "storage_path", "max_failures")}
    key = hashlib.sha256(json.dumps([settings, data_digest], sort_keys=True, default=str).encode()).hexdigest()
    return f"{Path(cfg.output_dir).name}-{key[:10]}"


def _mlflow_run(cfg: TrainConfig, run_dir: Path, params: dict, mask: dict, choice,
                run_id: str | None = None) -> dict | None:
    if not cfg.mlflow:
        return None
    import mlflow

    from korlora.track.mlflow_utils import safe_params, setup

    uri = setup(cfg.experiment_name)
    id_file = run_dir / "mlflow_run_id"
    saved = id_file.read_text().strip() if id_file.exists() else None
    run_id = run_id or saved  # a given run (a Tune trial's) or this run directory's, to resume
    fresh = run_id is None or run_id != saved
    # inside a pipeline's parent run (relearn, tune) the training run nests under it
    run = mlflow.start_run(run_id=run_id, run_name=run_dir.name if not run_id else None,
                           nested=mlflow.active_run() is not None)
    if fresh:
        mlflow.log_params(safe_params(params))
        mlflow.log_params({"attn_implementation_used": choice.attn_implementation,
                           "bf16_used": str(choice.bf16)})
        mlflow.log_metrics(mask)
        mlflow.log_dict(safe_params(params), "config/train_config.json")
        if cfg.data_manifest and Path(cfg.data_manifest).exists():
            mlflow.log_artifact(cfg.data_manifest, "data")
        run_dir.mkdir(parents=True, exist_ok=True)
        id_file.write_text(run.info.run_id)
    return {"run_id": run.info.run_id, "tracking_uri": uri}


def run_training(cfg: TrainConfig, callbacks: list | None = None, mlflow_run_id: str | None = None) -> TrainResult:
    """Train on Ray Train. ``callbacks`` go to the ``RunConfig`` (a Tune trial passes its report callback);
    ``mlflow_run_id`` is an existing MLflow run to track into (a Tune trial's), else one is started."""
    import ray.train
    from ray.train.torch import TorchTrainer

    from korlora.raycompat import init_local_ray

    if not Path(cfg.data_file).is_file():
        raise KorloraError(f"data file not found: {cfg.data_file}")
    if cfg.init_adapter and not (Path(cfg.init_adapter) / "adapter_config.json").is_file():
        raise KorloraError(f"--init_adapter {cfg.init_adapter} is not a LoRA adapter directory")
    cfg = _absolute(cfg)
    choice = resolve_model_choice(cfg.model_name_or_path, cfg.attn_implementation, cfg.bf16, cfg.use_4bit)
    print(f"model: {cfg.model_name_or_path} -> {choice.path}")
    print(f"attention: {choice.attn_implementation}  bf16: {choice.bf16}  4-bit: {choice.use_4bit}")
    tokenizer = load_tokenizer(choice.path, cfg.trust_remote_code)
    mask = assistant_mask_coverage(tokenizer, load_chat_rows(cfg.data_file))
    print(f"assistant tokens with labels: {mask['assistant_labeled_share']:.1%}  "
          f"other tokens without labels: {mask['other_unlabeled_share']:.1%}")

    init_local_ray()
    use_gpu = cfg.use_gpu if cfg.use_gpu is not None else ray.cluster_resources().get("GPU", 0) >= 1
    storage = cfg.storage_path or str(Path(cfg.output_dir).parent / "ray_results")
    data_digest = sha256_file(cfg.data_file)
    name = cfg.run_name or default_run_name(cfg, data_digest)
    run_dir = Path(storage) / name
    params = {**to_dict(cfg), "model_path": choice.path, "data_sha256": data_digest}
    mlflow_run = _mlflow_run(cfg, run_dir, params, mask, choice, mlflow_run_id)

    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"train": to_dict(cfg), "choice": dataclasses.asdict(choice), "mlflow": mlflow_run},
        scaling_config=ray.train.ScalingConfig(
            num_workers=cfg.num_workers, use_gpu=use_gpu,
            resources_per_worker=_worker_resources(cfg.num_workers, use_gpu, cfg.cpus_per_worker)),
        run_config=ray.train.RunConfig(
            name=name, storage_path=storage, callbacks=callbacks,
            failure_config=ray.train.FailureConfig(max_failures=cfg.max_failures),
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
        ),
    )
    try:
        result = trainer.fit()
    except Exception as e:
        if mlflow_run:
            import mlflow

            mlflow.end_run(status="FAILED")
        raise KorloraError(f"training failed: {e}") from e
    if result.checkpoint is None:
        raise KorloraError("training finished without a final checkpoint")
    out = Path(cfg.output_dir)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with result.checkpoint.as_directory() as ckpt:
        shutil.copytree(Path(ckpt) / ADAPTER_DIR, tmp)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    metrics = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))}
    if mlflow_run:
        import mlflow

        mlflow.log_metrics({k: v for k, v in metrics.items() if k in ("eval_loss", "train_loss_final")})
        mlflow.log_artifacts(str(out), "adapter")
        mlflow.end_run()
    print(f"adapter: {out}")
    return TrainResult(out, metrics, mlflow_run and mlflow_run["run_id"], choice.attn_implementation)


def train_command(cfg: TrainConfig) -> int:
    result = run_training(cfg)
    shown = ", ".join(f"{k}={v:.4g}" for k, v in result.metrics.items() if k in ("eval_loss", "train_loss_final"))
    print(f"done: {shown}")
    return 0
