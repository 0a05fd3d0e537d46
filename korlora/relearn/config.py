"""Config of the end-to-end demo on the embedded ``tiny-ko`` model."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DemoConfig:
    """``korlora demo``: the root fix, end to end, on the embedded ``tiny-ko`` model.

    build data → make a "legacy" copy with the seed's problem (answers opening with disclaimers and stray
    punctuation, as uncleaned data would have) → train a legacy adapter on it → ``relearn`` from that adapter
    (diagnosing before and after) → the same relearn with the start-weighted loss → a before/after table.
    Sizes and learning rates suit a 3M-parameter model on 2 CPU cores; ``korlora relearn`` keeps the seed's
    5e-5 / 1 epoch for real models.
    """

    run_dir: str = field(default="runs/demo", metadata={"help": "every file of the demo goes here"})
    model: str = field(default="tiny-ko", metadata={"help": "base model"})
    build_rows: int = field(default=1200, metadata={"help": "dialogues from the content bank"})
    legacy_disclaimer_share: float = field(default=0.5, metadata={
        "help": "share of legacy rows whose answers open with a disclaimer"})
    legacy_punct_share: float = field(default=0.15, metadata={
        "help": "share of legacy rows whose answers open with stray punctuation or a role tag"})
    legacy_learning_rate: float = field(default=5e-3, metadata={"help": "learning rate of the legacy adapter"})
    legacy_steps: int = field(default=160, metadata={"help": "training steps of the legacy adapter"})
    no_warning_rows: int = field(default=600, metadata={"help": "no-warning rows of the relearn"})
    correction_rows: int = field(default=600, metadata={"help": "correction rows of the relearn"})
    learning_rate: float = field(default=3e-3, metadata={"help": "relearn learning rate (tiny-ko scale)"})
    max_steps: int = field(default=80, metadata={"help": "relearn steps"})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "rows per step"})
    max_length: int = field(default=256, metadata={"help": "longest tokenised row"})
    start_loss_weight: float = field(default=3.0, metadata={"help": "weight of the first answer tokens (0: skip)"})
    start_tokens: int = field(default=4, metadata={"help": "first answer tokens weighted"})
    diagnose_samples: int = field(default=2, metadata={"help": "sampled answers per prompt"})
    seed: int = field(default=42, metadata={"help": "seed of every stage"})


@dataclass
class RelearnConfig:
    """``korlora relearn``: the root fix for answers that start with punctuation or disclaimers.

    clean → rebalance (disclaimers ≤ ``max_ratio``) → no-warning rows → correction rows → merge →
    re-fine-tune (the seed's 5e-5, 1 epoch; continuing ``init_adapter`` when given) → diagnose before and
    after. One MLflow parent run with a child run per stage; every file under ``run_dir`` with a manifest.
    Finished stages whose inputs did not change are reused when the command runs again.
    """

    data_file: str = field(default="data/korean_sft_train.jsonl", metadata={"help": "the original SFT data"})
    model: str = field(default="Qwen/Qwen2.5-1.5B", metadata={"help": "base model name or path (or tiny-ko)"})
    init_adapter: str | None = field(default=None, metadata={"help": "the collapsed adapter to continue from"})
    run_dir: str = field(default="runs/relearn", metadata={"help": "every file of the run goes here"})
    profile: str | None = field(default=None, metadata={"help": "training preset, e.g. h100"})
    max_ratio: float = field(default=0.05, metadata={"help": "disclaimer cap of the rebalance step"})
    no_warning_rows: int = field(default=3000, metadata={"help": "no-warning rows"})
    correction_rows: int = field(default=3500, metadata={"help": "correction rows"})
    weights: dict[str, float] | None = field(default=None, metadata={
        "help": "mix weights of rebalanced/no_warning/correction (default: every row once)"})
    target_size: int | None = field(default=None, metadata={"help": "rows after the merge (with weights)"})
    learning_rate: float = field(default=5e-5, metadata={"help": "re-fine-tune learning rate (seed: 5e-5)"})
    num_epochs: float = field(default=1.0, metadata={"help": "re-fine-tune epochs (seed: 1)"})
    max_steps: int = field(default=-1, metadata={"help": "stop after this many steps (-1: by epochs)"})
    per_device_train_batch_size: int = field(default=2, metadata={"help": "rows per device per step"})
    gradient_accumulation_steps: int = field(default=4, metadata={"help": "steps per optimizer update"})
    max_length: int = field(default=1024, metadata={"help": "longest tokenised row"})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank (new adapters)"})
    start_loss_weight: float = field(default=1.0, metadata={"help": "loss weight of the first answer tokens"})
    start_tokens: int = field(default=0, metadata={"help": "first answer tokens weighted by start_loss_weight"})
    num_workers: int = field(default=1, metadata={"help": "Ray Train workers"})
    diagnose_samples: int = field(default=2, metadata={"help": "sampled answers per prompt in the diagnosis"})
    diagnose_max_new_tokens: int = field(default=48, metadata={"help": "answer length in the diagnosis"})
    experiment_name: str = field(default="korlora-relearn", metadata={"help": "MLflow experiment"})
    seed: int = field(default=42, metadata={"help": "seed of every stage"})

    def __post_init__(self) -> None:
        if not 0 <= self.max_ratio < 1:
            raise ValueError("--max_ratio must be in [0, 1)")
