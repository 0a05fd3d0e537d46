"""The Ray Train worker: one TRL ``SFTTrainer`` per worker, DDP across workers, checkpoints to Ray."""

from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from korlora.train.config import TrainConfig
from korlora.train.model import ModelChoice, load_base_model, load_tokenizer, lora_config
from korlora.train.sft import load_chat_rows, split_rows, start_weighted_loss

ADAPTER_DIR = "adapter"


def _trainer_class(start_weight: float, start_tokens: int):
    from trl import SFTTrainer

    if start_tokens <= 0 or start_weight == 1.0:
        return SFTTrainer

    class StartWeightedSFTTrainer(SFTTrainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            loss = start_weighted_loss(outputs.logits, labels, start_weight, start_tokens, num_items_in_batch)
            return (loss, outputs) if return_outputs else loss

    return StartWeightedSFTTrainer


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

    class KillOnce(TrainerCallback):
        """Test hook: SIGKILL this worker once at a given step, to prove checkpoint recovery."""

        def __init__(self, step: int, marker: str) -> None:
            self.step, self.marker = step, marker

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step >= self.step and not os.path.exists(self.marker):
                Path(self.marker).write_text(str(state.global_step))
                os.kill(os.getpid(), signal.SIGKILL)

    callbacks = []
    if rank == 0 and mlflow_run:
        callbacks.append(MLflowStepMetrics())
    kill_at = os.environ.get("KORLORA_TEST_KILL_AT_STEP")
    if kill_at and rank == 0:
        callbacks.append(KillOnce(int(kill_at), os.environ["KORLORA_TEST_KILL_MARKER"]))
    return callbacks


def train_loop_per_worker(config: dict[str, Any]) -> None:
    import ray.train
    import torch
    from peft import PeftModel
    from ray.train.huggingface.transformers import RayTrainReportCallback, prepare_trainer
    from trl import SFTConfig

    cfg = TrainConfig(**config["train"])
    choice = ModelChoice(**config["choice"])
    rank = ray.train.get_context().get_world_rank()
    cuda = torch.cuda.is_available()

    tokenizer = load_tokenizer(choice.path, cfg.trust_remote_code)
    model = load_base_model(choice, cfg.trust_remote_code)
    peft_config = None
    if cfg.init_adapter:
        model = PeftModel.from_pretrained(model, cfg.init_adapter, is_trainable=True)
    else:
        peft_config = lora_config(model, cfg.lora_r, cfg.lora_alpha, cfg.lora_dropout, cfg.target_modules)

    from datasets import Dataset

    train_rows, eval_rows = split_rows(load_chat_rows(cfg.data_file), cfg.eval_share)
    work_dir = tempfile.mkdtemp(prefix="korlora-sft-")
    args = SFTConfig(
        output_dir=work_dir,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.num_epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.per_device_train_batch_size,
        per_device_eval_batch_size=cfg.per_device_train_batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of total steps
        weight_decay=cfg.weight_decay,
        lr_scheduler_type="cosine",
        bf16=choice.bf16,
        use_cpu=not cuda,
        gradient_checkpointing=cfg.gradient_checkpointing,
        gradient_checkpointing_kwargs={"use_reentrant": False},
        ddp_find_unused_parameters=False,
        assistant_only_loss=True,
        max_length=cfg.max_length,
        packing=cfg.packing,
        padding_free=cfg.packing and choice.attn_implementation.startswith("flash"),
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        eval_strategy="steps" if eval_rows else "no",
        eval_steps=cfg.save_steps,
        save_total_limit=2,
        report_to="none",
        seed=cfg.seed,
        data_seed=cfg.seed,
        dataloader_num_workers=0,
        disable_tqdm=rank != 0,
    )
    trainer = _trainer_class(cfg.start_loss_weight, cfg.start_tokens)(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
        processing_class=tokenizer,
        peft_config=peft_config,
        callbacks=[RayTrainReportCallback(), *_callbacks(rank, config.get("mlflow"))],
    )
    trainer = prepare_trainer(trainer)

    resume_from = None
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as restored:
            resume_from = os.path.join(work_dir, "resume")
            import shutil

            shutil.copytree(os.path.join(restored, RayTrainReportCallback.CHECKPOINT_NAME), resume_from)
    trainer.train(resume_from_checkpoint=resume_from)

    metrics = {"train_loss_final": next((h["train_loss"] for h in reversed(trainer.state.log_history)
                                         if "train_loss" in h), float("nan")),
               "global_step": trainer.state.global_step}
    if eval_rows:
        metrics["eval_loss"] = trainer.evaluate()["eval_loss"]
    with tempfile.TemporaryDirectory() as tmp:
        final = None
        if rank == 0:
            trainer.model.save_pretrained(os.path.join(tmp, ADAPTER_DIR))
            tokenizer.save_pretrained(os.path.join(tmp, ADAPTER_DIR))
            final = ray.train.Checkpoint.from_directory(tmp)
        ray.train.report({**metrics, "final": 1}, checkpoint=final)
