"""The relearn job: stages cached across a crash, one MLflow parent run, and ``ray job submit``."""

import dataclasses
import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from korlora.config import load_config
from korlora.eval.config import GateConfig
from korlora.relearn.config import RelearnConfig
from korlora.train.config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent


def small_values(tmp_path: Path, data_file: Path, **overrides) -> dict:
    """Flat settings, as flags would give them: relearn's own and the training options."""
    values = dict(data_file=str(data_file), model_name_or_path="tiny-ko", run_dir=str(tmp_path / "run"),
                  no_warning_rows=60, correction_rows=60, learning_rate=2e-3, max_steps=4,
                  per_device_train_batch_size=4, gradient_accumulation_steps=1, max_length=256, diagnose_samples=0,
                  diagnose_max_new_tokens=4, eval_max_new_tokens=8, experiment_name="test-relearn")
    return {**values, **overrides}


def small_relearn(tmp_path: Path, data_file: Path, **overrides) -> RelearnConfig:
    return load_config(RelearnConfig, None, **small_values(tmp_path, data_file, **overrides))


@pytest.fixture(scope="module")
def legacy_file(tmp_path_factory, ray_local):
    from korlora.data.build import build_dialogues
    from korlora.data.config import BuildConfig
    from korlora.io import write_jsonl
    from korlora.relearn.demo import make_legacy

    path = tmp_path_factory.mktemp("legacy") / "legacy.jsonl"
    rows = build_dialogues(BuildConfig(output="unused", num_rows=120, report=False))
    write_jsonl(path, make_legacy(rows, 0.4, 0.15, seed=0))
    return path


def test_make_legacy_breaks_the_requested_shares():
    from korlora.clean.noise import start_category
    from korlora.data.compose import items_by_id, plan_dialogues, render_dialogue
    from korlora.relearn.demo import make_legacy

    items = items_by_id()
    rows = [render_dialogue(s, items) for s in plan_dialogues(600, 1, "korlora-bank")]
    legacy = make_legacy(rows, 0.5, 0.15, seed=0)
    starts = [start_category(r["messages"][-1]["content"]) for r in legacy]
    assert 0.42 < starts.count("disclaimer") / 600 < 0.58
    assert 0.09 < sum(s in ("punct", "role_tag", "blank") for s in starts) / 600 < 0.21
    assert make_legacy(rows, 0.5, 0.15, seed=0) == legacy


@pytest.mark.slow
def test_relearn_resumes_without_redoing_data_stages(tmp_path, tiny_ko, legacy_file, monkeypatch):
    from korlora.relearn.pipeline import run_relearn

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg = small_relearn(tmp_path, legacy_file)
    monkeypatch.setenv("KORLORA_TEST_STOP_AFTER", "merge")
    with pytest.raises(RuntimeError, match="stopped after merge"):
        run_relearn(cfg)
    final = Path(cfg.run_dir) / "data" / "korean_sft_final.jsonl"
    mtime = final.stat().st_mtime_ns
    monkeypatch.delenv("KORLORA_TEST_STOP_AFTER")
    result = run_relearn(cfg)
    status = {s["stage"]: s["status"] for s in result["stages"]}
    assert all(status[s] == "reused" for s in ("diagnose_before", "clean", "rebalance", "no_warning", "correction",
                                                "merge")), status
    assert status["train"] == "ran" and status["diagnose_after"] == "ran"
    assert final.stat().st_mtime_ns == mtime
    manifest = json.loads((Path(cfg.run_dir) / "manifest.json").read_text())
    assert "data/korean_sft_final.jsonl" in manifest["files"] and "adapter/adapter_model.safetensors" in manifest["files"]
    rebalance = json.loads((Path(cfg.run_dir) / "stages" / "rebalance.json").read_text())["result"]
    assert rebalance["before_share"] > 0.3 and rebalance["after_share"] <= 0.05
    db = sqlite3.connect(tmp_path / "mlflow.db")
    parent = (Path(cfg.run_dir) / "mlflow_parent_run_id").read_text()
    children = {name for (name,) in db.execute(
        "select r.name from runs r join tags t on t.run_uuid = r.run_uuid "
        "where t.key = 'mlflow.parentRunId' and t.value = ?", (parent,))}
    assert {"clean", "rebalance", "no_warning", "correction", "merge", "train", "diagnose_after"} <= children


@pytest.mark.slow
def test_relearn_with_dpo_registers_past_the_gate_only(tmp_path, tiny_ko, legacy_file, monkeypatch):
    """SFT relearn → DPO on the correction pairs → diagnosis and eval of the DPO adapter → a registry version;
    the same adapter registered again under a gate it cannot pass is refused and the champion stays."""
    import mlflow
    from peft import AutoPeftModelForCausalLM

    from korlora.relearn.pipeline import run_relearn

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    lenient = dict(min_korean_share=0.0, min_stop_share=0.0, max_disclaimer_start_share=1.0,
                   max_noise_start_share=1.0)
    cfg = small_relearn(tmp_path, legacy_file, preference="dpo", preference_steps=4, preference_learning_rate=1e-3,
                        register="ko-relearn", **lenient)
    result = run_relearn(cfg)
    run_dir = Path(cfg.run_dir)
    status = {s["stage"]: s["status"] for s in result["stages"]}
    assert status["preference"] == "ran"
    preference = json.loads((run_dir / "stages" / "preference.json").read_text())["result"]
    assert preference["global_step"] == 4
    diagnosis = json.loads((run_dir / "diagnose_after" / "diagnosis.json").read_text())
    assert diagnosis["adapter"] == str(run_dir / "adapter_preference")
    evaluation = json.loads((run_dir / "eval_after" / "eval.json").read_text())
    assert evaluation["adapter"] == str(run_dir / "adapter_preference")
    # each answer keeps the register its prompt asks for beside the verdict on it
    answer = evaluation["answers"][0]
    assert answer["register"] in ("hapsyo", "haeyo", "banmal", "haera")
    assert answer["register_verdict"] in ("match", "mismatch", None)
    assert set(result["eval"]["after"]) >= {"korean_share", "hangul_start_share", "stop_share"}
    model = AutoPeftModelForCausalLM.from_pretrained(str(run_dir / "adapter_preference"))
    assert not (run_dir / "adapter_preference" / "ref").exists()  # DPO's frozen reference copy is not shipped
    assert any("lora_" in name for name, _ in model.named_parameters())
    assert result["registered"]["promoted"] and result["registered"]["version"] == 1

    strict = dataclasses.replace(cfg, gate=dataclasses.replace(cfg.gate, min_stop_share=1.0, min_korean_share=1.0))
    again = run_relearn(strict)
    assert all(s["status"] == "reused" for s in again["stages"])  # nothing retrained: only registered again
    assert again["registered"]["promoted"] is False and again["registered"]["version"] == 2
    assert again["registered"]["gate"]["failures"]
    client = mlflow.MlflowClient()
    assert str(client.get_model_version_by_alias("ko-relearn", "champion").version) == "1"
    assert client.get_model_version("ko-relearn", "2").tags["gate"].startswith("failed: ")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ray_job_submit_with_token_auth(tmp_path, tiny_ko, legacy_file):
    import ray
    from ray.job_submission import JobStatus, JobSubmissionClient

    ray.shutdown()  # `ray stop` below stops every Ray process here; later tests start a fresh local Ray
    port, dash = _free_port(), _free_port()
    bin_dir = Path(sys.executable).parent
    # the cluster's job drivers must find this environment's python, activated or not
    env = {**os.environ, "RAY_AUTH_MODE": "token", "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run([bin_dir / "ray", "start", "--head", f"--port={port}", "--dashboard-host=127.0.0.1",
                    f"--dashboard-port={dash}", "--num-cpus=2", "--include-dashboard=true", "--disable-usage-stats"],
                   check=True, env=env, capture_output=True)
    try:
        config = tmp_path / "relearn.yaml"
        values = small_values(tmp_path, legacy_file, run_dir=str(tmp_path / "job-run"))
        own = {f.name for f in dataclasses.fields(RelearnConfig)}
        train_keys = {f.name for f in dataclasses.fields(TrainConfig)} - own
        gate_keys = {f.name for f in dataclasses.fields(GateConfig)} - own
        nested = {k: v for k, v in values.items() if k not in train_keys | gate_keys}  # relearn's YAML: sections
        nested["train"] = {k: v for k, v in values.items() if k in train_keys}
        nested["gate"] = {k: v for k, v in values.items() if k in gate_keys}
        config.write_text(yaml.safe_dump(nested), encoding="utf-8")
        os.environ["RAY_AUTH_MODE"] = "token"
        client = JobSubmissionClient(f"http://127.0.0.1:{dash}")
        job = client.submit_job(
            entrypoint=f"{sys.executable} -m pipelines.relearn --config {config}",
            runtime_env={"working_dir": str(ROOT), "excludes": [".venv", ".git", "runs", "mlruns", "*.db"],
                         "env_vars": {"KORLORA_CACHE": os.environ["KORLORA_CACHE"], "HF_HUB_OFFLINE": "1",
                                      "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}})
        deadline = time.time() + 600
        while (status := client.get_job_status(job)) not in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
            assert time.time() < deadline, "job did not finish"
            time.sleep(3)
        logs = client.get_job_logs(job)
        assert status == JobStatus.SUCCEEDED, logs[-3000:]
        assert "disclaimer start" in logs
        assert (tmp_path / "job-run" / "adapter" / "adapter_model.safetensors").exists()
        assert (tmp_path / "job-run" / "manifest.json").exists()
    finally:
        os.environ.pop("RAY_AUTH_MODE", None)
        subprocess.run([bin_dir / "ray", "stop", "--force"], env=env, capture_output=True)
