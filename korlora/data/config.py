"""Configs of the data-building stage (``korlora data build | no-warning | correction | validate``)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from korlora.schema import DEFAULT_MAX_CHARS


@dataclass
class ValidateConfig:
    """Check a chat JSONL file against the schema; write valid rows and rejects."""

    input: str | None = field(default=None, metadata={"help": "input JSONL file"})
    output: str | None = field(default=None, metadata={"aliases": ["-o"], "help": "write valid rows here"})
    rejects: str | None = field(default=None, metadata={"help": "write rejects here (default: <output>.rejects.jsonl)"})
    max_chars: int = field(default=DEFAULT_MAX_CHARS, metadata={"help": "too_long above this many characters"})

    def __post_init__(self) -> None:
        if not self.input:
            raise ValueError("an input file is required")


@dataclass
class BuildConfig:
    """``korlora data build``: compose Korean chat SFT dialogues in 12 categories from the content bank."""

    output: str = field(default="data/korean_sft_train.jsonl", metadata={"aliases": ["-o"], "help": "output JSONL"})
    num_rows: int = field(default=1500, metadata={"aliases": ["-n"], "help": "number of dialogues"})
    seed: int = field(default=42, metadata={"help": "seed: same seed, same bytes"})
    followup_share: float = field(default=0.3, metadata={"help": "share of bank items used with their follow-up turn"})
    num_blocks: int | None = field(default=None, metadata={"help": "Ray Data blocks (default: by size)"})
    report: bool = field(default=True, metadata={"help": "write <output>.report.json and .png"})
    as_of: str | None = field(default=None, metadata={
        "help": "build date YYYY-MM-DD: leave out bank items whose time-sensitive facts (their own as_of date) "
                "were checked more than --max_fact_age_days before it; items without as_of never go stale "
                "(default: keep every item)"})
    max_fact_age_days: int = field(default=365, metadata={"help": "with --as_of: the oldest fact check kept, in days"})

    def __post_init__(self) -> None:
        if self.num_rows < 12:
            raise ValueError("--num_rows must be at least 12 (one per category)")
        if not 0 <= self.followup_share <= 1:
            raise ValueError("--followup_share must be between 0 and 1")
        if self.max_fact_age_days < 0:
            raise ValueError("--max_fact_age_days must not be negative")
        if self.as_of is not None:
            try:
                dt.date.fromisoformat(str(self.as_of))
            except ValueError:
                raise ValueError(f"--as_of must be a date YYYY-MM-DD, not {self.as_of!r}") from None

    @property
    def as_of_date(self) -> dt.date | None:
        return None if self.as_of is None else dt.date.fromisoformat(str(self.as_of))


@dataclass
class NoWarningConfig:
    """``korlora data no-warning``: answers that start with a Hangul sentence and carry no disclaimer."""

    output: str = field(default="data/korean_sft_no_warning.jsonl",
                        metadata={"aliases": ["-o"], "help": "output JSONL"})
    num_rows: int = field(default=3000, metadata={"aliases": ["-n"], "help": "number of rows"})
    seed: int = field(default=1234, metadata={"help": "seed"})
    num_blocks: int | None = field(default=None, metadata={"help": "Ray Data blocks (default: by size)"})
    report: bool = field(default=True, metadata={"help": "write <output>.report.json and .png"})

    def __post_init__(self) -> None:
        if self.num_rows < 1:
            raise ValueError("--num_rows must be positive")


@dataclass
class CorrectionConfig:
    """``korlora data correction``: prompts with the broken starts of a collapsed model, answered cleanly,
    plus DPO preference pairs (chosen = clean start, rejected = broken start)."""

    output: str = field(default="data/korean_sft_correction.jsonl",
                        metadata={"aliases": ["-o"], "help": "output JSONL (SFT rows)"})
    pairs_output: str | None = field(
        default=None, metadata={"help": "DPO pairs JSONL (default: <output stem>_dpo.jsonl)"})
    num_rows: int = field(default=3500, metadata={"aliases": ["-n"], "help": "number of SFT rows (and of pairs)"})
    seed: int = field(default=2024, metadata={"help": "seed"})
    num_blocks: int | None = field(default=None, metadata={"help": "Ray Data blocks (default: by size)"})
    report: bool = field(default=True, metadata={"help": "write <output>.report.json and .png"})

    def __post_init__(self) -> None:
        if self.num_rows < 1:
            raise ValueError("--num_rows must be positive")
        if self.pairs_output is None:
            stem = self.output[:-6] if self.output.endswith(".jsonl") else self.output
            self.pairs_output = f"{stem}_dpo.jsonl"
