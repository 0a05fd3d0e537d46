"""korlora: Korean LoRA fine-tuning on Ray.

The package reads as the data flow: ``data`` (build) → ``clean`` (gates, dedup, rebalance, merge) →
``train`` (LoRA SFT on Ray Train) → ``diagnose`` (answer-start patterns) → ``relearn`` → ``tune`` → ``track``.
"""

__version__ = "0.1.0"
