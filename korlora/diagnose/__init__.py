"""Diagnosis: how a model starts its answers (Hangul sentence, punctuation, disclaimer)."""
