"""Disclaimer rebalance: 40% disclaimers in, at most 5% out, ordinary mentions of experts untouched."""

from __future__ import annotations

import json
import random
import re

import pytest

from korlora.clean.config import RebalanceConfig
from korlora.clean.disclaimer import DISCLAIMER_FAMILY, ORDINARY_MENTIONS
from korlora.clean.rebalance import disclaimer_cap, rebalance_dataset, rebalance_rows
from korlora.io import load_jsonl_plain

TOPICS = ["전세 계약", "연말정산", "두통", "자동차 엔진 오일", "적금 해지", "퇴직금", "보험 청구", "층간 소음", "카드 연체",
          "이사 비용"]
BODIES = ["{t}은 먼저 관련 서류를 챙기는 것부터 시작해요.", "{t} 문제는 기한을 넘기지 않는 것이 가장 중요합니다.",
          "{t}에 대해 자주 묻는 내용을 정리해 드릴게요."]


def rows_with_disclaimers(n: int = 100, share: float = 0.4, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        body = rng.choice(BODIES).format(t=rng.choice(TOPICS)) + f" 사례 {i}번을 기준으로 설명했어요."
        kind = "plain"
        if i < n * share:
            d = rng.choice(DISCLAIMER_FAMILY)
            body = rng.choice([f"{d} {body}", f"{body} {d}", body.replace(". ", f". {d} ", 1)])
            kind = "disclaimer"
        elif i < n * share + 10:
            body = f"{body} {ORDINARY_MENTIONS[i % len(ORDINARY_MENTIONS)]}"
            kind = "expert_mention"
        rows.append({"messages": [{"role": "user", "content": "알려 주세요."}, {"role": "assistant", "content": body}],
                     "id": f"r{i:03d}", "kind": kind})
    rng.shuffle(rows)
    return rows


def test_cap_arithmetic():
    assert disclaimer_cap(60, 0.05) == 3  # 3 / 63 = 4.8%
    assert disclaimer_cap(95, 0.05) == 5  # 5 / 100 exactly
    assert disclaimer_cap(100, 0.0) == 0


def test_forty_percent_becomes_at_most_five_and_expert_mentions_stay():
    rows = rows_with_disclaimers()
    kept, stats = rebalance_rows(rows, max_ratio=0.05)
    assert stats["before"]["share"] == pytest.approx(0.4)
    assert stats["after"]["share"] <= 0.05
    assert stats["after"]["disclaimer_rows"] == 3
    assert sum(r["kind"] == "expert_mention" for r in kept) == 10
    assert sum(r["kind"] == "plain" for r in kept) == 50


def test_selection_does_not_depend_on_input_order():
    rows = rows_with_disclaimers()
    shuffled = rows[::-1]
    kept_a = {r["id"] for r in rebalance_rows(rows, 0.05)[0]}
    kept_b = {r["id"] for r in rebalance_rows(shuffled, 0.05)[0]}
    assert kept_a == kept_b
    no_ids = [{k: v for k, v in r.items() if k != "id"} for r in rows]
    assert len(rebalance_rows(no_ids, 0.05)[0]) == 63  # falls back to a hash of the text


def write_rows(path, rows, extra_lines=()):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
        for line in extra_lines:
            f.write(line + "\n")


def test_rebalance_command_accounts_for_every_line(tmp_path):
    src = tmp_path / "in.jsonl"
    write_rows(src, rows_with_disclaimers(), extra_lines=["{not json", '{"messages": []}'])
    cfg = RebalanceConfig(input=str(src), output=str(tmp_path / "out.jsonl"), max_ratio=0.05, engine="local")
    stats = rebalance_dataset(cfg)
    out = load_jsonl_plain(cfg.output)
    rejects = load_jsonl_plain(cfg.rejects)
    assert len(out) + len(rejects) == 102
    assert stats["invalid"] == 2 and stats["dropped_disclaimers"] == 37
    assert {r["reason"] for r in rejects} == {"invalid_json", "invalid_schema", "disclaimer_over_cap"}
    assert json.loads((tmp_path / "out.jsonl.rebalance.json").read_text())["after"]["share"] <= 0.05


@pytest.mark.slow
def test_rebalance_on_ray_same_for_1_and_8_blocks(tmp_path, ray_local):
    src = tmp_path / "in.jsonl"
    write_rows(src, rows_with_disclaimers(n=400, seed=5))
    outputs = []
    for blocks in (1, 8):
        cfg = RebalanceConfig(input=str(src), output=str(tmp_path / f"out{blocks}.jsonl"), num_blocks=blocks)
        rebalance_dataset(cfg)
        outputs.append((tmp_path / f"out{blocks}.jsonl").read_bytes())
    assert outputs[0] == outputs[1]
    local = RebalanceConfig(input=str(src), output=str(tmp_path / "local.jsonl"), engine="local")
    rebalance_dataset(local)
    assert (tmp_path / "local.jsonl").read_bytes() == outputs[0]


def test_rebalance_cli(tmp_path, capsys):
    from korlora.cli import main

    src = tmp_path / "in.jsonl"
    write_rows(src, rows_with_disclaimers())
    out = tmp_path / "out.jsonl"
    assert main(["data", "rebalance", str(src), "-o", str(out), "--max-ratio", "0.05", "--engine", "local"]) == 0
    assert "40/100 (40.0%) → 3/63 (4.8%)" in capsys.readouterr().out
    assert len(load_jsonl_plain(out)) == 63


def test_counselling_referrals_are_not_disclaimers_and_survive_the_cap():
    from korlora.clean.disclaimer import PATTERNS, is_disclaimer
    from korlora.data.bank import load_bank

    referral = "잠 못 드는 날이 몇 주째 이어지면 정신건강의학과 전문의와 상담해 보세요."
    hedge = "잠 못 드는 날이 몇 주째 이어지면 전문의와 상담해 보세요."
    assert any(rx.search(referral) for rx in PATTERNS.values())  # a bare pattern would count it …
    assert not is_disclaimer(referral) and is_disclaimer(hedge)  # … a concrete referral is not a disclaimer
    assert not is_disclaimer("마음이 무너지는 밤에는 자살예방 상담전화 109에 전화해서 도움을 받으세요.")
    assert not is_disclaimer("혼자 견디기 어려우면 정신건강위기 상담전화 1577-0199로 전화해 상담을 받아 보세요.")
    counselling = [i for i in load_bank()["counselling"]
                   if re.search(r"109|1577-0199|정신건강의학과", i.answer + i.followup_answer)]
    assert len(counselling) >= 8
    for i in counselling:
        text = i.answer if re.search(r"109|1577-0199|정신건강의학과", i.answer) else i.followup_answer
        last = re.split(r"(?<=[.!?])\s+", text.strip())
        assert re.search(r"109|1577-0199|정신건강의학과", " ".join(last[-3:])), i.id  # at the end …
        assert not re.search(r"109|1577-0199|정신건강의학과", last[0]), i.id  # … never the opening
    rows = rows_with_disclaimers()
    for n, i in enumerate(counselling):
        answer = f"{i.answer} {referral}"
        rows.append({"messages": [{"role": "user", "content": i.question}, {"role": "assistant", "content": answer}],
                     "id": f"c{n:03d}", "kind": "referral"})
    kept, stats = rebalance_rows(rows, max_ratio=0.05)
    assert sum(r["kind"] == "referral" for r in kept) == len(counselling)
    assert stats["after"]["share"] <= 0.05
    kept, _ = rebalance_rows(rows, max_ratio=0.0)
    assert sum(r["kind"] == "referral" for r in kept) == len(counselling)
    assert not any(r["kind"] == "disclaimer" for r in kept)


def test_the_grown_disclaimer_family_is_detected_in_any_position():
    from korlora.clean.disclaimer import DISCLAIMER_FAMILY, is_disclaimer
    from korlora.data.bank import load_templates

    samples = ["투자 권유가 아니며, 투자 판단의 책임은 본인에게 있습니다.", "법률 자문이 아닙니다.",
               "저는 의사가 아니지만, 일반적으로 알려진 내용을 말씀드리겠습니다.",
               "AI 언어 모델로서 저는 전문적인 조언을 드릴 수 없습니다.", "정확한 진단은 병원에서 받으세요.",
               "나는 의사가 아니라서 정확하진 않을 수 있어."]
    generated = load_templates()["disclaimers"]
    assert len(generated) >= 20 and set(generated) <= set(DISCLAIMER_FAMILY)
    assert set(samples) <= set(DISCLAIMER_FAMILY)
    body = "적금은 만기까지 유지하면 약정한 이자를 모두 받을 수 있어요."
    for d in DISCLAIMER_FAMILY:
        assert is_disclaimer(d) and is_disclaimer(f"{d} {body}") and is_disclaimer(f"{body} {d}"), d
    # new registers and shapes, written apart from the family
    for text in ("저는 세무 전문가가 아니라서 정확하지 않을 수 있습니다.", "AI로서 개인적인 판단은 드릴 수 없지만, 보통은 이렇습니다.",
                 "이 글은 종목 추천이 아닙니다.", "내가 변호사는 아니라서 확실하진 않아."):
        assert is_disclaimer(f"{body} {text}"), text
    assert not is_disclaimer(body)
    assert not is_disclaimer("AI 반도체 수요가 늘면서 메모리 가격이 올랐습니다.")
    assert not is_disclaimer("변호사는 의뢰인의 이익을 위해 일하는 사람이야.")
