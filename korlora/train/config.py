"""Configs of the training stage: ``korlora train``, ``korlora chat`` and ``korlora export``."""

from __future__ import annotations

from dataclasses import dataclass, field

PROFILES = {
    # the seed's run_relearn_h100.sh: batch 4, accumulation 2, bf16, flash-attention attempt, no 4-bit
    "h100": {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 2, "bf16": True,
             "attn_implementation": "auto", "use_4bit": False},
    "cpu": {"bf16": False, "use_4bit": False},
}


@dataclass
class TrainConfig:
    """LoRA / QLoRA supervised fine-tuning of a chat model with TRL's ``SFTTrainer`` on Ray Train.

    Model: ``--model_name_or_path`` (``tiny-ko`` or any name/path ``from_pretrained`` accepts).
    Data: a chat JSONL file (``--data_file``); a held-out share becomes the eval split.
    Loss: assistant tokens only; optional extra weight on the first answer tokens.
    """

    # model
    model_name_or_path: str = field(default="Qwen/Qwen2.5-1.5B", metadata={"help": "base model name or path"})
    output_dir: str = field(default="output/korean_lora", metadata={"help": "where the adapter and tokenizer go"})
    trust_remote_code: bool = field(default=False, metadata={"help": "allow model code from the hub"})
    attn_implementation: str = field(
        default="auto", metadata={"help": "auto (flash_attention_2 on GPU when importable, else sdpa) | sdpa | eager "
                                          "| flash_attention_2"})
    use_4bit: bool = field(default=False, metadata={"help": "QLoRA: load the base in 4-bit NF4 (CUDA only)"})
    bf16: bool | None = field(default=None, metadata={"help": "bf16 (default: on where the device supports it)"})
    profile: str | None = field(default=None, metadata={"help": f"preset: {', '.join(PROFILES)}"})
    # data
    data_file: str = field(default="data/korean_sft_final.jsonl", metadata={"help": "chat JSONL to train on"})
    eval_share: float = field(default=0.05, metadata={"help": "share of rows held out for eval loss"})
    eval_file: str | None = field(default=None, metadata={
        "help": "chat JSONL to evaluate on instead of a held-out share of data_file"})
    max_length: int = field(default=1024, metadata={"help": "longest tokenised row (longer rows are truncated)"})
    packing: bool = field(default=False, metadata={"help": "pack rows into max_length sequences"})
    # optimisation
    learning_rate: float = field(default=2e-4, metadata={"help": "peak learning rate"})
    num_epochs: float = field(default=3.0, metadata={"help": "epochs"})
    max_steps: int = field(default=-1, metadata={"help": "stop after this many steps (-1: by epochs)"})
    per_device_train_batch_size: int = field(default=2, metadata={"help": "rows per device per step"})
    gradient_accumulation_steps: int = field(default=4, metadata={"help": "steps per optimizer update"})
    warmup_ratio: float = field(default=0.03, metadata={"help": "share of steps with linear warm-up"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    gradient_checkpointing: bool = field(default=False, metadata={"help": "trade compute for memory"})
    seed: int = field(default=42, metadata={"help": "seed"})
    # LoRA
    lora_r: int = field(default=16, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha"})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout"})
    target_modules: list[str] | None = field(
        default=None, metadata={"help": "modules to adapt (default: every linear layer except the LM head)"})
    init_adapter: str | None = field(default=None, metadata={"help": "continue training this LoRA adapter"})
    start_loss_weight: float = field(default=1.0, metadata={"help": "loss weight of the first answer tokens"})
    start_tokens: int = field(default=0, metadata={"help": "how many first answer tokens get start_loss_weight"})
    start_penalty: float | None = field(default=None, metadata={
        "help": "also diagnose answer starts at every eval and report objective = eval_loss + start_penalty × "
                "(disclaimer-start + punctuation-start share of greedy answers to the held-out prompts)"})
    # Ray Train
    num_workers: int = field(default=1, metadata={"help": "Ray Train workers (one GPU each when GPUs exist)"})
    use_gpu: bool | None = field(default=None, metadata={"help": "train on GPUs (default: when the cluster has them)"})
    cpus_per_worker: int | None = field(default=None, metadata={
        "help": "CPUs per CPU worker (default: the cluster's free CPUs shared by the workers)"})
    storage_path: str | None = field(default=None, metadata={"help": "checkpoint storage (default: <output_dir>/ray)"})
    run_name: str | None = field(default=None, metadata={"help": "run name; the same name resumes (default: by output)"})
    max_failures: int = field(default=2, metadata={"help": "worker failures to recover from via checkpoints"})
    save_steps: int = field(default=50, metadata={"help": "checkpoint (and eval) every this many steps"})
    logging_steps: int = field(default=5, metadata={"help": "log metrics every this many steps"})
    # tracking
    experiment_name: str = field(default="korlora-train", metadata={"help": "MLflow experiment"})
    mlflow: bool = field(default=True, metadata={"help": "track the run in MLflow"})
    data_manifest: str | None = field(default=None, metadata={"help": "manifest JSON of the data, logged with the run"})

    def __post_init__(self) -> None:
        if self.profile is not None:
            if self.profile not in PROFILES:
                raise ValueError(f"unknown profile {self.profile!r}; choose from {', '.join(PROFILES)}")
            for key, value in PROFILES[self.profile].items():
                setattr(self, key, value)
        if self.attn_implementation not in ("auto", "sdpa", "eager", "flash_attention_2"):
            raise ValueError(f"unknown attn_implementation {self.attn_implementation!r}")
        if not 0 <= self.eval_share < 0.5:
            raise ValueError("--eval_share must be in [0, 0.5)")
        if self.learning_rate <= 0:
            raise ValueError("--learning_rate must be positive")
        if self.num_workers < 1:
            raise ValueError("--num_workers must be at least 1")
        if self.start_loss_weight <= 0:
            raise ValueError("--start_loss_weight must be positive")
        if self.start_penalty is not None and self.start_penalty < 0:
            raise ValueError("--start_penalty must be zero or more")


@dataclass
class ChatConfig:
    """Generate answers from a base model or a LoRA adapter with the model's chat template."""

    adapter: str | None = field(default=None, metadata={"help": "LoRA adapter directory (its base is loaded too)"})
    model_name_or_path: str | None = field(default=None, metadata={"help": "base model (when no adapter)"})
    prompt: list[str] | None = field(default=None, metadata={"help": "prompt(s); none: interactive"})
    system: str | None = field(default=None, metadata={"help": "system prompt"})
    max_new_tokens: int = field(default=256, metadata={"help": "longest answer"})
    temperature: float = field(default=0.0, metadata={"help": "0: greedy"})
    top_p: float = field(default=0.9, metadata={"help": "nucleus sampling"})
    seed: int = field(default=0, metadata={"help": "sampling seed"})

    def __post_init__(self) -> None:
        if not self.adapter and not self.model_name_or_path:
            raise ValueError("give --adapter or --model_name_or_path")


@dataclass
class ExportConfig:
    """Merge a LoRA adapter into its base model and save the result as safetensors."""

    adapter: str | None = field(default=None, metadata={"help": "LoRA adapter directory"})
    out: str | None = field(default=None, metadata={"aliases": ["-o"], "help": "output directory"})
    dtype: str = field(default="auto", metadata={"help": "auto | float32 | bfloat16 | float16"})

    def __post_init__(self) -> None:
        if not self.adapter or not self.out:
            raise ValueError("give --adapter and --out")
