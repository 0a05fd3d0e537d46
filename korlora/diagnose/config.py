"""Config of ``korlora diagnose``."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DiagnoseConfig:
    """Measure how a model starts its answers on held-out Korean prompts across the 12 categories:
    the next-token distribution at the start of the assistant turn, and generated answers."""

    model_name_or_path: str = field(default="tiny-ko", metadata={
        "aliases": ["--model"], "help": "base model name or path (with --adapter: overrides the adapter's base)"})
    adapter: str | None = field(default=None, metadata={"help": "LoRA adapter on top of the base"})
    prompts: str | None = field(default=None, metadata={
        "help": "prompts file (YAML with prompts: [{category, text}] or JSONL with text/prompt); default: shipped"})
    output_dir: str = field(default="output/diagnose", metadata={"aliases": ["-o"], "help": "report directory"})
    samples: int = field(default=2, metadata={"help": "sampled answers per prompt (besides the greedy one)"})
    temperature: float = field(default=0.8, metadata={"help": "sampling temperature"})
    max_new_tokens: int = field(default=48, metadata={"help": "answer length to generate"})
    heldout: str | None = field(default=None, metadata={
        "help": "held-out clean dialogues (korlora eval set YAML, file or directory) whose reference answers' loss is "
                "reported (default: korlora's evaluation set; 'none' skips)"})
    top_k: int = field(default=20, metadata={"help": "first tokens to list"})
    seed: int = field(default=0, metadata={"help": "sampling seed"})
    label: str | None = field(default=None, metadata={"help": "name of this model in the report"})
    use_gpu: bool | None = field(default=None, metadata={
        "help": "run as a Ray task on a GPU worker (default: when a running Ray cluster has GPU nodes or can "
                "launch them; otherwise here, on this machine's GPU if it has one)"})

    def __post_init__(self) -> None:
        if self.samples < 0:
            raise ValueError("--samples must be zero or more")
