"""Starting or joining Ray, and Data settings that suit small machines."""

from __future__ import annotations

import logging
import os


def init_local_ray(num_cpus: int | None = None) -> None:
    """Join the cluster given by ``RAY_ADDRESS`` (e.g. under ``ray job submit``) or start a local one."""
    import ray

    if ray.is_initialized():
        return
    from korlora.logs import VERBOSE_ENV, verbose

    env_vars = {k: os.environ[k] for k in ("KORLORA_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                                           "TOKENIZERS_PARALLELISM", VERBOSE_ENV) if k in os.environ}
    # quiet workers: no Python warnings from library import time on the terminal
    env_vars.setdefault("PYTHONWARNINGS", os.environ.get("PYTHONWARNINGS", "default" if verbose() else "ignore"))
    runtime_env = {"env_vars": env_vars}
    level = logging.INFO if verbose() else logging.ERROR  # e.g. the token-auth notice of every ray.init
    if os.environ.get("RAY_ADDRESS"):  # a job's driver: the job's runtime env already applies
        ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=True, logging_level=level)
    else:
        # One machine of our own is never drained by a cloud provider: no need for Ray Train's preemption
        # watcher (on every run its controller logs an error line about the watcher's restart arguments).
        # Clusters keep it; Ray Train hands this variable from the driver to its controller.
        os.environ.setdefault("RAY_TRAIN_ENABLE_PREEMPTION_WATCHER", "0")
        ray.init(num_cpus=num_cpus, include_dashboard=True, dashboard_host="127.0.0.1",
                 runtime_env=runtime_env, log_to_driver=True, logging_level=level)
    configure_data_context()


def configure_data_context(min_blocks: int = 1) -> None:
    """Ray Data defaults aim at big clusters (200 blocks per read/shuffle); scale them down."""
    from ray.data import DataContext

    from korlora.logs import verbose

    if not verbose():  # its INFO lines ("Starting execution of Dataset …"); the progress bars stay
        logging.getLogger("ray.data").setLevel(logging.WARNING)
    ctx = DataContext.get_current()
    ctx.read_op_min_num_blocks = min_blocks
    ctx.enable_progress_bars = True
    for attr in ("min_parallelism", "default_hash_shuffle_parallelism"):
        if hasattr(ctx, attr):
            setattr(ctx, attr, max(min_blocks, 1))
