"""Configs of ``korlora eval`` and of the registry gate that uses it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class GateConfig:
    """When an adapter may become the registry's ``champion``: its ``korlora eval`` results pass every
    threshold and beat the current champion's (a higher eval score: see :func:`korlora.eval.gate.score`)."""

    min_korean_share: float = field(default=0.95, metadata={"help": "gate: least share of Korean answers"})
    max_disclaimer_start_share: float = field(default=0.02, metadata={
        "help": "gate: largest share of answers that open with a disclaimer"})
    max_noise_start_share: float = field(default=0.02, metadata={
        "help": "gate: largest share of answers that open with punctuation, invisible characters or a role tag"})
    min_stop_share: float = field(default=0.90, metadata={
        "help": "gate: least share of answers that end on their own before max_new_tokens"})
    eval_max_new_tokens: int = field(default=192, metadata={"help": "answer length limit of the gate's eval"})
    eval_prompts: str | None = field(default=None, metadata={
        "help": "prompts of the gate's eval (YAML file or directory; default: korlora's held-out set)"})


@dataclass
class EvalConfig:
    """Answer korlora's held-out Korean evaluation prompts (156, 12 categories, single and multi-turn, each
    with the register its answer should use) and report, per category and overall: Korean answers,
    code-switching, how answers start, disclaimers anywhere, answers that stop on their own, repetition
    loops, register agreement, and the loss on the prompts' reference answers. A JSON report, a chart,
    MLflow metrics; ``--compare`` puts several adapters side by side."""

    model_name_or_path: str | None = field(default=None, metadata={
        "aliases": ["--model"], "help": "base model name or path (default: the adapters' base; tiny-ko without one)"})
    adapter: str | None = field(default=None, metadata={"help": "LoRA adapter on top of the base"})
    compare: list[str] | None = field(default=None, metadata={
        "help": "several adapters side by side (paths; 'base' = the base model alone)"})
    prompts: str | None = field(default=None, metadata={
        "help": "evaluation prompts (YAML file or directory; default: korlora's held-out set)"})
    output_dir: str = field(default="output/eval", metadata={"aliases": ["-o"], "help": "report directory"})
    max_new_tokens: int = field(default=192, metadata={"help": "answer length limit"})
    batch_size: int = field(default=16, metadata={"help": "prompts per generation batch"})
    reference_loss: bool = field(default=True, metadata={"help": "also score the prompts' reference answers"})
    experiment_name: str = field(default="korlora-eval", metadata={"help": "MLflow experiment"})
    mlflow: bool = field(default=True, metadata={"help": "log the results to MLflow"})

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError("--max_new_tokens must be at least 1")
        if self.compare is not None and self.adapter is not None:
            raise ValueError("give --adapter or --compare, not both")
