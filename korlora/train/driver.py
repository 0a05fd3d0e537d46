"""``korlora train``: the Ray Train driver around :func:`korlora.train.worker.train_loop_per_worker`.

The driver decides only what a driver can know: whether the cluster has (or its autoscaler can launch) GPU
nodes, so that workers ask for GPUs (:func:`korlora.train.cluster.resolve_use_gpu`), and whether the chat
template can be trained on (the pre-flight check and the assistant mask, from the tokenizer alone; for
``--method dpo|orpo``, that every line of the pair file is a valid pair). Device,
dtype, attention kernel and 4-bit loading are chosen by each worker, on the machine that runs the model,
and reported back. The driver opens the MLflow run, launches a ``TorchTrainer``, and finally copies the
adapter from the last checkpoint into ``output_dir`` and logs it. Re-running with the same settings finds
the finished run and reuses its adapter; ``max_failures`` restarts killed workers from the last checkpoint.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from korlora.config import to_dict
from korlora.errors import KorloraError
from korlora.io import sha256_file, write_jsonl
from korlora.logs import VERBOSE_ENV, verbose
from korlora.train.config import TrainConfig
from korlora.train.model import load_tokenizer
from korlora.train.sft import assistant_mask_coverage, load_chat_rows
from korlora.train.worker import ADAPTER_DIR, train_loop_per_worker


@dataclass
class TrainResult:
    output_dir: Path
    metrics: dict
    mlflow_run_id: str | None
    hardware: dict


def _absolute(cfg: TrainConfig) -> TrainConfig:
    """Workers chdir into their own run directory, so every path they get must be absolute."""
    def fix(p: str | None) -> str | None:
        return str(Path(p).resolve()) if p and "://" not in p else p

    model = cfg.model_name_or_path
    if Path(model).exists():
        model = str(Path(model).resolve())
    return dataclasses.replace(
        cfg, model_name_or_path=model, output_dir=str(Path(cfg.output_dir).resolve()),
        data_file=str(Path(cfg.data_file).resolve()), init_adapter=fix(cfg.init_adapter),
        storage_path=fix(cfg.storage_path), data_manifest=fix(cfg.data_manifest), eval_file=fix(cfg.eval_file))


def _worker_resources(num_workers: int, use_gpu: bool, cpus_per_worker: int | None = None) -> dict:
    """One GPU per worker on GPU clusters; on CPU, share the machine's cores so torch uses them all
    (Ray sets each worker's thread count from its CPUs)."""
    import ray

    if use_gpu:
        return {"CPU": cpus_per_worker or 1, "GPU": 1}
    if cpus_per_worker:
        return {"CPU": cpus_per_worker}
    cpus = int(ray.available_resources().get("CPU", 1))
    return {"CPU": max(1, cpus // num_workers)}


def _worker_env() -> dict[str, str]:
    """Ray Train's print patch sends every ``print`` of a worker to its logger, even while a library
    captures stdout: datasets' fingerprinting (dill disassembling the SFT transforms into a captured
    stream) then fills the terminal with bytecode. Plain prints still reach the driver's terminal."""
    env = {"RAY_TRAIN_ENABLE_PRINT_PATCH": "0"}
    if verbose():
        env[VERBOSE_ENV] = "1"
    else:
        env["PYTHONWARNINGS"] = "ignore"
    return env


def default_run_name(cfg: TrainConfig, data_digest: str) -> str:
    settings = {k: v for k, v in to_dict(cfg).items() if k not in ("run_name", "storage_path", "max_failures")}
    key = hashlib.sha256(json.dumps([settings, data_digest], sort_keys=True, default=str).encode()).hexdigest()
    return f"{Path(cfg.output_dir).name}-{key[:10]}"


def preflight(cfg: TrainConfig) -> dict:
    """Checks that need only the tokenizer, before any worker starts: the chat template's family is one
    korlora can vouch for, and the assistant-only mask labels the answers (SFT) or every pair is valid and
    its prompt tokens are a prefix of prompt + answer (DPO, ORPO)."""
    from korlora.models import resolve_model_path
    from korlora.models.check import check_chat_template

    tokenizer = load_tokenizer(resolve_model_path(cfg.model_name_or_path), cfg.trust_remote_code)
    template = check_chat_template(tokenizer)
    if cfg.method != "sft":
        return _preflight_pairs(cfg, tokenizer, template.family)
    mask = assistant_mask_coverage(tokenizer, load_chat_rows(cfg.data_file))
    print(f"chat template: {template.family} · assistant tokens with labels {mask['assistant_labeled_share']:.1%}"
          f" · other tokens without labels {mask['other_unlabeled_share']:.1%}")
    return mask


def _preflight_pairs(cfg: TrainConfig, tokenizer, family: str) -> dict:
    """Every line of the pair files is a pair or a reject; with rejects, write them next to the data and stop
    (as SFT training does for chat rows), so that no line is dropped unseen."""
    from korlora.train.preference import prompt_prefix_share, read_pairs

    pairs: dict[str, list[dict]] = {}
    for path in filter(None, (cfg.data_file, cfg.eval_file)):
        result = read_pairs(path)
        if result.rejects:
            write_jsonl(f"{path}.rejects.jsonl", result.rejects)
            first = result.rejects[0]
            raise KorloraError(f"{path}: {len(result.rejects)} of {result.lines} lines are not valid pairs (first: "
                               f"line {first['line']}, {first['reason']}: {first['detail']}); every reject is in "
                               f"{path}.rejects.jsonl: fix or remove those lines")
        if not result.rows:
            raise KorloraError(f"{path} has no pairs")
        pairs[path] = result.rows
    train = pairs[cfg.data_file]
    share = prompt_prefix_share(tokenizer, train)
    print(f"chat template: {family} · {len(train)} preference pairs · prompt a prefix of prompt + answer in "
          f"{share:.1%}")
    if share < 1:
        print("warning: where the prompt is not a prefix, TRL cuts the prompt's end and the answer starts elsewhere")
    return {"preference_pairs": len(train), "prompt_prefix_share": share}


def _copy_adapter(checkpoint, out: Path) -> None:
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with checkpoint.as_directory() as ckpt:
        shutil.copytree(Path(ckpt) / ADAPTER_DIR, tmp)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)


def run_training(cfg: TrainConfig, callbacks: list | None = None, mlflow_run_id: str | None = None) -> TrainResult:
    """Train on Ray Train. ``callbacks`` go to the ``RunConfig`` (a Tune trial passes its report callback);
    ``mlflow_run_id`` is an existing MLflow run to track into (a Tune trial's), else one is started (nested
    under the active run of a pipeline) or resumed (the same settings ran before)."""
    import ray.train
    from ray.train.torch import TorchTrainer

    from korlora.raycompat import init_local_ray
    from korlora.train.cluster import require_gpu_capacity, resolve_use_gpu

    if not Path(cfg.data_file).is_file():
        raise KorloraError(f"data file not found: {cfg.data_file}")
    if cfg.init_adapter and not (Path(cfg.init_adapter) / "adapter_config.json").is_file():
        raise KorloraError(f"--init_adapter {cfg.init_adapter} is not a LoRA adapter directory")
    cfg = _absolute(cfg)
    init_local_ray()
    if cfg.use_4bit:
        require_gpu_capacity("--use_4bit (QLoRA)")
    use_gpu = resolve_use_gpu(cfg.use_gpu)
    mask = preflight(cfg)

    storage = cfg.storage_path or str(Path(cfg.output_dir).parent / "ray_results")
    data_digest = sha256_file(cfg.data_file)
    name = cfg.run_name or default_run_name(cfg, data_digest)
    run_dir = Path(storage) / name
    id_file = run_dir / "mlflow_run_id"
    resume_id = mlflow_run_id or (id_file.read_text().strip() if id_file.exists() else None)
    tracking = contextlib.nullcontext()
    if cfg.mlflow:
        from korlora.track.runs import tracked_run

        tracking = tracked_run(cfg.experiment_name, run_name=name, run_id=resume_id,
                               params={**to_dict(cfg), "data_sha256": data_digest, "use_gpu": use_gpu})
    with tracking as run:
        mlflow_run = None
        if run is not None:
            import mlflow

            from korlora.track.mlflow_utils import tracking_uri

            mlflow_run = {"run_id": run.info.run_id, "tracking_uri": tracking_uri()}
            if next(iter(mask)) not in run.data.metrics:  # not a resumed run
                mlflow.log_metrics(mask)
                if cfg.data_manifest and Path(cfg.data_manifest).exists():
                    mlflow.log_artifact(cfg.data_manifest, "data")
            run_dir.mkdir(parents=True, exist_ok=True)
            id_file.write_text(run.info.run_id)
        print(f"training {cfg.model_name_or_path} ({cfg.method}): {cfg.num_workers} worker(s) with "
              f"{'a GPU each' if use_gpu else 'CPUs'} · run {name}", flush=True)
        trainer = TorchTrainer(
            train_loop_per_worker,
            train_loop_config={"train": to_dict(cfg), "mlflow": mlflow_run},
            scaling_config=ray.train.ScalingConfig(
                num_workers=cfg.num_workers, use_gpu=use_gpu,
                resources_per_worker=_worker_resources(cfg.num_workers, use_gpu, cfg.cpus_per_worker)),
            run_config=ray.train.RunConfig(
                name=name, storage_path=storage, callbacks=callbacks,
                failure_config=ray.train.FailureConfig(max_failures=cfg.max_failures),
                checkpoint_config=ray.train.CheckpointConfig(num_to_keep=2),
                worker_runtime_env={"env_vars": _worker_env()},
                logging_config=ray.train.LoggingConfig(log_level="INFO" if verbose() else "WARNING"),
            ),
        )
        try:
            result = trainer.fit()
        except Exception as e:
            raise KorloraError(f"training failed: {e}") from e
        if result.checkpoint is None:
            raise KorloraError("training finished without a final checkpoint")
        out = Path(cfg.output_dir)
        _copy_adapter(result.checkpoint, out)
        hardware = {k.removeprefix("hardware_"): v for k, v in result.metrics.items() if k.startswith("hardware_")}
        metrics = {k: v for k, v in result.metrics.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool) and not k.startswith("hardware_")}
        if run is not None:
            import mlflow

            mlflow.log_metrics({k: v for k, v in metrics.items()
                                if k in ("eval_loss", "train_loss_final", "eval_rewards/margins")})
            mlflow.log_artifacts(str(out), "adapter")
    if hardware:
        print(f"trained on: {hardware.get('device')} · {'bf16' if hardware.get('bf16') else 'float32'} · "
              f"{hardware.get('attn_implementation')}{' · 4-bit' if hardware.get('use_4bit') else ''}")
    print(f"adapter: {out}")
    return TrainResult(out, metrics, run and run.info.run_id, hardware)


def train_command(cfg: TrainConfig) -> int:
    result = run_training(cfg)
    shown = ", ".join(f"{k}={v:.4g}" for k, v in result.metrics.items()
                      if k in ("eval_loss", "train_loss_final", "eval_rewards/margins"))
    print(f"done: {shown}")
    return 0
