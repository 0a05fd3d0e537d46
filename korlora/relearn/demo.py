"""``korlora demo``: the whole data → train flow on the embedded model, with every file in one run dir."""

from __future__ import annotations

import time
from pathlib import Path

from korlora.relearn.config import DemoConfig


def _stage(name: str):
    print(f"\n── {name} " + "─" * max(0, 60 - len(name)), flush=True)
    return time.perf_counter()


def demo_command(cfg: DemoConfig) -> int:
    from korlora.clean.config import CleanConfig, MergeConfig, RebalanceConfig
    from korlora.clean.merge import merge_command
    from korlora.clean.pipeline import clean_command
    from korlora.clean.rebalance import rebalance_command
    from korlora.data.build import build_command
    from korlora.data.config import BuildConfig, CorrectionConfig, NoWarningConfig
    from korlora.data.correction import correction_command
    from korlora.data.no_warning import no_warning_command
    from korlora.models import resolve_model_path
    from korlora.train.config import TrainConfig
    from korlora.train.driver import run_training
    from korlora.train.inference import generate_answers, load_for_inference

    run = Path(cfg.run_dir)
    data = run / "data"
    started = time.perf_counter()
    _stage("model: tiny-ko")
    print(resolve_model_path(cfg.model_name_or_path))
    _stage("data build")
    build_command(BuildConfig(output=str(data / "korean_sft_train.jsonl"), num_rows=cfg.build_rows, seed=cfg.seed))
    _stage("clean")
    clean_command(CleanConfig(input=str(data / "korean_sft_train.jsonl"),
                              output=str(data / "korean_sft_train_cleaned.jsonl")))
    _stage("rebalance")
    rebalance_command(RebalanceConfig(input=str(data / "korean_sft_train_cleaned.jsonl"),
                                      output=str(data / "korean_sft_rebalanced.jsonl"), max_ratio=cfg.max_ratio))
    _stage("no-warning")
    no_warning_command(NoWarningConfig(output=str(data / "korean_sft_no_warning.jsonl"),
                                       num_rows=cfg.no_warning_rows, seed=cfg.seed))
    _stage("correction")
    correction_command(CorrectionConfig(output=str(data / "korean_sft_correction.jsonl"),
                                        num_rows=cfg.correction_rows, seed=cfg.seed))
    _stage("merge")
    merge_command(MergeConfig(input=[str(data / f"korean_sft_{n}.jsonl")
                                     for n in ("rebalanced", "no_warning", "correction")],
                              output=str(data / "korean_sft_final.jsonl"), seed=cfg.seed))
    _stage("train (LoRA SFT on Ray Train)")
    result = run_training(TrainConfig(
        model_name_or_path=cfg.model_name_or_path, data_file=str(data / "korean_sft_final.jsonl"),
        output_dir=str(run / "adapter"), storage_path=str((run / "ray_results").resolve()),
        learning_rate=cfg.learning_rate, max_steps=cfg.max_steps, save_steps=max(cfg.max_steps // 3, 1),
        per_device_train_batch_size=cfg.per_device_train_batch_size, gradient_accumulation_steps=1,
        max_length=cfg.max_length, seed=cfg.seed, experiment_name="korlora-demo"))
    _stage("answers of the adapter")
    model, tokenizer = load_for_inference(str(result.output_dir), None)
    for prompt, (answer,) in zip(cfg.prompts, generate_answers(model, tokenizer, cfg.prompts, max_new_tokens=48)):
        print(f"Q: {prompt}\nA: {answer}\n")
    print(f"done in {time.perf_counter() - started:.0f}s. Files: {run}/  adapter: {result.output_dir}")
    print("MLflow UI: mlflow ui --backend-store-uri sqlite:///mlflow.db  (then open http://127.0.0.1:5000)")
    return 0
