"""GPU requests on autoscaling clusters, and Ray Train across two nodes that loses one mid-run.

Every test starts its own Ray cluster on this host and shuts it down, even on failure. A Ray connection left
by an earlier test (the session's ``ray_local``) is shut down first: a driver talks to one cluster at a time.
Later tests that use ``ray_local`` join a fresh local Ray through ``init_local_ray`` (or Ray Data's
auto-init).

The autoscaling cluster is what ``ray.cluster_utils.AutoscalingCluster`` builds (a head started with
``--autoscaling-config`` and ``RAY_FAKE_CLUSTER=1``, whose ``fake_multinode`` provider launches raylets on
this host with fake ``GPU`` resources), built here with ``ray.cluster_utils.Cluster`` instead because in
Ray 2.60 ``AutoscalingCluster`` cannot be used as is: its base config (``fake_multi_node/example.yaml``)
is not in the wheel, and its ``start``/``shutdown`` run ``ray stop --force``, which kills every Ray process
of this user on the machine, other test sessions' included. This one uses its own ports and stops only its
own processes.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from test_train import write_data

from korlora.errors import KorloraError
from korlora.train import cluster as cluster_module
from korlora.train.cluster import cluster_gpu_capacity, require_gpu_capacity, resolve_use_gpu

GPU_NODE_TYPE = "gpu_worker"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _shutdown_ray() -> None:
    import ray

    if ray.is_initialized():
        ray.shutdown()


@pytest.fixture
def fresh_ray():
    """No Ray connection before the test (an earlier test's is shut down) and none after it."""
    _shutdown_ray()
    yield
    _shutdown_ray()


def _autoscaling_config(gcs_address: str) -> dict:
    """A CPU-only head and a GPU worker node type with ``min_workers: 0``, like ``ray_cluster.yaml``."""
    return {
        "cluster_name": "korlora-fake", "max_workers": 1, "upscaling_speed": 1.0, "idle_timeout_minutes": 1,
        "provider": {"type": "fake_multinode", "use_node_id_as_ip": True, "disable_node_updaters": True,
                     "disable_launch_config_check": True, "gcs_address": gcs_address},
        "head_node_type": "ray.head.default",
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 1}, "node_config": {}, "max_workers": 0},
            GPU_NODE_TYPE: {"resources": {"CPU": 1, "GPU": 1}, "node_config": {},
                            "min_workers": 0, "max_workers": 1},
        },
        "auth": {}, "docker": {}, "file_mounts": {}, "cluster_synced_files": [],
        "file_mounts_sync_continuously": False, "rsync_exclude": [], "rsync_filter": [],
        "initialization_commands": [], "setup_commands": [], "head_setup_commands": [],
        "worker_setup_commands": [], "head_start_ray_commands": [], "worker_start_ray_commands": [],
    }


@contextmanager
def fake_autoscaling_cluster(tmp_path: Path, monkeypatch):
    """Head with 1 CPU whose autoscaler (v1, the default of ``ray up``) launches GPU nodes on this host."""
    import psutil
    import ray
    from ray._private import ray_constants
    from ray.cluster_utils import Cluster

    port = _free_port()
    config_file = tmp_path / "autoscaling.json"  # JSON is YAML too; AutoscalingCluster writes JSON
    config_file.write_text(json.dumps(_autoscaling_config(f"{ray.util.get_node_ip_address()}:{port}")))
    # read by the monitor process (a child of this one): the fake provider and a 1 s autoscaler loop
    monkeypatch.setenv("RAY_FAKE_CLUSTER", "1")
    monkeypatch.setenv("AUTOSCALER_UPDATE_INTERVAL_S", "1")
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "num_gpus": 0, "gcs_server_port": port, "autoscaling_config": str(config_file),
        "include_dashboard": True, "dashboard_host": "127.0.0.1", "dashboard_port": _free_port()})
    monitor_pid = cluster.head_node.all_processes[ray_constants.PROCESS_TYPE_MONITOR][0].process.pid
    monitor = psutil.Process(monitor_pid)
    try:
        yield cluster, config_file
    finally:
        # the nodes the autoscaler launched are the monitor's children: stop them with the head
        launched = monitor.children(recursive=True) if monitor.is_running() else []
        _shutdown_ray()
        cluster.shutdown()
        for proc in launched:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(launched, timeout=10)


class AutoscalerWatch(threading.Thread):
    """Polls what the autoscaler saw (its status in the GCS) and the cluster's nodes while a job runs."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.gpu_demand_seen = False  # a pending bundle with GPU reached the autoscaler's load metrics
        self.gpu_launch_seen = False  # the autoscaler launched (or runs) a node of the GPU node type
        self.gpu_node_ids: set[str] = set()
        self.stop = threading.Event()

    def run(self) -> None:
        import ray
        from ray._private import ray_constants
        from ray.experimental.internal_kv import _internal_kv_get

        while not self.stop.is_set():
            raw = _internal_kv_get(ray_constants.DEBUG_AUTOSCALING_STATUS)
            if raw:
                status = json.loads(raw)
                load = status.get("load_metrics_report") or {}
                bundles = [b for pg, _ in load.get("pg_demand") or [] for b, _ in pg["bundles"]]
                bundles += [b for b, _ in load.get("resource_demand") or []]
                self.gpu_demand_seen |= any(b.get("GPU", 0) >= 1 for b in bundles)
                report = status.get("autoscaler_report") or {}
                self.gpu_launch_seen |= GPU_NODE_TYPE in (report.get("node_type_mapping") or {}).values()
            nodes = ray.nodes()
            self.gpu_node_ids |= {n["NodeID"] for n in nodes if n["Alive"] and n["Resources"].get("GPU")}
            time.sleep(0.25)


@pytest.mark.slow
def test_gpu_request_on_autoscaling_cluster_launches_a_gpu_node(tmp_path, monkeypatch, caplog, fresh_ray):
    import ray
    import ray.train
    from ray.train.torch import TorchConfig, TorchTrainer

    with fake_autoscaling_cluster(tmp_path, monkeypatch) as (cluster, config_file):
        ray.init(address=cluster.address)
        capacity = cluster_gpu_capacity()
        assert capacity == {"running_gpus": 0.0, "max_gpus": 1.0, "source": str(config_file),
                            "launchable": [{"node_type": GPU_NODE_TYPE, "gpus": 1, "max_workers": 1}]}
        assert resolve_use_gpu(None) is True  # no GPU node exists yet, but one can be launched
        require_gpu_capacity("--use_4bit")  # passes for the same reason
        with caplog.at_level(logging.WARNING, logger=cluster_module.__name__):
            assert resolve_use_gpu(False) is False
        warnings = [r.getMessage() for r in caplog.records if r.name == cluster_module.__name__]
        assert len(warnings) == 1 and "training on CPUs" in warnings[0] and GPU_NODE_TYPE in warnings[0]
        with monkeypatch.context() as m:  # a driver off the head node reads the config through a head task
            m.setattr(cluster_module, "_driver_on_head_node", lambda: False)
            assert cluster_gpu_capacity() == capacity

        def report_placement(config):
            import tempfile

            context = ray.get_runtime_context()
            with tempfile.TemporaryDirectory() as tmp:  # Train V2 keeps the metrics of checkpoints only
                gpu_ids = context.get_accelerator_ids()["GPU"]
                placement = {"node_id": context.get_node_id(), "gpu_ids": gpu_ids}
                ray.train.report(placement, checkpoint=ray.train.Checkpoint.from_directory(tmp))

        # Fake GPUs have no CUDA behind them, so NCCL (TorchConfig's default on GPU workers) cannot start;
        # gloo sets up the same process group on CPU tensors, and the GPU request is the same either way.
        trainer = TorchTrainer(
            report_placement, torch_config=TorchConfig(backend="gloo"),
            scaling_config=ray.train.ScalingConfig(num_workers=1, use_gpu=resolve_use_gpu(None),
                                                   resources_per_worker={"CPU": 1, "GPU": 1}),
            run_config=ray.train.RunConfig(name="gpu-request", storage_path=str(tmp_path / "ray_results")))
        watch = AutoscalerWatch()
        watch.start()
        try:
            result = trainer.fit()
        finally:
            watch.stop.set()
            watch.join()
        assert watch.gpu_demand_seen, "the worker's GPU bundle never reached the autoscaler"
        assert watch.gpu_launch_seen, "the autoscaler launched no node of the GPU node type"
        assert result.metrics["node_id"] in watch.gpu_node_ids  # the worker ran on the launched GPU node
        assert result.metrics["gpu_ids"] == ["0"]  # with a GPU that Ray assigned to it


@pytest.mark.slow
def test_plain_local_cluster_has_no_gpu_capacity(caplog, fresh_ray):
    import ray

    ray.init(num_cpus=1, num_gpus=0, include_dashboard=False)
    assert cluster_gpu_capacity() == {"running_gpus": 0.0, "launchable": [], "max_gpus": 0.0, "source": None}
    assert resolve_use_gpu(None) is False
    with caplog.at_level(logging.WARNING, logger=cluster_module.__name__):
        assert resolve_use_gpu(True) is True  # explicit wins, with a warning: nothing will ever run it
    assert any("wait for GPUs" in r.getMessage() for r in caplog.records)
    with pytest.raises(KorloraError, match="--use_4bit needs a CUDA GPU"):
        require_gpu_capacity("--use_4bit")


def _checkpoint_steps(run_dir: Path, registered_only: bool = False) -> dict[str, int]:
    """Ray Train checkpoint directory -> the step of the HF checkpoint inside it (complete ones only). With
    ``registered_only``, only those the Train controller has registered (its snapshot file lists them): a
    checkpoint whose files exist but whose report was not registered yet is not one a restart resumes from."""
    names = None
    if registered_only:
        try:
            snapshot = json.loads((run_dir / "checkpoint_manager_snapshot.json").read_text())
            names = {c["checkpoint_dir_name"] for c in snapshot["checkpoint_results"]}
        except (OSError, ValueError, KeyError):
            return {}
    steps = {}
    for state in run_dir.glob("checkpoint_*/checkpoint/trainer_state.json"):
        name = state.parent.parent.name
        if names is not None and name not in names:
            continue
        try:
            steps[name] = json.loads(state.read_text())["global_step"]
        except (OSError, ValueError, KeyError):
            pass  # still being written
    return steps


class NodeLoss(threading.Thread):
    """Removes ``node`` once Ray Train has registered a checkpoint of the run, then adds a replacement node,
    and records the registered checkpoints at the removal and the checkpoints written after it."""

    def __init__(self, cluster, node, run_dir: Path, node_args: dict) -> None:
        super().__init__(daemon=True)
        self.cluster, self.node, self.run_dir, self.node_args = cluster, node, run_dir, node_args
        self.before: dict[str, int] | None = None  # registered checkpoints when the node went
        self.existing: set[str] = set()  # every checkpoint directory then, registered or not
        self.after: dict[str, int] = {}
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            while not self.stop.is_set() and self.before is None:
                if _checkpoint_steps(self.run_dir, registered_only=True):
                    self.cluster.remove_node(self.node)  # the raylet and the Train worker on it die
                    self.before = _checkpoint_steps(self.run_dir, registered_only=True)
                    self.existing = {p.name for p in self.run_dir.glob("checkpoint_*")}
                    self.cluster.add_node(**self.node_args)  # room for the second worker again
                time.sleep(0.05)
            while not self.stop.is_set():
                steps = _checkpoint_steps(self.run_dir)
                self.after.update({k: v for k, v in steps.items() if k not in self.existing})
                time.sleep(0.1)
        except BaseException as e:  # reported by the test
            self.error = e


@pytest.mark.slow
def test_two_nodes_lose_one_and_finish_from_the_last_checkpoint(tmp_path, tiny_ko, korlora_cache, fresh_ray,
                                                                monkeypatch):
    import ray
    import torch
    from ray.cluster_utils import Cluster
    from safetensors.torch import load_file

    from korlora.train.config import TrainConfig
    from korlora.train.driver import run_training

    # one CPU per node and per worker: one worker per node, and one torch thread each (two OpenMP threads
    # per worker on two shared cores spin against each other: steps took a minute instead of a second)
    node_args = {"num_cpus": 1}
    # the restarted worker group waits for the replacement node and a fresh worker process: on two busy
    # cores that can exceed Train's 60 s default (the driver passes this variable on to the controller)
    monkeypatch.setenv("RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S", "600")
    # shutdown_at_exit=False: nodes that register exit hooks install a SIGTERM handler, which only the main
    # thread may do, and the replacement node is added from a thread (the finally below stops every node)
    cluster = Cluster(initialize_head=True, shutdown_at_exit=False, head_node_args={
        **node_args, "include_dashboard": True, "dashboard_host": "127.0.0.1",
        "dashboard_port": _free_port()})
    try:
        second = cluster.add_node(**node_args)
        # the driver joins this cluster: init_local_ray (in run_training) keeps an existing connection
        env = {k: os.environ[k] for k in ("KORLORA_CACHE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                                          "TOKENIZERS_PARALLELISM") if k in os.environ}
        ray.init(address=cluster.address, runtime_env={"env_vars": env})
        data = write_data(tmp_path / "data.jsonl", n=96)
        storage = tmp_path / "ray_results"  # one directory that both nodes see: the shared storage

        def config(name: str) -> TrainConfig:
            return TrainConfig(
                model_name_or_path="tiny-ko", data_file=str(data), output_dir=str(tmp_path / name),
                storage_path=str(storage), run_name=name, max_steps=16, save_steps=4, logging_steps=4,
                per_device_train_batch_size=4, gradient_accumulation_steps=2, learning_rate=2e-3,
                num_workers=2, cpus_per_worker=1, max_failures=3, seed=0, eval_share=0.1, mlflow=False)

        reference = run_training(config("uninterrupted"))
        loss = NodeLoss(cluster, second, storage / "interrupted", node_args)
        loss.start()
        try:
            result = run_training(config("interrupted"))
        finally:
            time.sleep(0.5)  # the last checkpoint's files
            loss.stop.set()
            loss.join()
        print(f"registered checkpoints when the node was removed: {loss.before}; written after: {loss.after}")
        assert loss.error is None, loss.error
        assert loss.before, "the run finished before a checkpoint was seen: no node was removed"
        last_before = max(loss.before.values())
        assert last_before < 16, f"the node was removed after the run ended (checkpoints: {loss.before})"
        # resumed from the last checkpoint: every checkpoint after the loss is further on, none repeats a step
        assert loss.after and min(loss.after.values()) > last_before, (loss.before, loss.after)
        assert result.metrics["global_step"] == reference.metrics["global_step"] == 16

        a = load_file(reference.output_dir / "adapter_model.safetensors")
        b = load_file(result.output_dir / "adapter_model.safetensors")
        assert a.keys() == b.keys() and a
        diff = max((a[k] - b[k]).abs().max().item() for k in a)
        print(f"max abs adapter difference, interrupted vs uninterrupted: {diff:.3g}")
        # Resuming restores weights, optimizer, schedule, RNG and data order, so only float32 summation order
        # could differ (seen: 0, bit-identical). A mid-run Adam step moves weights by about the learning rate
        # (2e-3 here): 1e-4 is 20× smaller, so steps lost or redone after the restart (step 4) would fail.
        assert all(torch.allclose(a[k], b[k], atol=1e-4) for k in a), diff
    finally:
        _shutdown_ray()
        cluster.shutdown()
