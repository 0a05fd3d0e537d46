"""MLflow helpers: the default store, params without secrets, nested runs."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

SECRET_PATTERN = re.compile(r"(token|secret|password|api[_-]?key|credential)", re.IGNORECASE)


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` when set, else an embedded SQLite store in the working directory."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{Path.cwd() / 'mlflow.db'}"


def safe_params(params: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten a config for ``log_params``; drop anything that looks like a secret or holds one's value."""
    secrets = {v for k, v in os.environ.items() if SECRET_PATTERN.search(k) and len(v) >= 6}
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(safe_params(value, prefix=f"{name}."))
            continue
        text = str(value)
        if SECRET_PATTERN.search(key) or any(s in text for s in secrets):
            continue
        out[name] = text[:6000]
    return out


def setup(experiment_name: str) -> str:
    import mlflow

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment_name)
    return uri
