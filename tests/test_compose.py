"""Dialogue assembly: who speaks in which register, which persona fits which topic, which topics one user
can bring together, and how a user moves on after a hard conversation."""

from __future__ import annotations

import dataclasses
import random
import re

import pytest

from korlora.data.bank import load_bank, load_templates
from korlora.data.compose import (
    UNPAIRED_CATEGORIES,
    can_pair,
    items_by_id,
    pair_candidates,
    plan_dialogues,
    prompt_messages,
    question_register,
    render_dialogue,
    tells_about_self,
    with_lead_in,
)

# Hand-written markers of each register, independent of the code under test.
BANMAL_LEAD = re.compile(r"(?:볼게|있잖아|알려 줘|생겼어|물어볼게|있어|돼\?|될까\?|들었어)\s*[.,?]?\s*$")
POLITE_LEAD = re.compile(r"(?:요|니다|니까|십시오)[.?!]?\s*$")
HAPSYO_LEAD = re.compile(r"(?:니다|니까|십시오)[.?!]?\s*$")


def item(category="daily", level="haeyo", question="질문이 있어요.", **kw):
    fields = dict(id=f"{category}-999", category=category, level=level, question=question, answer="답이에요.",
                  followup_question="더 물어봐도 돼요?", followup_answer="물론이에요.")
    fields.update(kw)
    return load_bank()["daily"][0].__class__(**fields)


@pytest.mark.parametrize("question, expected", [
    ("제가 쓴 수필인데, 한 줄로 요약하면 어떤 글인지 궁금해요.\n\n본문 첫 문단이다.\n\n둘째 문단이다.", "haeyo"),
    ("과학 기사 하나 세 문장으로 요약해 줘.\n\n기사 첫 문단이다.\n\n둘째 문단이다.", "banmal"),
    ("보고서 일부입니다. 핵심을 세 개로 정리해 주십시오.\n\n본문이다.\n\n본문이다.", "hapsyo"),
])
def test_question_register_comes_from_the_users_words_not_the_answer(question, expected):
    summary = item(category="summary", level="haera", question=question)
    assert question_register(summary) == expected


def test_question_register_ignores_quoted_text_and_code():
    quoted = item(category="style", level="hapsyo",
                  question='정중한 메일로 고쳐 주세요.\n\n"민수 씨, 견적서 언제 줄 수 있어? 급해."')
    assert question_register(quoted) == "haeyo"
    code = item(category="code", level="banmal", question="이거 왜 안 돼?\n```python\nprint('요')\n```")
    assert question_register(code) == "banmal"


def test_lead_ins_follow_the_question_register():
    templates = load_templates()
    for lead in templates["lead_in"]["haeyo"] + templates["lead_in"]["hapsyo"]:
        assert not lead or POLITE_LEAD.search(lead), lead
    for lead in templates["lead_in"]["banmal"]:
        assert not lead or (BANMAL_LEAD.search(lead) and not POLITE_LEAD.search(lead)), lead
    polite_summary = item(category="summary", level="haera", question="세 문장으로 요약해 주세요.\n\n본문.\n\n본문.")
    casual_summary = item(category="summary", level="haera", question="세 문장으로 요약해 줘.\n\n본문.\n\n본문.")
    # the answer's register says nothing about the user's: a polite request for a casual reply, and back
    polite_to_casual = item(category="dialect", level="banmal", question="경상도 친구처럼 반말로 대답해 주세요.")
    casual_to_polite = item(category="style", level="hapsyo", question="이 메모를 합쇼체 공지로 바꿔 줘.")
    for seed in range(60):
        user = prompt_messages(polite_to_casual, random.Random(seed))[-1]["content"]
        lead = user[: -len(polite_to_casual.question)].strip()
        assert not lead or not BANMAL_LEAD.search(lead), lead
        user = prompt_messages(casual_to_polite, random.Random(seed))[-1]["content"]
        lead = user[: -len(casual_to_polite.question)].strip()
        assert not lead or not HAPSYO_LEAD.search(lead), lead
        user = prompt_messages(polite_summary, random.Random(seed))[-1]["content"]
        lead = user[: -len(polite_summary.question)].strip()
        assert not lead or not BANMAL_LEAD.search(lead), lead  # a 해요체 question gets no 반말 lead-in
        user = prompt_messages(casual_summary, random.Random(seed))[-1]["content"]
        lead = user[: -len(casual_summary.question)].strip()
        assert not lead or not HAPSYO_LEAD.search(lead), lead  # a 반말 question gets no 합쇼체 lead-in


def test_rendered_bank_rows_never_mix_polite_and_casual_user_turns():
    items = items_by_id()
    for spec in plan_dialogues(600, seed=11, source="t"):
        row = render_dialogue(spec, items)
        register = question_register(items[spec["items"][0]])
        user_turns = [m["content"] for m in row["messages"] if m["role"] == "user"]
        first_lines = [t.split("\n")[0] for t in user_turns]
        for line, question in zip(first_lines, [items[i].question for i in spec["items"]], strict=False):
            lead = line[: max(0, len(line) - len(question.split("\n")[0]))].strip()
            if not lead:
                continue
            if register == "banmal":
                assert not POLITE_LEAD.search(lead.rstrip(",")), (spec["id"], lead)
            else:
                assert not BANMAL_LEAD.search(lead), (spec["id"], lead)


def test_a_sentence_opening_lead_in_stays_on_the_questions_first_line():
    question = "이 코드 왜 안 돼?\n```python\nx = 1\n```"
    assert with_lead_in("있잖아,", question).startswith("있잖아, 이 코드 왜 안 돼?\n")
    assert with_lead_in("하나만 물어볼게.", question).startswith("하나만 물어볼게.\n이 코드")
    assert with_lead_in("", question) == question


PERSONA_WORDS = {
    "counselling": ("상담", "들어 주", "곁에서", "친구"),
    "code": ("개발자", "프로그래밍", "코드", "코딩"),
    "law": ("법",),
    "car": ("정비", "자동차", "차"),
    "finance": ("금융", "재무", "재테크", "돈"),
}
OFF_TOPIC = {
    "counselling": ("고객지원", "공공기관", "창구", "개발자", "편집자"),
    "code": ("공공기관", "고객지원", "상담원", "상담 도우미"),
}


def test_personas_match_the_category():
    templates = load_templates()
    bank = load_bank()
    for category, items in bank.items():
        for level in {i.level for i in items}:
            personas = templates["system"][category][level]
            assert personas, (category, level)
            for persona in personas:
                if category in PERSONA_WORDS:
                    assert any(w in persona for w in PERSONA_WORDS[category]), (category, persona)
                for word in OFF_TOPIC.get(category, ()):
                    assert word not in persona, (category, persona)
    items = items_by_id()
    for spec in plan_dialogues(480, seed=5, source="t"):
        row = render_dialogue(spec, items)
        system = [m["content"] for m in row["messages"] if m["role"] == "system"]
        if system:
            assert system[0] in templates["system"][row["category"]][row["speech_level"]]


def test_counselling_is_never_paired_and_gets_no_casual_bridge():
    bank = load_bank()
    counselling = bank["counselling"]
    assert "counselling" in UNPAIRED_CATEGORIES
    assert not any(can_pair(a, b) for a in counselling[:20] for b in counselling[:20])
    assert list(pair_candidates(counselling, random.Random(0))) == []
    specs = plan_dialogues(1500, seed=42, source="t")
    assert not [s for s in specs if s["category"] == "counselling" and s["kind"] == "pair"]
    assert sum(s["category"] == "counselling" for s in specs) == len(counselling)  # every item, once
    a, b = counselling[0], counselling[1]
    with pytest.raises(ValueError):
        render_dialogue({"id": "x", "kind": "pair", "items": [a.id, b.id], "seed": 0, "source": "t"}, items_by_id())


def test_bridges_are_not_casual_and_gentle_after_a_hard_situation():
    templates = load_templates()
    bridges = [b for lists in (templates["next_topic"], templates["next_topic_gentle"]) for v in lists.values() for b in v]
    for bridge in bridges:
        assert not re.match(r"^(?:오|와|아하|헐|우와)[,!. ]", bridge), bridge
    items = items_by_id()
    hard = [i for i in items.values() if i.category == "law" and "사고" in i.question and not tells_about_self(i)]
    plain = [i for i in items.values() if i.category == "law" and i.level == hard[0].level
             and question_register(i) == question_register(hard[0]) and i.id != hard[0].id and can_pair(hard[0], i)]
    spec = {"id": "t", "kind": "pair", "items": [hard[0].id, plain[0].id], "seed": 1, "source": "t"}
    row = render_dialogue(spec, items)
    second_user = [m["content"] for m in row["messages"] if m["role"] == "user"][1]
    gentle = templates["next_topic_gentle"][question_register(plain[0])]
    assert any(second_user.startswith(b) for b in gentle), second_user


def test_pairs_never_put_two_life_stories_in_one_mouth():
    harassed = item(category="law", level="hapsyo", id="law-901",
                    question="같은 팀 선임이 몇 달째 저에게만 업무를 몰아줍니다. 어떻게 해야 합니까?")
    cafe = item(category="law", level="hapsyo", id="law-902",
                question="3년 동안 운영하던 카페를 폐업했습니다. 남은 임대차 계약은 어떻게 됩니까?")
    general = item(category="law", level="hapsyo", id="law-903",
                   question="고소와 고발은 어떻게 다릅니까?")
    assert tells_about_self(harassed) and tells_about_self(cafe) and not tells_about_self(general)
    assert not can_pair(harassed, cafe)
    assert can_pair(harassed, general) and can_pair(general, cafe)
    items = items_by_id()
    for spec in plan_dialogues(1500, seed=42, source="t"):
        if spec["kind"] == "pair":
            a, b = (items[i] for i in spec["items"])
            assert not (tells_about_self(a) and tells_about_self(b)), spec["id"]
            assert a.level == b.level and question_register(a) == question_register(b), spec["id"]


def test_plan_shares_out_what_a_category_cannot_fill():
    bank = {c: items for c, items in load_bank().items()}
    small = dict(bank)
    small["counselling"] = bank["counselling"][:10]
    specs = plan_dialogues(240, seed=3, source="t", bank=small)
    assert len(specs) == 240 and len({s["id"] for s in specs}) == 240
    assert sum(s["category"] == "counselling" for s in specs) == 10


def test_stale_items_can_be_left_out_of_the_plan():
    import datetime as dt

    from korlora.data.bank import fresh_bank

    dated = [i for items in load_bank().values() for i in items if i.as_of is not None]
    assert dated, "the bank should date its time-sensitive items"
    newest = max(i.as_of for i in dated)
    later = newest + dt.timedelta(days=400)
    fresh = fresh_bank(later, max_age_days=365)
    kept = {i.id for items in fresh.values() for i in items}
    assert not kept & {i.id for i in dated}
    undated = dataclasses.replace(dated[0], as_of=None)
    assert not undated.is_stale(later, 0)  # items without as_of never go stale
    same_day = fresh_bank(newest, max_age_days=365)
    assert {i.id for i in dated} <= {i.id for items in same_day.values() for i in items}
