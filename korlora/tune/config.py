"""Config of ``korlora tune``."""

from __future__ import annotations

from dataclasses import dataclass, field

from korlora.eval.config import GateConfig
from korlora.train.config import TrainConfig

# name → {distribution: arguments}; distributions: loguniform, uniform, quniform, choice
DEFAULT_SEARCH_SPACE: dict[str, dict] = {
    "learning_rate": {"loguniform": [1e-5, 3e-4]},
    "weight_original": {"uniform": [0.3, 1.0]},      # the cleaned, rebalanced original data
    "weight_no_warning": {"uniform": [0.0, 1.0]},
    "weight_correction": {"uniform": [0.0, 1.0]},
    "disclaimer_cap": {"uniform": [0.0, 0.05]},      # the rebalance's max disclaimer share
}
SOURCES = ("original", "no_warning", "correction")


# what the sweep decides about each trial's training: not flags of tune
TUNE_SETS = ("method", "data_file", "output_dir", "storage_path", "run_name", "data_manifest", "eval_file", "eval_share",
             "learning_rate", "max_failures")


def tune_train() -> TrainConfig:
    """Each trial's training: 200 steps, evaluated (and reported to Tune) every 50."""
    return TrainConfig(max_steps=200, save_steps=50, logging_steps=25, start_penalty=2.0, cpus_per_worker=1,
                       experiment_name="korlora-tune")


@dataclass
class TuneConfig:
    """``korlora tune``: Ray Tune over the learning rate and the relearn data mix.

    Each trial mixes the relearn sources (the cleaned original capped at ``disclaimer_cap``, no-warning and
    correction rows) by its weights and trains one adapter on Ray Train with the ``train`` options (every
    ``korlora train`` flag works here; ``--save_steps`` is how often a trial is evaluated and reported).
    Objective (minimised): ``eval_loss`` on held-out clean data + ``start_penalty`` × (disclaimer-start +
    punctuation-start share of greedy answers to the held-out diagnosis prompts), measured at every
    evaluation — a trial cannot win by fitting the noise. Optuna (seeded) proposes, ASHA stops weak trials
    early; the sweep is one MLflow parent run with a nested run per trial. The best adapter is registered and
    ``korlora eval`` answers the held-out evaluation prompts with it (which selection never saw); the
    alias ``champion`` moves to it only when those figures pass the ``gate`` thresholds and beat the
    current champion's.
    """

    data_file: str = field(default="data/korean_sft_train.jsonl", metadata={"help": "the original SFT data"})
    run_dir: str = field(default="runs/tune", metadata={"help": "every file of the sweep goes here"})
    search_space: dict[str, dict] | None = field(default=None, metadata={
        "help": "name → {loguniform|uniform|quniform|choice: args} (YAML); names: learning_rate, "
                "weight_original, weight_no_warning, weight_correction, disclaimer_cap"})
    points_to_evaluate: list[dict] | None = field(default=None, metadata={
        "help": "trials to run first, as {name: value} (the rest of the space is searched)"})
    num_samples: int = field(default=8, metadata={"help": "trials"})
    max_concurrent_trials: int | None = field(default=None, metadata={
        "help": "trials at once (default: the cluster's GPUs, or CPUs / cpus_per_worker without GPUs)"})
    grace_period: int = field(default=1, metadata={"help": "ASHA: evaluations before a trial may be stopped"})
    reduction_factor: int = field(default=2, metadata={"help": "ASHA: keep 1/reduction_factor at each rung"})
    # the data every trial mixes
    no_warning_rows: int = field(default=3000, metadata={"help": "no-warning rows"})
    correction_rows: int = field(default=3500, metadata={"help": "correction rows"})
    eval_share: float = field(default=0.05, metadata={"help": "share of the cleaned original held out as eval data"})
    train_rows: int = field(default=4000, metadata={"help": "rows of each trial's mix"})
    registered_model: str = field(default="korlora-adapter", metadata={"help": "MLflow registered model name"})
    train: TrainConfig = field(default_factory=tune_train, metadata={
        "help": "each trial's training", "set_by_stage": TUNE_SETS})
    gate: GateConfig = field(default_factory=GateConfig, metadata={"help": "when the best adapter becomes champion"})

    def __post_init__(self) -> None:
        from korlora.tune.space import check_space

        check_space(self.space())
        if self.num_samples < 1:
            raise ValueError("--num_samples must be at least 1")
        if self.train.max_steps < self.train.save_steps:
            raise ValueError("--save_steps (how often trials are evaluated) must be at most --max_steps")
        if self.reduction_factor < 2:
            raise ValueError("--reduction_factor must be at least 2")
        if not 0 < self.eval_share < 0.5:
            raise ValueError("--eval_share must be in (0, 0.5)")
        if self.train.start_penalty is None:
            raise ValueError("--start_penalty is the sweep's objective weight: give a number (0 for none)")

    def space(self) -> dict[str, dict]:
        """The default space with the user's entries over it."""
        return {**DEFAULT_SEARCH_SPACE, **(self.search_space or {})}
