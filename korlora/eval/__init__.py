"""Evaluation on korlora's held-out Korean prompt set (never used for training or selection)."""
