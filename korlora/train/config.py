"""Configs of the training stage: ``korlora train``, ``korlora chat`` and ``korlora export``."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

PROFILE_DIR = Path(__file__).parent / "profiles"
# TrainConfig fields that are not SFTConfig fields of the same meaning: the worker maps them itself
NOT_SFT = frozenset({"output_dir", "bf16", "sft", "method"})
METHODS = ("sft", "dpo", "orpo")
# set by korlora whatever the method (the worker decides precision and device; SFT always trains on answers only)
MANAGED = frozenset({"output_dir", "bf16", "fp16", "use_cpu", "report_to", "assistant_only_loss"})


def profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


@dataclass
class TrainConfig:
    """LoRA / QLoRA fine-tuning of a chat model with TRL on Ray Train: supervised (``SFTTrainer``) or on
    preference pairs (``DPOTrainer``, ``ORPOTrainer``), chosen by ``method``.

    The one set of training options: ``korlora train`` takes them as flags, and ``relearn``, ``tune`` and
    ``demo`` take the same flags (and a ``train:`` mapping in their YAML). Options named like a field of the
    method's TRL config (``SFTConfig``, ``DPOConfig`` or ``ORPOConfig``) are passed to it under that name; any
    other setting of that config goes in ``sft`` (e.g. ``sft: {beta: 0.1}`` for DPO), checked against it.
    Device, dtype, attention kernel and 4-bit loading are decided by each Ray Train worker, on the machine
    that runs the model (``None``/``auto`` = what that machine supports).
    """

    # model
    model_name_or_path: str = field(default="Qwen/Qwen2.5-1.5B", metadata={
        "aliases": ["--model"], "help": "base model: a hub name, a path, or tiny-ko / gemma3-270m / smollm2-135m"})
    output_dir: str = field(default="output/korean_lora", metadata={"help": "where the adapter and tokenizer go"})
    trust_remote_code: bool = field(default=False, metadata={"help": "allow model code from the hub"})
    attn_implementation: str = field(
        default="auto", metadata={"help": "auto (flash_attention_2 on a GPU with flash-attn installed, else sdpa) | "
                                          "sdpa | eager | flash_attention_2"})
    use_4bit: bool = field(default=False, metadata={
        "aliases": ["--load_in_4bit"], "help": "QLoRA: load the base in 4-bit NF4 (needs a CUDA GPU and bitsandbytes)"})
    bf16: bool | None = field(default=None, metadata={"help": "bf16 (default: on where the worker's GPU supports it)"})
    profile: str | None = field(default=None, metadata={
        "help": f"defaults for a kind of machine ({', '.join(profiles())}: korlora/train/profiles/*.yaml); "
                "flags and --config values win over it"})
    gradient_checkpointing: bool = field(default=False, metadata={"help": "trade compute for memory"})
    method: str = field(default="sft", metadata={
        "help": "sft (chat rows) | dpo | orpo (preference pairs: prompt, chosen, rejected; korlora/train/preference.py)"})
    # data
    data_file: str = field(default="data/korean_sft_final.jsonl", metadata={
        "help": "JSONL to train on: chat rows for sft, preference pairs for dpo and orpo"})
    eval_share: float = field(default=0.05, metadata={"help": "share of rows held out for eval loss"})
    eval_file: str | None = field(default=None, metadata={
        "help": "JSONL (like data_file) to evaluate on instead of a held-out share of data_file"})
    max_length: int = field(default=1024, metadata={"help": "longest tokenised row (longer rows are truncated)"})
    packing: bool = field(default=False, metadata={"help": "pack rows into max_length sequences"})
    # optimisation (SFTConfig's names)
    learning_rate: float = field(default=2e-4, metadata={"help": "peak learning rate"})
    num_train_epochs: float = field(default=3.0, metadata={"aliases": ["--num_epochs"], "help": "epochs"})
    max_steps: int = field(default=-1, metadata={"help": "stop after this many steps (-1: by epochs)"})
    per_device_train_batch_size: int = field(default=2, metadata={"help": "rows per device per step"})
    gradient_accumulation_steps: int = field(default=4, metadata={"help": "steps per optimizer update"})
    warmup_steps: float = field(default=0.03, metadata={
        "aliases": ["--warmup_ratio"], "help": "linear warm-up: steps, or a share of all steps when below 1"})
    lr_scheduler_type: str = field(default="cosine", metadata={"help": "learning-rate schedule"})
    weight_decay: float = field(default=0.0, metadata={"help": "AdamW weight decay"})
    logging_steps: int = field(default=5, metadata={"help": "log metrics every this many steps"})
    save_steps: int = field(default=50, metadata={"help": "checkpoint (and eval) every this many steps"})
    seed: int = field(default=42, metadata={"help": "seed"})
    sft: dict | None = field(default=None, metadata={
        "help": "any other setting of the method's TRL config (SFTConfig, DPOConfig or ORPOConfig), as a YAML "
                "mapping (e.g. {optim: adamw_torch_fused, max_grad_norm: 0.5}; {beta: 0.1} for dpo)"})
    # LoRA (ModelConfig's names)
    lora_r: int = field(default=16, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha"})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout"})
    lora_target_modules: list[str] | None = field(default=None, metadata={
        "aliases": ["--target_modules"], "help": "modules to adapt (default: every linear layer except the LM head)"})
    init_adapter: str | None = field(default=None, metadata={"help": "continue training this LoRA adapter"})
    # the answer start
    start_loss_weight: float = field(default=1.0, metadata={"help": "loss weight of the first answer tokens"})
    start_tokens: int = field(default=0, metadata={"help": "how many first answer tokens get start_loss_weight"})
    start_penalty: float | None = field(default=None, metadata={
        "help": "also diagnose answer starts at every eval and report objective = eval_loss + start_penalty × "
                "(disclaimer-start + punctuation-start share of greedy answers to the held-out prompts)"})
    # Ray Train
    num_workers: int = field(default=1, metadata={"help": "Ray Train workers (one GPU each on GPU clusters)"})
    use_gpu: bool | None = field(default=None, metadata={
        "help": "train on GPUs (default: when the cluster has GPU nodes or its autoscaler can launch them)"})
    cpus_per_worker: int | None = field(default=None, metadata={
        "help": "CPUs per CPU worker (default: the cluster's free CPUs shared by the workers)"})
    storage_path: str | None = field(default=None, metadata={
        "help": "checkpoint storage, shared by every node (default: <output_dir>/../ray_results)"})
    run_name: str | None = field(default=None, metadata={"help": "run name; the same name resumes (default: by settings)"})
    max_failures: int = field(default=2, metadata={"help": "worker failures to recover from via checkpoints"})
    # tracking
    experiment_name: str = field(default="korlora-train", metadata={"help": "MLflow experiment"})
    mlflow: bool = field(default=True, metadata={"help": "track the run in MLflow"})
    data_manifest: str | None = field(default=None, metadata={"help": "manifest JSON of the data, logged with the run"})

    @staticmethod
    def profile_defaults(name: str | None) -> dict:
        """The values of profile ``name`` (a YAML file in ``korlora/train/profiles``); ``{}`` for None."""
        if name is None:
            return {}
        path = PROFILE_DIR / f"{name}.yaml"
        if not path.is_file():
            raise ValueError(f"unknown profile {name!r}; choose from {', '.join(profiles())}")
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}

    def __post_init__(self) -> None:
        if self.profile is not None and self.profile not in profiles():
            raise ValueError(f"unknown profile {self.profile!r}; choose from {', '.join(profiles())}")
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
        if self.use_4bit and self.use_gpu is False:
            raise ValueError("--use_4bit needs a GPU, but --use_gpu false was given")
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose from {', '.join(METHODS)}")
        if self.method != "sft":
            sft_only = [flag for flag, on in (("--packing", self.packing),
                                              ("--start_tokens", self.start_tokens > 0)) if on]
            if sft_only:
                raise ValueError(f"{', '.join(sft_only)}: SFT only, not for --method {self.method}")
        if self.sft:
            check_sft_keys(self.sft, self.method)

    def sft_values(self) -> dict:
        """The options that the method's TRL config takes under the same name, plus ``sft``."""
        names = sft_field_names(self.method)
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name in names and f.name not in NOT_SFT}
        return {**values, **(self.sft or {})}


def method_config_class(method: str = "sft") -> type:
    """The TRL config class of a training method (ORPO lives in ``trl.experimental`` since TRL 1.0)."""
    if method == "dpo":
        from trl import DPOConfig

        return DPOConfig
    if method == "orpo":
        with warnings.catch_warnings():  # korlora uses it knowingly: no "experimental" warning on every check
            warnings.filterwarnings("ignore", message=".*trl.experimental.*")
            from trl.experimental.orpo import ORPOConfig

        return ORPOConfig
    from trl import SFTConfig  # light: TRL imports its trainers lazily

    return SFTConfig


def sft_field_names(method: str = "sft") -> frozenset[str]:
    return frozenset(f.name for f in fields(method_config_class(method)))


def check_sft_keys(values: dict, method: str = "sft") -> None:
    """``sft:`` settings must be fields of the method's TRL config, and not ones korlora sets itself."""
    unknown = sorted(set(values) - sft_field_names(method))
    if unknown:
        raise ValueError(f"sft: {', '.join(unknown)} are not {method_config_class(method).__name__} settings")
    managed = sorted(set(values) & MANAGED)
    if managed:
        raise ValueError(f"sft: {', '.join(managed)} are set by korlora (use the korlora option, if any)")


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
