"""Does this Ray cluster have GPUs for training — now, or once its autoscaler launches a GPU node?

``ray.cluster_resources()`` only counts running nodes. The cluster of ``ray_cluster.yaml`` has a CPU head and
GPU workers with ``min_workers: 0``: no GPU exists until a job asks for one, so deciding from running nodes
alone trains on the CPU head forever. Here the autoscaler's node types count too.

Where the node types come from (Ray 2.60):

1. the autoscaler's ``ClusterConfig`` in the GCS (``ray._private.state.state.get_cluster_config()``, what
   Ray Data reads for the same question). Ray 2.60's autoscalers never report it (nothing calls
   ``report_cluster_config``); the v2 autoscaler of later Ray versions does, so it is read first.
2. the autoscaling config that the cluster's monitor process was started with (``ray start --head
   --autoscaling-config=PATH``: ``~/ray_bootstrap_config.yaml`` under ``ray up``, a temporary file under
   ``ray.cluster_utils.AutoscalingCluster``), read on the head node: autoscaler v1 and v2 both run there.

A cluster started by a plain ``ray.init()`` or ``ray start --head`` without a config has no autoscaler node
types: only its running GPUs count.
"""

from __future__ import annotations

import logging
import math
import os

from korlora.errors import KorloraError

log = logging.getLogger(__name__)

HEAD_NODE_RESOURCE = "node:__internal_head__"


def cluster_gpu_capacity() -> dict:
    """GPUs of the running nodes and the GPU node types the autoscaler can launch.

    Returns ``{"running_gpus": float, "launchable": [{"node_type": str, "gpus": float, "max_workers": int}],
    "max_gpus": float, "source": str | None}``: ``max_workers`` is how many nodes of that type the autoscaler
    may run (-1: no limit); ``max_gpus`` the most GPUs the cluster can have at once (running ones, or all
    launchable nodes up, whichever is more; ``inf`` without a limit), e.g. for one Tune trial per GPU;
    ``source`` where the node types were read (``"gcs"``, the config file's path, or None when the cluster
    has no autoscaler config). Joins or starts Ray as the driver does when not yet connected.
    """
    import ray

    from korlora.raycompat import init_local_ray

    init_local_ray()
    node_types, source = _autoscaler_node_types()
    launchable = [dict(node_type=t["node_type"], gpus=t["resources"]["GPU"], max_workers=t["max_workers"])
                  for t in node_types if t["resources"].get("GPU", 0) >= 1 and t["max_workers"] != 0]
    running = float(ray.cluster_resources().get("GPU", 0))
    most = sum(t["gpus"] * t["max_workers"] if t["max_workers"] > 0 else math.inf for t in launchable)
    return {"running_gpus": running, "launchable": launchable, "max_gpus": max(running, float(most)),
            "source": source}


def _has_gpus(capacity: dict) -> bool:
    return capacity["running_gpus"] >= 1 or bool(capacity["launchable"])


def _describe(capacity: dict) -> str:
    parts = [f"{capacity['running_gpus']:g} GPUs on running nodes"]
    for t in capacity["launchable"]:
        limit = "no limit" if t["max_workers"] < 0 else f"up to {t['max_workers']}"
        parts.append(f"node type {t['node_type']} ({t['gpus']:g} GPUs each, {limit}) launchable")
    if not capacity["launchable"]:
        parts.append("no GPU node type to launch" + ("" if capacity["source"] else " (no autoscaler config)"))
    return "; ".join(parts)


def resolve_use_gpu(requested: bool | None) -> bool:
    """Whether Ray Train workers should ask for GPUs. An explicit ``--use_gpu`` value wins; ``None`` means
    yes when running nodes have GPUs or the autoscaler can launch GPU nodes (asking is what makes it launch
    them). Either explicit value is logged with a warning when it contradicts the cluster: ``False`` on a
    cluster with GPU node types trains on CPUs, ``True`` without any waits for GPUs that never come."""
    capacity = cluster_gpu_capacity()
    has_gpus = _has_gpus(capacity)
    if requested is None:
        return has_gpus
    if requested != has_gpus:
        what = "training on CPUs although" if not requested else "workers will wait for GPUs, but"
        log.warning("use_gpu=%s: %s this cluster has %s", requested, what, _describe(capacity))
    return requested


def require_gpu_capacity(reason: str) -> dict:
    """Fail early, with the reason, when something needs a GPU (``--use_4bit``) on a cluster that neither
    has one nor can launch one; the workers would otherwise wait for one forever. Returns the capacity."""
    capacity = cluster_gpu_capacity()
    if not _has_gpus(capacity):
        raise KorloraError(f"{reason} needs a CUDA GPU, but this Ray cluster has none and cannot launch one "
                           f"({_describe(capacity)}); use a cluster with GPU nodes (ray_cluster.yaml)")
    return capacity


def _autoscaler_node_types() -> tuple[list[dict], str | None]:
    """Worker node types ``{"node_type", "resources", "max_workers"}`` of the cluster's autoscaler, and where
    they were read; ``([], None)`` without an autoscaler config."""
    import ray

    try:
        from ray._private.state import state

        config = state.get_cluster_config()
    except Exception:  # not exposed through Ray Client, or an older GCS
        config = None
    if config is not None and config.node_group_configs:
        return [{"node_type": g.name, "resources": dict(g.resources), "max_workers": g.max_count}
                for g in config.node_group_configs], "gcs"

    gcs_port = ray.get_runtime_context().gcs_address.rsplit(":", 1)[-1]
    if _driver_on_head_node():
        found = _monitor_autoscaling_config(gcs_port)
    else:  # the monitor and its config file live on the head node
        read = ray.remote(num_cpus=0, resources={HEAD_NODE_RESOURCE: 0.001})(_monitor_autoscaling_config)
        try:
            found = ray.get(read.remote(gcs_port), timeout=120)
        except Exception as e:
            log.warning("could not read the autoscaler config on the head node: %s", e)
            found = None
    if found is None:
        return [], None
    path, config = found
    types = config.get("available_node_types") or {}
    cluster_max = config.get("max_workers", -1)
    node_types = []
    for name, spec in types.items():
        if name == config.get("head_node_type"):
            continue
        limit = spec.get("max_workers", cluster_max)
        if cluster_max >= 0:
            limit = cluster_max if limit < 0 else min(limit, cluster_max)
        resources = dict(spec.get("resources") or {})
        node_types.append({"node_type": name, "resources": resources, "max_workers": limit})
    return node_types, path


def _driver_on_head_node() -> bool:
    import ray

    head = [n["NodeID"] for n in ray.nodes() if n["Alive"] and HEAD_NODE_RESOURCE in n["Resources"]]
    return not head or head[0] == ray.get_runtime_context().get_node_id()


def _monitor_autoscaling_config(gcs_port: str) -> tuple[str, dict] | None:
    """``(path, config)`` of the ``--autoscaling-config`` that this host's monitor of the cluster whose GCS
    listens on ``gcs_port`` runs with (autoscaler v1 or v2), or None."""
    import psutil
    import yaml

    for proc in psutil.process_iter(["cmdline"]):
        args = proc.info["cmdline"] or []
        if not any(os.path.basename(a) == "monitor.py" for a in args[:4]):  # python -u .../monitor.py
            continue
        opts = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
        if opts.get("gcs-address", "").rsplit(":", 1)[-1] != gcs_port or not opts.get("autoscaling-config"):
            continue
        path = os.path.expanduser(opts["autoscaling-config"])
        try:
            with open(path, encoding="utf-8") as f:
                return path, yaml.safe_load(f) or {}  # YAML, or the JSON that AutoscalingCluster writes
        except (OSError, yaml.YAMLError) as e:
            log.warning("cannot read the autoscaler config %s: %s", path, e)
            return None
    return None


def run_where_the_model_runs(fn, *args, use_gpu: bool | None = None):
    """``fn(*args)`` as a Ray task holding a GPU when the Ray cluster has GPU nodes or can launch them (the
    driver may be a CPU head), else in this process. ``use_gpu`` forces either."""
    import ray

    if use_gpu is None and ray.is_initialized():
        use_gpu = resolve_use_gpu(None)
    if not use_gpu:
        return fn(*args)
    if not ray.is_initialized():
        from korlora.raycompat import init_local_ray

        init_local_ray()
    task = ray.remote(num_gpus=1, num_cpus=1)(fn)
    try:
        return ray.get(task.remote(*args))
    except ray.exceptions.RayTaskError as e:
        if isinstance(e.cause, KorloraError):
            raise e.cause from None
        raise
