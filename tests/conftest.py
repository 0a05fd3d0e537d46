"""Shared fixtures. Everything runs offline: models are built in this process, never downloaded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def _isolated_mlflow(monkeypatch):
    """MLflow exports the tracking URI it was last given; each test starts from its own working directory."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


@pytest.fixture(scope="session")
def korlora_cache(tmp_path_factory) -> Path:
    """A cache directory of this test session (``KORLORA_TEST_CACHE`` to keep built models between sessions);
    subprocesses and Ray workers find it through the env."""
    path = Path(os.environ.get("KORLORA_TEST_CACHE") or tmp_path_factory.mktemp("korlora-cache"))
    os.environ["KORLORA_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def tiny_ko(korlora_cache) -> Path:
    """The embedded ``tiny-ko`` model, built once per test session."""
    from korlora.models.tiny_ko import build_tiny_ko

    return build_tiny_ko()


@pytest.fixture(scope="session")
def ray_local(korlora_cache):
    """One real local Ray instance for the whole session (2 CPUs), shut down at the end."""
    import ray

    from korlora.raycompat import init_local_ray

    init_local_ray(num_cpus=2)
    yield ray
    ray.shutdown()
