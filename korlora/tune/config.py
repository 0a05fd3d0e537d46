"""Config of ``korlora tune``."""

from __future__ import annotations

from dataclasses import dataclass, field

# name → {distribution: arguments}; distributions: loguniform, uniform, quniform, choice
DEFAULT_SEARCH_SPACE: dict[str, dict] = {
    "learning_rate": {"loguniform": [1e-5, 3e-4]},
    "weight_original": {"uniform": [0.3, 1.0]},      # the cleaned, rebalanced original data
    "weight_no_warning": {"uniform": [0.0, 1.0]},
    "weight_correction": {"uniform": [0.0, 1.0]},
    "disclaimer_cap": {"uniform": [0.0, 0.05]},      # the rebalance's max disclaimer share
}
SOURCES = ("original", "no_warning", "correction")


@dataclass
class TuneConfig:
    """``korlora tune``: Ray Tune over the learning rate and the relearn data mix.

    Each trial mixes the relearn sources (the cleaned original capped at ``disclaimer_cap``, no-warning and
    correction rows) by its weights and trains one adapter on Ray Train. Objective (minimised):
    ``eval_loss`` on held-out clean data + ``start_penalty`` × (disclaimer-start + punctuation-start share of
    greedy answers to the held-out diagnosis prompts), measured at every evaluation — a trial cannot win
    by fitting the noise. Optuna (seeded) proposes, ASHA stops weak trials early; the sweep is one MLflow
    parent run with a nested run per trial, and the best adapter is registered with the alias ``champion``
    when it beats the current champion.
    """

    data_file: str = field(default="data/korean_sft_train.jsonl", metadata={"help": "the original SFT data"})
    model: str = field(default="Qwen/Qwen2.5-1.5B", metadata={"help": "base model name or path (or tiny-ko)"})
    init_adapter: str | None = field(default=None, metadata={"help": "adapter every trial continues from"})
    run_dir: str = field(default="runs/tune", metadata={"help": "every file of the sweep goes here"})
    search_space: dict[str, dict] | None = field(default=None, metadata={
        "help": "name → {loguniform|uniform|quniform|choice: args} (YAML); names: learning_rate, "
                "weight_original, weight_no_warning, weight_correction, disclaimer_cap"})
    points_to_evaluate: list[dict] | None = field(default=None, metadata={
        "help": "trials to run first, as {name: value} (the rest of the space is searched)"})
    num_samples: int = field(default=8, metadata={"help": "trials"})
    max_concurrent_trials: int | None = field(default=None, metadata={
        "help": "trials at once (default: the cluster's GPUs, or CPUs / cpus_per_trial without GPUs)"})
    cpus_per_trial: int = field(default=1, metadata={"help": "CPUs of each trial's worker on CPU clusters"})
    grace_period: int = field(default=1, metadata={"help": "ASHA: evaluations before a trial may be stopped"})
    reduction_factor: int = field(default=2, metadata={"help": "ASHA: keep 1/reduction_factor at each rung"})
    start_penalty: float = field(default=2.0, metadata={
        "help": "objective weight of the bad-start share (disclaimer + punctuation starts)"})
    # the data every trial mixes
    no_warning_rows: int = field(default=3000, metadata={"help": "no-warning rows"})
    correction_rows: int = field(default=3500, metadata={"help": "correction rows"})
    eval_share: float = field(default=0.05, metadata={"help": "share of the cleaned original held out as eval data"})
    train_rows: int = field(default=4000, metadata={"help": "rows of each trial's mix"})
    # each trial's training
    max_steps: int = field(default=200, metadata={"help": "training steps per trial"})
    eval_steps: int = field(default=50, metadata={"help": "evaluate (and report to Tune) every this many steps"})
    per_device_train_batch_size: int = field(default=2, metadata={"help": "rows per device per step"})
    gradient_accumulation_steps: int = field(default=4, metadata={"help": "steps per optimizer update"})
    max_length: int = field(default=1024, metadata={"help": "longest tokenised row"})
    lora_r: int = field(default=16, metadata={"help": "LoRA rank (new adapters)"})
    profile: str | None = field(default=None, metadata={"help": "training preset, e.g. h100"})
    # tracking
    experiment_name: str = field(default="korlora-tune", metadata={"help": "MLflow experiment"})
    registered_model: str = field(default="korlora-adapter", metadata={"help": "MLflow registered model name"})
    seed: int = field(default=42, metadata={"help": "seed of the search and every trial"})

    def __post_init__(self) -> None:
        from korlora.tune.space import check_space

        check_space(self.space())
        if self.num_samples < 1:
            raise ValueError("--num_samples must be at least 1")
        if self.eval_steps < 1 or self.max_steps < self.eval_steps:
            raise ValueError("--eval_steps must be between 1 and --max_steps")
        if self.reduction_factor < 2:
            raise ValueError("--reduction_factor must be at least 2")
        if not 0 < self.eval_share < 0.5:
            raise ValueError("--eval_share must be in (0, 0.5)")

    def space(self) -> dict[str, dict]:
        """The default space with the user's entries over it."""
        return {**DEFAULT_SEARCH_SPACE, **(self.search_space or {})}
