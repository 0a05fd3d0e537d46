"""``korlora eval`` measures and the registry gate: a regressing adapter is refused and the champion stays."""

from __future__ import annotations

import pytest

from korlora.eval.config import GateConfig
from korlora.eval.gate import decide, failures, score
from korlora.eval.metrics import answer_measures, repetition_loop, shares

GOOD = ["엔진오일은 보통 1만 km마다 갈아요. 짧은 거리를 자주 달리면 조금 더 일찍 바꾸세요.",
        "임차권등기명령을 신청하면 이사를 가도 우선변제권을 지킬 수 있어요.",
        "git commit --amend로 메시지를 고친 다음 다시 push하면 돼요."]
REGRESSED = ["정확한 판단은 전문가와 상담하세요. 보통 1만 km마다 갈아요.",
             ". 임차권등기명령을 신청하세요.",
             "정확한 판단은 전문가와 상담하세요. 메시지를 고치면 돼요."]


def overall(answers, stopped=True):
    measured = answer_measures(answers, ["질문이에요?"] * len(answers), ["haeyo"] * len(answers),
                               [stopped] * len(answers))
    return shares(measured)


def test_measures_of_single_answers():
    (clean, disclaimer, english, banmal, loop) = answer_measures(
        [GOOD[0], REGRESSED[0], " Sure, oil should be changed every ten thousand kilometres.",
         "보통 1만 km마다 갈면 돼. 필터도 같이 바꿔.", "좋아요 정말 좋아요 " * 6],
        ["엔진오일은 언제 갈아요?"] * 5, ["haeyo", "haeyo", "haeyo", "haeyo", "haeyo"], [True, True, True, True, False])
    assert clean["start"] == "hangul" and clean["korean"] and clean["register"] == "match"
    assert disclaimer["start"] == "disclaimer" and disclaimer["disclaimer_anywhere"]
    assert not english["korean"] and english["code_switch"]
    assert banmal["register"] == "mismatch" and not banmal["mixed_register"]
    assert loop["repetition"] and not loop["stopped"]
    assert not repetition_loop(GOOD[0] + " " + GOOD[1])


def test_gate_thresholds_and_score():
    gate = GateConfig()
    good, bad = overall(GOOD), overall(REGRESSED)
    assert failures(good, gate) == []
    missed = failures(bad, gate)
    assert any(m.startswith("disclaimer starts") for m in missed) and any(m.startswith("noise starts") for m in missed)
    assert score(good) > score(bad)
    assert failures(overall(GOOD, stopped=False), gate) == ["answers that stop 0.0% (needs >= 90%)"]
    assert decide(good, gate, champion_score=score(good) + 0.01)["promote"] is False  # passes, does not beat
    assert decide(good, gate, champion_score=None)["promote"] is True


def test_regressing_adapter_is_refused_and_the_champion_stays(tmp_path, monkeypatch):
    import mlflow

    from korlora.track.registry import promote_champion

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.chdir(tmp_path)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}", encoding="utf-8")
    mlflow.set_experiment("gate")
    client = mlflow.MlflowClient()
    results = []
    for evaluation in (overall(GOOD), overall(REGRESSED), overall(GOOD[:2] + [REGRESSED[0]])):
        with mlflow.start_run() as run:
            mlflow.log_artifacts(str(adapter), "adapter")
        results.append(promote_champion(client, "ko-adapter", run.info.run_id, "adapter", evaluation=evaluation,
                                        gate=GateConfig()))
    assert [r["promoted"] for r in results] == [True, False, False]
    assert [r["champion_version"] for r in results] == [1, 1, 1]
    champion = client.get_model_version_by_alias("ko-adapter", "champion")
    assert int(champion.version) == 1 and champion.tags["gate"] == "passed"
    refused = client.get_model_version("ko-adapter", "2")
    assert refused.tags["gate"].startswith("failed: ") and "disclaimer starts" in refused.tags["gate"]
    assert float(refused.tags["eval_disclaimer_start"]) == pytest.approx(2 / 3, abs=1e-4)
