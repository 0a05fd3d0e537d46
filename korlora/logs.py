"""Quiet by default: the terminal shows korlora's own progress and results.

Library chatter (deprecation warnings, transformers/datasets info logs, tokenisation progress bars,
datasets' fingerprinting traces inside Ray workers, Ray's own INFO lines) goes to a log file instead:
``$KORLORA_CACHE/logs/korlora-<pid>.log`` (default ``~/.cache/korlora/logs``); Ray keeps every worker's
full output under ``/tmp/ray/session_latest/logs`` as always. ``korlora --verbose …`` (or
``KORLORA_VERBOSE=1``) shows everything on the terminal.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

VERBOSE_ENV = "KORLORA_VERBOSE"
_LIBRARIES = ("transformers", "datasets", "trl", "peft", "accelerate", "ray", "mlflow", "urllib3", "filelock",
              "dill", "alembic", "optuna", "huggingface_hub", "torch")


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "").lower() in ("1", "true", "yes")


def log_file() -> Path:
    from korlora.models.tiny_ko import cache_root

    path = cache_root() / "logs" / f"korlora-{os.getpid()}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def quiet_libraries() -> None:
    """Send library warnings and logs to the log file, keep errors on the terminal (no-op when verbose).
    Called by every korlora process that loads libraries: the CLI, Ray Train workers, diagnosis tasks."""
    if verbose():
        return
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' load/save bars too
    handler = logging.FileHandler(log_file(), encoding="utf-8", delay=True)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    handler.setLevel(logging.INFO)
    logging.captureWarnings(True)  # warnings → the "py.warnings" logger → the file
    warnings.simplefilter("default")
    for name in (*_LIBRARIES, "py.warnings"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.propagate = False
        if name not in ("py.warnings",):
            logger.setLevel(logging.WARNING)
    for name in _LIBRARIES:  # their own terminal handlers: errors only
        for h in logging.getLogger(name).handlers:
            if h is not handler and isinstance(h, logging.StreamHandler):
                h.setLevel(logging.ERROR)
    # the environment covers libraries imported later; these, the ones already imported
    if "datasets" in sys.modules:
        sys.modules["datasets"].disable_progress_bars()
        sys.modules["datasets"].utils.logging.set_verbosity_error()
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.set_verbosity_error()
        sys.modules["transformers"].utils.logging.disable_progress_bar()  # "Loading weights" bars
    context = sys.modules.get("ray.train.v2._internal.execution.context")
    if context is not None:  # a Train worker logs every report (metrics and checkpoint path) at INFO
        logging.getLogger(context.__file__).setLevel(logging.WARNING)
