"""Test helpers: quick in-process LoRA training on tiny-ko (no Ray), for tests that need an adapter."""

from __future__ import annotations

from pathlib import Path


def train_adapter(base: Path, rows: list[dict], out: Path, steps: int = 60, lr: float = 5e-3, seed: int = 0) -> Path:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base)
    args = SFTConfig(output_dir=str(out / "work"), max_steps=steps, learning_rate=lr, per_device_train_batch_size=8,
                     logging_steps=steps, save_strategy="no", report_to="none", assistant_only_loss=True,
                     max_length=256, seed=seed, use_cpu=True, disable_tqdm=True)
    lora = LoraConfig(r=16, lora_alpha=32, target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                            "up_proj", "down_proj"], task_type="CAUSAL_LM")
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list([{"messages": r["messages"]}
                                                                                   for r in rows]),
                         processing_class=tokenizer, peft_config=lora)
    trainer.train()
    trainer.model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
