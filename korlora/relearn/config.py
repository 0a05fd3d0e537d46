"""Config of the end-to-end demo on the embedded ``tiny-ko`` model."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DemoConfig:
    """``korlora demo``: every stage of korlora on ``tiny-ko``, sized for a few minutes on 2 CPU cores.

    build → clean → rebalance (≤ 5% disclaimers) → no-warning → correction → merge → LoRA SFT on Ray Train →
    sample answers. Sizes and the learning rate suit a 3M-parameter model, not a real one.
    """

    run_dir: str = field(default="runs/demo", metadata={"help": "every file of the demo goes here"})
    model_name_or_path: str = field(default="tiny-ko", metadata={"help": "base model"})
    build_rows: int = field(default=600, metadata={"help": "dialogues from the content bank"})
    no_warning_rows: int = field(default=600, metadata={"help": "no-warning rows"})
    correction_rows: int = field(default=600, metadata={"help": "correction rows"})
    max_ratio: float = field(default=0.05, metadata={"help": "disclaimer cap"})
    learning_rate: float = field(default=2e-3, metadata={"help": "LoRA learning rate (tiny-ko learns fast)"})
    max_steps: int = field(default=60, metadata={"help": "training steps"})
    per_device_train_batch_size: int = field(default=8, metadata={"help": "rows per step"})
    max_length: int = field(default=384, metadata={"help": "longest tokenised row"})
    seed: int = field(default=42, metadata={"help": "seed of every stage"})
    prompts: list[str] = field(default_factory=lambda: [
        "엔진오일은 얼마나 자주 갈아야 해요?", "적금과 예금의 차이를 알려 주세요.", "요즘 잠이 잘 안 와. 어떻게 하면 좋을까?"],
        metadata={"help": "prompts to answer with the trained adapter"})
