"""Configs of the cleaning stage: ``korlora data clean | check | rebalance | merge``.

Gate settings (Korean purity, speech level, dedup, length) are shared by ``clean`` and ``check`` so that a
check predicts exactly what a clean would do with the same flags.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from korlora.clean.dedup import DEFAULT_BANDS, DEFAULT_NGRAM, DEFAULT_NUM_PERM, DEFAULT_THRESHOLD
from korlora.schema import DEFAULT_MAX_CHARS

SEED_MERGE_INPUTS = ["data/korean_sft_rebalanced.jsonl", "data/korean_sft_no_warning.jsonl",
                     "data/korean_sft_correction.jsonl"]


def _stem_path(path: str, suffix: str) -> str:
    p = Path(path)
    return str(p.with_name(f"{p.stem}{suffix}"))


@dataclass
class GateFields:
    """Settings of the per-row gates and of dedup."""

    format: Literal["auto", "messages", "alpaca", "sharegpt"] = field(
        default="auto", metadata={"help": "input record format (auto: detected per record)"})
    max_chars: int | None = field(default=DEFAULT_MAX_CHARS,
                                  metadata={"help": "too_long above this many characters in all messages"})
    max_tokens: int | None = field(default=None, metadata={"help": "too_long above this many tokens (needs --tokenizer)"})
    tokenizer: str | None = field(default=None, metadata={"help": "tokenizer directory for --max_tokens"})
    min_hangul_ratio: float = field(default=0.6, metadata={
        "help": "non_korean below this Hangul share of the letters in an answer's prose"})
    repair: bool = field(default=True, metadata={"help": "repair noisy answer starts instead of dropping them"})
    speech_level: bool = field(default=True, metadata={"help": "run the Kiwi speech-level gate (mixed_speech_level)"})
    dedup: bool = field(default=True, metadata={"help": "drop exact duplicates (normalised text)"})
    near_dup: bool = field(default=True, metadata={"help": "drop near duplicates (MinHash LSH)"})
    near_dup_threshold: float = field(default=DEFAULT_THRESHOLD, metadata={
        "help": "character n-gram Jaccard at or above which a later row is a near duplicate"})
    ngram: int = field(default=DEFAULT_NGRAM, metadata={"help": "character n-gram size for near duplicates"})
    num_perm: int = field(default=DEFAULT_NUM_PERM, metadata={"help": "MinHash permutations"})
    bands: int = field(default=DEFAULT_BANDS, metadata={"help": "LSH bands (must divide num_perm)"})
    num_blocks: int | None = field(default=None, metadata={"help": "Ray Data blocks (default: by size)"})
    engine: Literal["ray", "local"] = field(default="ray", metadata={
        "help": "ray: Ray Data map_batches; local: the same functions in one process"})
    num_cpus: int | None = field(default=None, metadata={"help": "CPUs for a local Ray started by this command"})

    def _check_gates(self) -> None:
        if not self.input:
            raise ValueError("an input file is required")
        if self.max_chars is not None and self.max_chars < 1:
            raise ValueError("--max_chars must be positive")
        if self.max_tokens is not None and not self.tokenizer:
            raise ValueError("--max_tokens needs --tokenizer (a local tokenizer directory)")
        if not 0 <= self.min_hangul_ratio <= 1:
            raise ValueError("--min_hangul_ratio must be between 0 and 1")
        if not 0 < self.near_dup_threshold <= 1:
            raise ValueError("--near_dup_threshold must be in (0, 1]")
        if self.ngram < 1:
            raise ValueError("--ngram must be at least 1")
        if self.bands < 1 or self.num_perm % self.bands:
            raise ValueError(f"--bands ({self.bands}) must divide --num_perm ({self.num_perm})")
        if self.num_blocks is not None and self.num_blocks < 1:
            raise ValueError("--num_blocks must be positive")


@dataclass
class CleanConfig(GateFields):
    """``korlora data clean``: validate, normalise, repair and filter a chat dataset."""

    input: str | None = field(default=None, metadata={"help": "input file (JSONL, JSON array or Parquet)"})
    output: str | None = field(default=None, metadata={
        "aliases": ["-o"], "help": "cleaned JSONL (default: <input>_cleaned.jsonl)"})
    rejects: str | None = field(default=None, metadata={"help": "rejects JSONL (default: <output>.rejects.jsonl)"})
    summary: str | None = field(default=None, metadata={"help": "summary JSON (default: <output>.summary.json)"})

    def __post_init__(self) -> None:
        self._check_gates()
        self.output = self.output or _stem_path(self.input, "_cleaned.jsonl")
        self.rejects = self.rejects or f"{self.output}.rejects.jsonl"
        self.summary = self.summary or f"{self.output}.summary.json"


@dataclass
class CheckConfig(GateFields):
    """``korlora data check``: the cleaning gates as one verdict line per input row, no cleaned output."""

    input: str | None = field(default=None, metadata={"help": "input file (JSONL, JSON array or Parquet)"})
    report: str | None = field(default=None, metadata={
        "aliases": ["-o"], "help": "verdicts JSONL (default: <input>.check.jsonl)"})
    summary: str | None = field(default=None, metadata={"help": "summary JSON (default: <report>.summary.json)"})

    def __post_init__(self) -> None:
        self._check_gates()
        self.report = self.report or _stem_path(self.input, ".check.jsonl")
        self.summary = self.summary or f"{self.report}.summary.json"


@dataclass
class RebalanceConfig:
    """``korlora data rebalance``: keep disclaimer-style rows to at most ``max_ratio`` of the output."""

    input: str | None = field(default=None, metadata={"help": "input chat JSONL"})
    output: str | None = field(default=None, metadata={
        "aliases": ["-o"], "help": "rebalanced JSONL (default: <input>_rebalanced.jsonl)"})
    max_ratio: float = field(default=0.05, metadata={"help": "largest share of disclaimer rows in the output"})
    seed: int = field(default=0, metadata={"help": "which disclaimer rows stay is chosen by hash(seed, key)"})
    key: str = field(default="id", metadata={
        "help": "row field that identifies a row (rows without it use a hash of their text)"})
    rejects: str | None = field(default=None, metadata={"help": "rejects JSONL (default: <output>.rejects.jsonl)"})
    stats: str | None = field(default=None, metadata={"help": "before/after JSON (default: <output>.rebalance.json)"})
    num_blocks: int | None = field(default=None, metadata={"help": "Ray Data blocks (default: by size)"})
    engine: Literal["ray", "local"] = field(default="ray", metadata={"help": "ray or local (one process)"})
    num_cpus: int | None = field(default=None, metadata={"help": "CPUs for a local Ray started by this command"})

    def __post_init__(self) -> None:
        if not self.input:
            raise ValueError("an input file is required")
        if not 0 <= self.max_ratio < 1:
            raise ValueError("--max-ratio must be at least 0 and below 1")
        if self.num_blocks is not None and self.num_blocks < 1:
            raise ValueError("--num_blocks must be positive")
        self.output = self.output or _stem_path(self.input, "_rebalanced.jsonl")
        self.rejects = self.rejects or f"{self.output}.rejects.jsonl"
        self.stats = self.stats or f"{self.output}.rebalance.json"


def parse_weights(value: dict | str | None) -> dict[str, float] | None:
    """``{"name": w}`` from a dict, JSON text or ``name=w,name=w``."""
    if value is None or isinstance(value, dict):
        weights = value
    elif value.strip().startswith("{"):
        try:
            weights = json.loads(value)
        except json.JSONDecodeError as e:
            raise ValueError(f"--weights is not valid JSON: {e}") from None
    else:
        weights = {}
        for part in filter(None, (p.strip() for p in value.split(","))):
            name, sep, w = part.partition("=")
            if not sep:
                raise ValueError(f"--weights entry {part!r} is not NAME=WEIGHT")
            weights[name.strip()] = w
    if weights is None:
        return None
    try:
        weights = {str(k): float(v) for k, v in weights.items()}
    except (TypeError, ValueError):
        raise ValueError(f"--weights values must be numbers: {weights}") from None
    if any(w < 0 for w in weights.values()):
        raise ValueError("--weights must not be negative")
    return weights


@dataclass
class MergeConfig:
    """``korlora data merge``: mix datasets by weight into one training file with a manifest.

    With no weights every row of every input is used once (the relearn merge). With weights, they are
    the shares of the output (``weights: {name: w}``, name = file stem or ``NAME=PATH``), and
    ``target_size`` is its size (default: the largest size reachable without repeating rows). Rows that
    repeat a row of an earlier input, exactly or nearly, are dropped first (reason-coded in the rejects,
    counted per input in the manifest): the same answer from two sources would be trained on twice.
    """

    input: list[str] = field(default_factory=lambda: list(SEED_MERGE_INPUTS), metadata={
        "help": "inputs as PATH[:WEIGHT] or NAME=PATH[:WEIGHT] (JSONL, JSON array or Parquet)"})
    output: str = field(default="data/korean_sft_final.jsonl", metadata={"aliases": ["-o"], "help": "merged JSONL"})
    weights: dict[str, float] | str | None = field(default=None, metadata={
        "help": "mix as name → weight (YAML mapping, JSON, or a=1,b=2); overrides :WEIGHT suffixes"})
    target_size: int | None = field(default=None, metadata={"help": "rows in the output (needs weights)"})
    oversample: bool = field(default=False, metadata={
        "help": "repeat rows of a source whose share needs more rows than it has"})
    seed: int = field(default=42, metadata={"help": "seed of row selection and order"})
    shuffle: bool = field(default=True, metadata={"help": "interleave sources (order by a seeded hash)"})
    dedup: bool = field(default=True, metadata={
        "help": "drop rows that repeat a row of an earlier input (exact after normalisation; near with --near_dup)"})
    near_dup: bool = field(default=True, metadata={"help": "with --dedup, also drop near duplicates (MinHash LSH)"})
    near_dup_threshold: float = field(default=DEFAULT_THRESHOLD, metadata={
        "help": "character n-gram Jaccard from which two rows are near duplicates"})
    format: Literal["auto", "messages", "alpaca", "sharegpt"] = field(default="auto", metadata={
        "help": "input record format"})
    manifest: str | None = field(default=None, metadata={"help": "manifest JSON (default: <output>.manifest.json)"})
    rejects: str | None = field(default=None, metadata={"help": "rejects JSONL (default: <output>.rejects.jsonl)"})

    def __post_init__(self) -> None:
        if isinstance(self.input, str):
            self.input = [self.input]
        if not self.input:
            raise ValueError("at least one --input is required")
        self.weights = parse_weights(self.weights)
        if self.target_size is not None and self.target_size < 1:
            raise ValueError("--target_size must be positive")
        self.manifest = self.manifest or f"{self.output}.manifest.json"
        self.rejects = self.rejects or f"{self.output}.rejects.jsonl"
