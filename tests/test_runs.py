"""One MLflow run lifecycle: every run ends FINISHED, FAILED or KILLED — on success, on an exception inside
training, on Ctrl-C — and a run left open inside a block never makes the enclosing run end in its place."""

from __future__ import annotations

import sqlite3

import pytest

from korlora.track.runs import tracked_run


def statuses(db_path) -> dict[str, str]:
    db = sqlite3.connect(db_path)
    return dict(db.execute("select name, status from runs"))


def test_runs_end_finished_failed_or_killed(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.chdir(tmp_path)
    with tracked_run("lifecycle", run_name="ok"):
        mlflow.log_metric("x", 1.0)
    with pytest.raises(ValueError), tracked_run("lifecycle", run_name="raises"):
        raise ValueError("boom")
    with pytest.raises(KeyboardInterrupt), tracked_run("lifecycle", run_name="ctrl-c"):
        raise KeyboardInterrupt
    assert statuses(tmp_path / "mlflow.db") == {"ok": "FINISHED", "raises": "FAILED", "ctrl-c": "KILLED"}
    assert mlflow.active_run() is None
    failed = mlflow.search_runs(filter_string="attributes.run_name = 'raises'", output_format="list")[0]
    assert failed.data.tags["korlora.error"] == "ValueError: boom"


def test_a_run_left_open_inside_ends_before_its_parent(tmp_path, monkeypatch):
    import mlflow

    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuntimeError), tracked_run("lifecycle", run_name="parent") as parent:
        mlflow.start_run(run_name="left-open", nested=True)  # e.g. a stage that crashed without closing
        raise RuntimeError("stage crashed")
    assert statuses(tmp_path / "mlflow.db") == {"parent": "FAILED", "left-open": "FAILED"}
    assert mlflow.active_run() is None
    # resuming by id reuses the run and ends it again, keeping the params it had
    with tracked_run("lifecycle", run_id=parent.info.run_id, params={"a": 1}):
        pass
    with tracked_run("lifecycle", run_id=parent.info.run_id, params={"a": 2, "b": 3}):
        pass
    run = mlflow.get_run(parent.info.run_id)
    assert run.info.status == "FINISHED" and run.data.params == {"a": "1", "b": "3"}


def test_ctrl_c_during_training_kills_the_run_and_its_parent(tmp_path, tiny_ko, monkeypatch):
    """Ctrl-C inside ``trainer.fit()`` (here: raised by a stand-in for it) ends the training run KILLED, and a
    pipeline's enclosing run too."""
    import json

    from ray.train.torch import TorchTrainer

    from korlora.errors import KorloraError  # noqa: F401 - the driver wraps other errors, never Ctrl-C
    from korlora.raycompat import init_local_ray
    from korlora.train.config import TrainConfig
    from korlora.train.driver import run_training

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(TorchTrainer, "fit", interrupted)
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps({"messages": [{"role": "user", "content": f"질문 {i}"},
                                                       {"role": "assistant", "content": "답변입니다."}]},
                                         ensure_ascii=False) for i in range(8)), encoding="utf-8")
    init_local_ray(num_cpus=2)
    cfg = TrainConfig(model_name_or_path="tiny-ko", data_file=str(data), output_dir=str(tmp_path / "out"),
                      experiment_name="lifecycle")
    with pytest.raises(KeyboardInterrupt), tracked_run("lifecycle", run_name="relearn-parent"):
        run_training(cfg)
    runs = statuses(tmp_path / "mlflow.db")
    assert runs.pop("relearn-parent") == "KILLED"
    assert list(runs.values()) == ["KILLED"]  # the training run
