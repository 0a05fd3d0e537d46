"""``ray_cluster.yaml`` passes Ray's own cluster-config checks, offline.

``prepare_config`` only merges the AWS defaults shipped with Ray (no boto3 call, no credentials: the AWS
bootstrapping that looks up subnets and security groups runs in ``ray up``, not here) and
``validate_config`` checks the merged result against Ray's JSON schema, which rejects unknown keys and
non-integer resources.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

CLUSTER_YAML = Path(__file__).resolve().parent.parent / "ray_cluster.yaml"


def validate(config: dict) -> dict:
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text(encoding="utf-8"))


def test_cluster_yaml_is_valid(config, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    prepared = validate(config)
    workers = prepared["available_node_types"]["h100_8x"]
    assert workers["resources"] == {"CPU": 192, "GPU": 8}
    assert workers["node_config"]["InstanceType"] == "p5.48xlarge"
    assert 0 <= workers["min_workers"] <= workers["max_workers"] <= prepared["max_workers"]
    assert "GPU" not in prepared["available_node_types"][prepared["head_node_type"]]["resources"]
    # setup_commands are merged in front of the head's and the workers' own commands
    assert any("pip install -q -e" in c for c in prepared["head_setup_commands"])
    assert any("flash-attn" in c for c in prepared["worker_setup_commands"])


def test_cluster_yaml_keeps_the_dashboard_local_and_state_shared(config):
    start = " ".join(config["head_start_ray_commands"])
    assert "--dashboard-host=127.0.0.1" in start and "RAY_AUTH_MODE=token" in start
    assert "MLFLOW_TRACKING_URI" in start
    assert any("/mnt/shared" in c for c in config["setup_commands"])
    header = CLUSTER_YAML.read_text(encoding="utf-8").split("\n\n", 1)[0]
    assert "ray up ray_cluster.yaml" in header and "--storage_path /mnt/shared/ray_results" in header
    assert "python -m pipelines.train" in header


@pytest.mark.parametrize("gpus", [0.5, 7.5])
def test_float_gpu_count_is_rejected(config, gpus):
    # Ray's schema says "integer"; JSON Schema counts 8.0 as an integer, so only fractional counts fail here
    import jsonschema

    bad = copy.deepcopy(config)
    bad["available_node_types"]["h100_8x"]["resources"]["GPU"] = gpus
    with pytest.raises(jsonschema.ValidationError, match="integer"):
        validate(bad)


def test_unknown_top_level_key_is_rejected(config):
    import jsonschema

    bad = copy.deepcopy(config)
    bad["gpu_workers"] = 2
    with pytest.raises(jsonschema.ValidationError, match="gpu_workers"):
        validate(bad)
