"""The Ray Train worker: one TRL trainer per worker (``SFTTrainer``, or ``DPOTrainer`` / ``ORPOTrainer`` on
preference pairs), DDP across workers, checkpoints to Ray."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from korlora.errors import KorloraError
from korlora.logs import verbose
from korlora.train.config import TrainConfig, method_config_class
from korlora.train.model import Hardware, load_base_model, load_tokenizer, lora_config, resolve_hardware
from korlora.train.sft import load_chat_rows, split_rows, start_weighted_loss_func

ADAPTER_DIR = "adapter"
FINAL_METRICS = "final_metrics.json"  # only in the final checkpoint: the run is complete
STEP_LINE_KEYS = ("loss", "eval_loss", "rewards/margins", "eval_rewards/margins", "objective",
                  "start_disclaimer_share", "learning_rate", "train_loss")


def _callbacks(rank: int, mlflow_run: dict | None):
    from transformers import TrainerCallback

    class MLflowStepMetrics(TrainerCallback):
        """Step metrics to the driver's MLflow run, from rank 0 only."""

        def __init__(self) -> None:
            from mlflow import MlflowClient

            self.client = MlflowClient(tracking_uri=mlflow_run["tracking_uri"])

        def on_log(self, args, state, control, logs=None, **kwargs):
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            metrics = [Metric(k, float(v), now, state.global_step) for k, v in (logs or {}).items()
                       if isinstance(v, (int, float))]
            if metrics:
                self.client.log_batch(mlflow_run["run_id"], metrics=metrics)

        def on_evaluate(self, args, state, control, metrics=None, **kwargs):
            # what StartShares added after the eval was logged
            extra = {k: v for k, v in (metrics or {}).items() if k.startswith("start_") or k == "objective"}
            if extra:
                self.on_log(args, state, control, logs=extra)

    class KillOnce(TrainerCallback):
        """Test hook: SIGKILL this worker once at a given step, to prove checkpoint recovery."""

        def __init__(self, step: int, marker: str) -> None:
            self.step, self.marker = step, marker

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= self.step and not os.path.exists(self.marker):
                Path(self.marker).write_text(str(state.global_step))
                # Ray Train's controller collects reported checkpoints when it polls the workers: let one poll
                # pass, or a loaded machine kills the worker before the last checkpoint is registered
                time.sleep(2 * float(os.environ.get("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", 2.0)) + 1)
                os.kill(os.getpid(), signal.SIGKILL)

    class StepLines(TrainerCallback):
        """One line per logging step on rank 0 (quiet mode's progress, instead of tqdm bars and dicts)."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            shown = {k: v for k, v in (logs or {}).items() if k in STEP_LINE_KEYS and isinstance(v, (int, float))}
            if shown:
                total = f"/{state.max_steps}" if state.max_steps > 0 else ""
                values = " · ".join(f"{k} {v:.4g}" for k, v in shown.items())
                print(f"step {state.global_step}{total} · {values}", flush=True)

    callbacks = []
    if rank == 0 and not verbose():
        callbacks.append(StepLines())
    if rank == 0 and mlflow_run:
        callbacks.append(MLflowStepMetrics())
    kill_at = os.environ.get("KORLORA_TEST_KILL_AT_STEP")
    if kill_at and rank == 0:
        callbacks.append(KillOnce(int(kill_at), os.environ["KORLORA_TEST_KILL_MARKER"]))
    return callbacks


def _start_callbacks(cfg: TrainConfig, rank: int, tokenizer) -> list:
    """With ``start_penalty``: at every evaluation, greedy answers to the held-out diagnosis prompts and
    their start shares, plus ``objective``, added to the eval metrics that Ray Train (and Tune) report."""
    if cfg.start_penalty is None:
        return []
    from transformers import TrainerCallback

    from korlora.diagnose.report import answer_stats, load_prompts
    from korlora.train.inference import generate_answers

    prompts = [p["text"] for p in load_prompts()]

    class StartShares(TrainerCallback):
        def on_evaluate(self, args, state, control, model=None, metrics=None, **kwargs):
            if metrics is None or "eval_loss" not in metrics:
                return
            if rank == 0:  # Ray reports rank 0's metrics; other ranks only keep the report calls in step
                was_training = model.training
                model.eval()
                answers = [a[0] for a in generate_answers(model, tokenizer, prompts, max_new_tokens=32)]
                model.train(was_training)
                stats = answer_stats(answers)
                extra = {"start_hangul_share": stats["hangul_start_share"],
                         "start_punct_share": stats["punct_start_share"],
                         "start_disclaimer_share": stats["disclaimer_start_share"]}
                extra["objective"] = metrics["eval_loss"] + cfg.start_penalty * (
                    extra["start_punct_share"] + extra["start_disclaimer_share"])
            else:
                extra = {"objective": metrics["eval_loss"]}
            metrics.update(extra)
            # the eval entry that Ray's report callback reads at the next save
            if state.log_history and "eval_loss" in state.log_history[-1]:
                state.log_history[-1].update(extra)

    return [StartShares()]


def _finished_run(checkpoint) -> dict | None:
    """The metrics of a run that already finished (its final checkpoint holds only the adapter): a re-run
    with the same settings restores it, and there is nothing left to train."""
    if checkpoint is None:
        return None
    with checkpoint.as_directory() as restored:
        marker = Path(restored) / FINAL_METRICS
        return json.loads(marker.read_text()) if marker.is_file() else None


def trainer_args(cfg: TrainConfig, hardware: Hardware, work_dir: str, has_eval: bool, rank: int):
    """The method's TRL config (``SFTConfig``, ``DPOConfig``, ``ORPOConfig``) from the training options:
    korlora's defaults, then every option that config knows by name (and ``cfg.sft``), then what this worker
    decided (precision, device) and what korlora needs."""
    defaults = {"per_device_eval_batch_size": cfg.per_device_train_batch_size, "ddp_find_unused_parameters": False,
                "gradient_checkpointing_kwargs": {"use_reentrant": False}, "save_strategy": "steps",
                "eval_strategy": "steps" if has_eval else "no", "eval_steps": cfg.save_steps, "save_total_limit": 2,
                "data_seed": cfg.seed, "dataloader_num_workers": 0, "disable_tqdm": rank != 0 or not verbose()}
    managed = {"output_dir": work_dir, "bf16": hardware.bf16, "use_cpu": hardware.device == "cpu", "report_to": "none"}
    if cfg.method == "sft":
        defaults["padding_free"] = cfg.packing and hardware.attn_implementation.startswith("flash")
        managed["assistant_only_loss"] = True
    return method_config_class(cfg.method)(**{**defaults, **cfg.sft_values()}, **managed)


def _datasets(cfg: TrainConfig) -> tuple[list[dict], list[dict]]:
    """Training and eval rows: chat rows for SFT, conversational preference pairs for DPO and ORPO."""
    if cfg.method == "sft":
        if cfg.eval_file:
            return ([{"messages": r["messages"]} for r in load_chat_rows(cfg.data_file)],
                    [{"messages": r["messages"]} for r in load_chat_rows(cfg.eval_file)])
        return split_rows(load_chat_rows(cfg.data_file), cfg.eval_share)
    from korlora.train.preference import load_pairs, split_pairs, trainer_row

    if cfg.eval_file:
        return [trainer_row(p) for p in load_pairs(cfg.data_file)], [trainer_row(p) for p in load_pairs(cfg.eval_file)]
    return split_pairs(load_pairs(cfg.data_file), cfg.eval_share)


def train_loop_per_worker(config: dict[str, Any]) -> None:
    import ray.train
    from peft import PeftModel
    from ray.train.huggingface.transformers import RayTrainReportCallback, prepare_trainer

    from korlora.logs import quiet_libraries
    from korlora.models import resolve_model_path

    quiet_libraries()  # after the imports above, so that it reaches the loggers they made
    cfg = TrainConfig(**config["train"])
    rank = ray.train.get_context().get_world_rank()
    checkpoint = ray.train.get_checkpoint()
    done = _finished_run(checkpoint)
    if done is not None:
        if rank == 0:
            print("this run already finished: reusing its adapter", flush=True)
        ray.train.report({**done, "reused": 1}, checkpoint=checkpoint if rank == 0 else None)
        return

    hardware = resolve_hardware(cfg.attn_implementation, cfg.bf16, cfg.use_4bit)
    path = resolve_model_path(cfg.model_name_or_path)
    if rank == 0:
        print(f"worker hardware: {hardware.describe()}", flush=True)
        _log_hardware(config.get("mlflow"), hardware)
    tokenizer = load_tokenizer(path, cfg.trust_remote_code)
    model = load_base_model(path, hardware, cfg.trust_remote_code)
    peft_config = None
    if cfg.init_adapter:
        model = PeftModel.from_pretrained(model, cfg.init_adapter, is_trainable=True)
    else:
        peft_config = lora_config(model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.lora_target_modules)

    from datasets import Dataset

    train_rows, eval_rows = _datasets(cfg)
    work_dir = tempfile.mkdtemp(prefix=f"korlora-{cfg.method}-")
    common = dict(model=model, args=trainer_args(cfg, hardware, work_dir, bool(eval_rows), rank),
                  train_dataset=Dataset.from_list(train_rows),
                  eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
                  processing_class=tokenizer, peft_config=peft_config,
                  callbacks=[*_start_callbacks(cfg, rank, tokenizer), RayTrainReportCallback(),
                             *_callbacks(rank, config.get("mlflow"))])
    if cfg.method == "sft":
        from trl import SFTTrainer

        weighted = cfg.start_tokens > 0 and cfg.start_loss_weight != 1.0
        loss_func = start_weighted_loss_func(cfg.start_loss_weight, cfg.start_tokens) if weighted else None
        trainer = SFTTrainer(**common, compute_loss_func=loss_func)
    else:
        from korlora.train.preference import preference_trainer

        trainer = preference_trainer(cfg.method, **common)
    if len(trainer.train_dataset) == 0:
        raise KorloraError(f"no training row is left after tokenisation: {len(train_rows)} rows had no answer token "
                           f"within --max_length {cfg.max_length} (their prompts are longer); raise --max_length")
    trainer = prepare_trainer(trainer)
    if not verbose():  # StepLines prints the progress; the printer would repeat every log as a dict
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)

    resume_from = None
    if checkpoint:
        with checkpoint.as_directory() as restored:
            resume_from = os.path.join(work_dir, "resume")
            shutil.copytree(os.path.join(restored, RayTrainReportCallback.CHECKPOINT_NAME), resume_from)
    trainer.train(resume_from_checkpoint=resume_from)

    metrics = {"train_loss_final": next((h["train_loss"] for h in reversed(trainer.state.log_history)
                                         if "train_loss" in h), float("nan")),
               "global_step": trainer.state.global_step, "final": 1,
               **{f"hardware_{k}": v for k, v in asdict(hardware).items()}}
    if eval_rows:
        evaluation = trainer.evaluate()
        metrics.update({k: v for k, v in evaluation.items() if k in ("eval_loss", "objective")
                        or k.startswith(("start_", "eval_rewards/"))})
    with tempfile.TemporaryDirectory() as tmp:
        final = None
        if rank == 0:
            # only the trained adapter: DPO adds a frozen copy of an --init_adapter named "ref"
            trainer.model.save_pretrained(os.path.join(tmp, ADAPTER_DIR), selected_adapters=["default"])
            tokenizer.save_pretrained(os.path.join(tmp, ADAPTER_DIR))
            Path(tmp, FINAL_METRICS).write_text(json.dumps(metrics))
            final = ray.train.Checkpoint.from_directory(tmp)
        ray.train.report(metrics, checkpoint=final)


def _log_hardware(mlflow_run: dict | None, hardware: Hardware) -> None:
    """What this worker chose, as params of the training run (rank 0)."""
    if not mlflow_run:
        return
    from mlflow import MlflowClient
    from mlflow.entities import Param

    MlflowClient(tracking_uri=mlflow_run["tracking_uri"]).log_batch(mlflow_run["run_id"], params=[
        Param("device_used", hardware.device), Param("bf16_used", str(hardware.bf16)),
        Param("attn_implementation_used", hardware.attn_implementation),
        Param("use_4bit_used", str(hardware.use_4bit))])
