"""Tracking: MLflow runs, safe params, artifacts and the adapter registry."""
