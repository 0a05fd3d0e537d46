"""Configs of ``korlora relearn`` and of the end-to-end demo. Both train through the one training config
(:class:`~korlora.train.config.TrainConfig`), held in their ``train`` field."""

from __future__ import annotations

from dataclasses import dataclass, field

from korlora.eval.config import GateConfig
from korlora.train.config import TrainConfig

# what the relearn stage itself decides about its training run: not flags of relearn / demo
RELEARN_SETS = ("data_file", "output_dir", "storage_path", "run_name", "data_manifest", "eval_file", "method")


def relearn_train() -> TrainConfig:
    """The seed's re-fine-tune recipe: 5e-5, one epoch."""
    return TrainConfig(learning_rate=5e-5, num_train_epochs=1.0, experiment_name="korlora-relearn")


def demo_train() -> TrainConfig:
    """The demo's relearn on tiny-ko: learning rates and sizes for a 3M-parameter model on 2 CPU cores."""
    return TrainConfig(model_name_or_path="tiny-ko", learning_rate=3e-3, max_steps=80, per_device_train_batch_size=8,
                       gradient_accumulation_steps=1, max_length=256, experiment_name="korlora-demo")


@dataclass
class RelearnConfig:
    """``korlora relearn``: the root fix for answers that start with punctuation or disclaimers.

    clean → rebalance (disclaimers ≤ ``max_ratio``) → no-warning rows → correction rows → merge →
    re-fine-tune (the seed's 5e-5, 1 epoch; continuing ``--init_adapter`` when given) → diagnose and
    ``korlora eval`` (the held-out evaluation prompts) before and after; with ``--register``, the adapter
    becomes a registry version and ``champion`` only past the gate. Every ``korlora train`` flag applies to
    the re-fine-tune. One MLflow parent run with a child run
    per stage; every file under ``run_dir`` with a manifest. Finished stages whose inputs did not change are
    reused when the command runs again.
    """

    data_file: str = field(default="data/korean_sft_train.jsonl", metadata={"help": "the original SFT data"})
    run_dir: str = field(default="runs/relearn", metadata={"help": "every file of the run goes here"})
    max_ratio: float = field(default=0.05, metadata={"help": "disclaimer cap of the rebalance step"})
    no_warning_rows: int = field(default=3000, metadata={"help": "no-warning rows"})
    correction_rows: int = field(default=3500, metadata={"help": "correction rows"})
    weights: dict[str, float] | None = field(default=None, metadata={
        "help": "mix weights of rebalanced/no_warning/correction (default: every row once)"})
    target_size: int | None = field(default=None, metadata={"help": "rows after the merge (with weights)"})
    diagnose_samples: int = field(default=2, metadata={"help": "sampled answers per prompt in the diagnosis"})
    diagnose_max_new_tokens: int = field(default=48, metadata={"help": "answer length in the diagnosis"})
    preference: str | None = field(default=None, metadata={
        "help": "after the re-fine-tune, train on the correction stage's preference pairs (clean start chosen, "
                "broken start rejected): dpo | orpo"})
    preference_learning_rate: float = field(default=5e-6, metadata={"help": "learning rate of the preference stage"})
    preference_steps: int = field(default=-1, metadata={"help": "steps of the preference stage (-1: one epoch)"})
    preference_beta: float = field(default=0.1, metadata={"help": "beta of DPO / ORPO's odds-ratio weight"})
    register: str | None = field(default=None, metadata={
        "help": "register the relearned adapter as a version of this MLflow registered model; the alias "
                "'champion' moves to it only when its eval passes the gate and beats the champion"})
    train: TrainConfig = field(default_factory=relearn_train, metadata={
        "help": "the re-fine-tune", "set_by_stage": RELEARN_SETS})
    gate: GateConfig = field(default_factory=GateConfig, metadata={
        "help": "the eval before and after (its answer length) and the registry gate"})

    def __post_init__(self) -> None:
        if not 0 <= self.max_ratio < 1:
            raise ValueError("--max_ratio must be in [0, 1)")
        if self.preference not in (None, "dpo", "orpo"):
            raise ValueError("--preference must be dpo or orpo")


@dataclass
class DemoConfig:
    """``korlora demo``: the root fix, end to end, on the embedded ``tiny-ko`` model (or a real one:
    ``configs/demo-gemma.yaml``, ``configs/demo-smollm2.yaml``).

    build data → make a "legacy" copy with the seed's problem (answers opening with disclaimers and stray
    punctuation, as uncleaned data would have) → train a legacy adapter on it → ``relearn`` from that adapter
    (diagnosing before and after) → the same relearn with the start-weighted loss → a before/after table.
    The ``train`` options are the relearn's; the legacy adapter uses them too, with its own learning rate
    and steps. The defaults suit a 3M-parameter model on 2 CPU cores; ``korlora relearn`` keeps the seed's
    5e-5 / 1 epoch.
    """

    run_dir: str = field(default="runs/demo", metadata={"help": "every file of the demo goes here"})
    build_rows: int = field(default=1200, metadata={"help": "dialogues from the content bank"})
    legacy_disclaimer_share: float = field(default=0.5, metadata={
        "help": "share of legacy rows whose answers open with a disclaimer"})
    legacy_punct_share: float = field(default=0.15, metadata={
        "help": "share of legacy rows whose answers open with stray punctuation or a role tag"})
    legacy_learning_rate: float = field(default=5e-3, metadata={"help": "learning rate of the legacy adapter"})
    legacy_steps: int = field(default=160, metadata={"help": "training steps of the legacy adapter"})
    no_warning_rows: int = field(default=600, metadata={"help": "no-warning rows of the relearn"})
    correction_rows: int = field(default=600, metadata={"help": "correction rows of the relearn"})
    weighted_start_loss_weight: float = field(default=3.0, metadata={
        "help": "also run the relearn with this weight on the first answer tokens (1: skip)"})
    weighted_start_tokens: int = field(default=4, metadata={"help": "first answer tokens weighted in that run"})
    diagnose_samples: int = field(default=2, metadata={"help": "sampled answers per prompt"})
    diagnose_max_new_tokens: int = field(default=48, metadata={"help": "answer length in the diagnosis"})
    preference: str | None = field(default=None, metadata={
        "help": "also run the relearn with a preference stage after the re-fine-tune (dpo | orpo)"})
    preference_learning_rate: float = field(default=5e-6, metadata={"help": "learning rate of the preference stage"})
    preference_steps: int = field(default=-1, metadata={"help": "steps of the preference stage (-1: one epoch)"})
    train: TrainConfig = field(default_factory=demo_train, metadata={
        "help": "the relearn (and legacy) training", "set_by_stage": RELEARN_SETS})
    gate: GateConfig = field(default_factory=GateConfig, metadata={"help": "the relearn's eval before and after"})
