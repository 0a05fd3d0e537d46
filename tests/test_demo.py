"""The README's demo on a smaller setting: the collapse is real before the relearn and fixed after it."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_demo_collapses_then_fixes_answer_starts(tmp_path, tiny_ko, ray_local, monkeypatch):
    from korlora.config import load_config
    from korlora.relearn.config import DemoConfig
    from korlora.relearn.demo import demo_command

    monkeypatch.chdir(tmp_path)  # the demo's MLflow store goes to ./mlflow.db
    cfg = load_config(DemoConfig, None, run_dir=str(tmp_path / "demo"), build_rows=1200, legacy_steps=160,
                      no_warning_rows=300, correction_rows=300, max_steps=60, weighted_start_loss_weight=1.0,
                      diagnose_samples=0)
    assert demo_command(cfg) == 0
    report = json.loads((tmp_path / "demo" / "demo_report.json").read_text(encoding="utf-8"))
    (result,) = report["results"].values()
    before, after = result["before"], result["after"]
    assert before["disclaimer_start_share"] >= 0.30, before
    assert after["disclaimer_start_share"] <= 0.05, after
    assert after["punct_start_share"] <= 0.02, after
    assert after["hangul_start_share"] >= 0.95, after
    assert after["next_token_disclaimer_mass"] < before["next_token_disclaimer_mass"]
    assert (tmp_path / "mlflow.db").is_file()
