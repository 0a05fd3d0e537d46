"""Models: the embedded ``tiny-ko`` default and name resolution for every command that takes a model."""

from korlora.models.resolve import TINY_KO, resolve_model_path

__all__ = ["TINY_KO", "resolve_model_path"]
