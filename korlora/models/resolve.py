"""Model names: ``tiny-ko`` means the embedded model; every other name or path goes to ``from_pretrained``."""

from __future__ import annotations

TINY_KO = "tiny-ko"


def resolve_model_path(name_or_path: str) -> str:
    """Return what to pass to ``from_pretrained``: the built ``tiny-ko`` directory, or ``name_or_path`` as is."""
    if name_or_path == TINY_KO:
        from korlora.models.tiny_ko import build_tiny_ko

        return str(build_tiny_ko())
    return name_or_path
