"""korlora tune: the search space, the trial data mix, the champion alias, and a real sweep on tiny-ko
against a real MLflow server, checked in headless Chromium."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from korlora.config import load_config
from korlora.io import read_jsonl, write_jsonl

DISCLAIMER = "정확한 판단은 전문가와 상담하세요."


def chat(i: int, answer: str) -> dict:
    return {"id": f"r{i}", "messages": [{"role": "user", "content": f"질문 {i}번에 답해 주세요."},
                                        {"role": "assistant", "content": answer}]}


def test_search_space_errors_say_what_is_accepted():
    from korlora.tune.config import TuneConfig

    with pytest.raises(ValueError, match="unknown parameter 'lr'"):
        TuneConfig(search_space={"lr": {"uniform": [0, 1]}})
    with pytest.raises(ValueError, match="unknown distribution 'normal'"):
        TuneConfig(search_space={"learning_rate": {"normal": [0, 1]}})
    with pytest.raises(ValueError, match="loguniform bounds must be positive"):
        TuneConfig(search_space={"learning_rate": {"loguniform": [0, 1e-3]}})
    with pytest.raises(ValueError, match="lower bound"):
        TuneConfig(search_space={"weight_correction": {"uniform": [1, 0.5]}})
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        TuneConfig(search_space={"disclaimer_cap": {"choice": [0.0, 1.5]}})
    cfg = TuneConfig(search_space={"learning_rate": {"choice": [1e-4, 2e-4]}})
    assert cfg.space()["learning_rate"] == {"choice": [1e-4, 2e-4]}
    assert cfg.space()["weight_no_warning"] == {"uniform": [0.0, 1.0]}  # defaults fill the rest


def test_points_to_evaluate_are_completed_from_the_space():
    from korlora.tune.config import TuneConfig
    from korlora.tune.space import complete_points

    space = TuneConfig(search_space={"disclaimer_cap": {"choice": [0.02, 0.05]}}).space()
    (point,) = complete_points([{"learning_rate": 1e-4}], space)
    assert point["learning_rate"] == 1e-4
    assert point["weight_correction"] == 0.5 and point["disclaimer_cap"] == 0.02
    assert point["weight_original"] == pytest.approx(0.65)
    with pytest.raises(ValueError, match="unknown parameter"):
        complete_points([{"lr": 1e-4}], space)


def test_search_space_from_yaml_through_the_cli(tmp_path):
    from korlora.config import parse_config
    from korlora.tune.config import TuneConfig

    path = tmp_path / "tune.yaml"
    path.write_text("search_space:\n  learning_rate: {loguniform: [2.0e-5, 1.0e-4]}\nnum_samples: 3\n",
                    encoding="utf-8")
    cfg = parse_config(TuneConfig, ["--config", str(path), "--seed", "7"])
    assert cfg.space()["learning_rate"] == {"loguniform": [2e-5, 1e-4]}
    assert (cfg.num_samples, cfg.train.seed) == (3, 7)  # --seed is a training option, reached from tune


def test_trial_data_follows_the_weights_and_the_cap(tmp_path):
    from korlora.clean.rebalance import row_disclaimer_patterns
    from korlora.tune.search import trial_data

    original = [chat(i, (DISCLAIMER + " " if i % 4 == 0 else "") + f"네, {i}번 질문에 차근차근 답해 드릴게요.")
                for i in range(400)]
    no_warning = [chat(1000 + i, f"바로 답해 드리면 {i}번은 이렇게 하시면 됩니다.") for i in range(50)]
    correction = [chat(2000 + i, f"고친 답변 {i}번입니다. 첫 문장부터 한글로 시작합니다.") for i in range(50)]
    sources = {}
    for name, rows in (("original", original), ("no_warning", no_warning), ("correction", correction)):
        sources[name] = str(tmp_path / f"{name}.jsonl")
        write_jsonl(sources[name], rows)
    params = {"weight_original": 0.5, "weight_no_warning": 0.25, "weight_correction": 0.25, "disclaimer_cap": 0.02}
    data_file, manifest = trial_data(params, sources, tmp_path / "trial", rows=400, seed=1)
    rows = read_jsonl(data_file).rows
    assert len(rows) == manifest["rows"] == 400
    counts = {name: sum(r["source"] == name for r in rows) for name in ("original", "no_warning", "correction")}
    assert counts == {"original": 200, "no_warning": 100, "correction": 100}  # 50 rows each, repeated
    capped = read_jsonl(tmp_path / "trial" / "original_capped.jsonl").rows
    share = sum(bool(row_disclaimer_patterns(r)) for r in capped) / len(capped)
    assert 0 < share <= 0.02
    assert manifest["disclaimer_cap"]["max_ratio"] == 0.02
    assert json.loads((tmp_path / "trial" / "train.manifest.json").read_text())["sha256"] == manifest["sha256"]


def test_champion_moves_only_for_a_better_objective(tmp_path, monkeypatch):
    import mlflow

    from korlora.track.registry import promote_champion

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)  # the local artifact root
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}", encoding="utf-8")
    mlflow.set_experiment("registry")
    client = mlflow.MlflowClient()
    results = []
    for objective in (1.0, 2.0, 0.5):
        with mlflow.start_run() as run:
            mlflow.log_artifacts(str(adapter), "adapter")
        results.append(promote_champion(client, "ko-adapter", run.info.run_id, "adapter", objective,
                                        tags={"mix": {"original": 0.5}, "learning_rate": 1e-4}))
    assert [r["promoted"] for r in results] == [True, False, True]
    assert [r["champion_version"] for r in results] == [1, 1, 3]
    champion = client.get_model_version_by_alias("ko-adapter", "champion")
    assert int(champion.version) == 3 and float(champion.tags["objective"]) == 0.5
    assert json.loads(champion.tags["mix"]) == {"original": 0.5}
    local = mlflow.artifacts.download_artifacts("models:/ko-adapter@champion", dst_path=str(tmp_path / "dl"))
    assert (Path(local) / "adapter_config.json").is_file()


# ---------------------------------------------------------------- a real sweep, a real server, a real browser

@pytest.fixture(scope="module")
def sweep(tmp_path_factory, tiny_ko, ray_local):
    """A 4-trial sweep on tiny-ko against a real ``mlflow server``: two learning rates that learn, one too
    small to learn (ASHA stops it), and one impossible learning rate (the trial raises)."""
    from mlflow_ui import mlflow_server

    from korlora.data.build import build_dialogues
    from korlora.data.config import BuildConfig
    from korlora.relearn.demo import make_legacy
    from korlora.tune.config import TuneConfig
    from korlora.tune.search import run_sweep

    root = tmp_path_factory.mktemp("sweep")
    rows = build_dialogues(BuildConfig(output=str(root / "built.jsonl"), num_rows=240, seed=3, report=False))
    write_jsonl(root / "legacy.jsonl", make_legacy(rows, 0.3, 0.1, seed=3))
    cfg = load_config(
        TuneConfig, None, data_file=str(root / "legacy.jsonl"), model_name_or_path="tiny-ko", run_dir=str(root / "runs"),
        search_space={"learning_rate": {"choice": [3e-3, 1e-3, 1e-7, -1.0]}},
        points_to_evaluate=[{"learning_rate": 3e-3}, {"learning_rate": 1e-3}, {"learning_rate": 1e-7},
                            {"learning_rate": -1.0}],
        num_samples=4, max_concurrent_trials=1, no_warning_rows=96, correction_rows=96, eval_share=0.15,
        train_rows=240, max_steps=24, save_steps=8, per_device_train_batch_size=8, gradient_accumulation_steps=1,
        max_length=192, registered_model="korlora-tiny", experiment_name="korlora-tune-test", seed=5,
        # the gate's eval runs on the held-out prompts; a 3M model after 24 steps is not held to a real bar here
        # (tests/test_eval_gate.py tests the gate itself)
        eval_max_new_tokens=24, min_korean_share=0.0, min_stop_share=0.0, max_disclaimer_start_share=1.0,
        max_noise_start_share=1.0)
    server_root = root / "server"
    server_root.mkdir()
    saved = os.environ.get("MLFLOW_TRACKING_URI")
    with mlflow_server(server_root) as url:
        os.environ["MLFLOW_TRACKING_URI"] = url
        try:
            report = run_sweep(cfg)
            yield {"report": report, "url": url, "cfg": cfg, "root": root}
        finally:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
            if saved:
                os.environ["MLFLOW_TRACKING_URI"] = saved


@pytest.mark.slow
def test_sweep_records_every_trial_with_a_final_status(sweep, monkeypatch):
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", sweep["url"])
    report = sweep["report"]
    outcomes = {t["config"]["learning_rate"]: t["outcome"] for t in report["trials"]}
    assert len(outcomes) == 4
    assert outcomes[-1.0] == "failed"
    assert outcomes[1e-7] == "stopped_early"  # learns nothing: worse than the first trial at the first rung
    assert outcomes[3e-3] == "finished"
    assert report["best"]["config"]["learning_rate"] in (3e-3, 1e-3)
    client = mlflow.MlflowClient()
    children = client.search_runs([client.get_experiment_by_name("korlora-tune-test").experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{report['mlflow_run_id']}'")
    runs = [r for r in children if "korlora.trial_id" in r.data.tags]
    stages = {r.info.run_name for r in children} - {r.info.run_name for r in runs}
    assert stages == {"clean", "eval_split", "no_warning", "correction"}  # data preparation nests too
    status = {float(r.data.params["search.learning_rate"]): r.info.status for r in runs}
    assert status == {3e-3: "FINISHED", 1e-3: status[1e-3], 1e-7: "KILLED", -1.0: "FAILED"}
    assert status[1e-3] in ("FINISHED", "KILLED")
    by_lr = {float(r.data.params["search.learning_rate"]): r for r in runs}
    assert "learning_rate must be positive" in by_lr[-1.0].data.tags["korlora.error"]
    assert by_lr[1e-7].data.tags["korlora.stopped_by"] == "ASHA"
    finished = by_lr[3e-3]
    history = client.get_metric_history(finished.info.run_id, "objective")
    assert len(history) >= 3  # every evaluation, by step
    assert {"final_objective", "final_start_disclaimer_share", "final_eval_loss"} <= set(finished.data.metrics)
    parent = client.get_run(report["mlflow_run_id"])
    assert parent.data.metrics["trials_failed"] == 1 and parent.data.metrics["trials_stopped_early"] >= 1
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id, "charts")}
    assert artifacts == {"charts/loss_curves.png", "charts/objective_vs_lr.png", "charts/start_shares.png"}
    inputs = {d.dataset.name: d.dataset.digest for d in parent.inputs.dataset_inputs}
    assert set(inputs) == {"original", "no_warning", "correction", "eval"} and all(inputs.values())


@pytest.mark.slow
def test_champion_adapter_loads_with_autopeft(sweep, monkeypatch, tmp_path):
    import mlflow
    import torch
    from peft import AutoPeftModelForCausalLM

    monkeypatch.setenv("MLFLOW_TRACKING_URI", sweep["url"])
    report = sweep["report"]
    champion = mlflow.MlflowClient().get_model_version_by_alias("korlora-tiny", "champion")
    assert champion.run_id == report["best"]["mlflow_run_id"]
    assert float(champion.tags["objective"]) == pytest.approx(report["best"]["metrics"]["objective"])
    for tag in ("base_model", "data_manifest_sha256", "learning_rate", "mix", "start_disclaimer_share",
                "eval_korean", "eval_hangul_start", "eval_stop", "eval_score"):
        assert champion.tags[tag], tag
    assert champion.tags["gate"] == "passed"
    local = mlflow.artifacts.download_artifacts("models:/korlora-tiny@champion", dst_path=str(tmp_path))
    model = AutoPeftModelForCausalLM.from_pretrained(local)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([[1, 2, 3]])).logits
    assert logits.shape[-1] == model.config.vocab_size
    assert any("lora_" in name for name, _ in model.named_parameters())


@pytest.mark.slow
def test_mlflow_ui_shows_the_sweep_in_chromium(sweep):
    from mlflow_ui import check_mlflow_ui, chromium_path

    if chromium_path() is None and not os.environ.get("CI"):
        pytest.skip("no chromium on this machine (`make browser` installs Debian's)")
    report = sweep["report"]
    artifacts = os.environ.get("KORLORA_TEST_ARTIFACTS")
    shots = Path(artifacts) / "mlflow-ui" if artifacts else sweep["root"] / "screenshots"
    names = [report["sweep"], *[f"trial-{t['trial_id']}" for t in report["trials"]]]
    found = check_mlflow_ui(sweep["url"], "korlora-tune-test", names, "korlora-tiny", "champion", shots)
    assert found["runs_seen"] == names
    assert found["model_seen"] and found["alias_seen"]
    assert f"Version {report['champion']['champion_version']}" in found["alias_row"]
    for shot in found["screenshots"]:
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000


def test_pipeline_entrypoint_refuses_bad_settings(capsys):
    from pipelines.tune import main

    assert main(["--num_samples", "0"]) == 2
    assert "--num_samples must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "search_space" in capsys.readouterr().out


def test_a_missing_init_adapter_fails_before_any_trial(tmp_path, monkeypatch):
    from korlora.errors import KorloraError
    from korlora.tune.config import TuneConfig
    from korlora.tune.search import run_sweep

    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(KorloraError, match="not a LoRA adapter directory"):
        run_sweep(load_config(TuneConfig, None, data_file="data.jsonl", init_adapter="no/such/adapter"))
