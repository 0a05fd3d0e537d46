"""Answer variants: each item carries several hand-written answers, each data source uses its own, and no
answer is repeated more than a few times in a relearn's training set."""

from __future__ import annotations

from collections import Counter

import pytest
import yaml

from korlora.data.bank import load_bank
from korlora.data.compose import MAX_ANSWER_USES, plan_dialogues, render_dialogue
from korlora.data.correction import SOURCE as CORRECTION
from korlora.data.correction import plan_corrections, render_correction
from korlora.errors import KorloraError

ITEM = {"id": "daily-001", "level": "haeyo", "question": "비 오는 날 할 만한 게 있을까요?",
        "answer": "집 근처 도서관에 가 보세요.",
        "followup": {"question": "도서관이 멀면요?", "answer": "집에서 영화를 보는 것도 좋아요."}}


def write_bank(root, variants=None, more=None):
    (root / "daily.yaml").write_text(yaml.safe_dump({"category": "daily", "items": [ITEM]}, allow_unicode=True),
                                     encoding="utf-8")
    for path, data in ((root / "variants" / "daily.yaml", variants), (root / "variants" / "more" / "daily.yaml", more)):
        if data is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(yaml.safe_dump({"category": "daily", "items": data}, allow_unicode=True), encoding="utf-8")
    return str(root)


def test_variants_follow_the_original(tmp_path):
    root = write_bank(tmp_path, variants={"daily-001": {"answers": ["전시회를 보러 가는 건 어때요?", "보드게임을 해 보세요."],
                                                          "followup_answers": ["근처 카페도 좋아요."]}},
                      more={"daily-001": {"answers": ["실내 클라이밍도 있어요.", "보드게임을 해 보세요."]}})
    (item,) = load_bank(root)["daily"]
    assert item.answers == ("집 근처 도서관에 가 보세요.", "전시회를 보러 가는 건 어때요?", "보드게임을 해 보세요.",
                            "실내 클라이밍도 있어요.")  # the repeated one counted once
    assert item.followup_answers == ("집에서 영화를 보는 것도 좋아요.", "근처 카페도 좋아요.")
    assert item.answer == item.answers[0]


@pytest.mark.parametrize("bad, message", [({"daily-999": {"answers": ["네."]}}, "unknown items daily-999"),
                                          ({"daily-001": {"answers": "네."}}, "list of non-empty answers"),
                                          ({"daily-001": {"answers": ["  "]}}, "list of non-empty answers")])
def test_malformed_variants_are_refused(tmp_path, bad, message):
    with pytest.raises(KorloraError, match=message):
        load_bank(write_bank(tmp_path, variants=bad))


def _assistant_texts(rows):
    return Counter(m["content"] for r in rows for m in r["messages"] if m["role"] == "assistant")


@pytest.fixture(scope="module")
def seed_sized_rows():
    """The three sources a relearn merges, at the seed's sizes, rendered in this process."""
    items = {i.id: i for items in load_bank().values() for i in items}
    build = [render_dialogue(s, items) for s in plan_dialogues(1500, 42, source="korlora-bank")]
    no_warning = [render_dialogue(s, items) for s in plan_dialogues(3000, 1234, source="korlora-no-warning",
                                                                    use_every_item_twice=True)]
    correction = [render_correction(s, items)[0] for s in plan_corrections(3500, 2024)]
    return {"build": build, "no_warning": no_warning, "correction": correction}


def test_sources_never_share_an_answer(seed_sized_rows):
    texts = {name: set(_assistant_texts(rows)) for name, rows in seed_sized_rows.items()}
    assert not texts["build"] & texts["no_warning"]
    assert not texts["build"] & texts["correction"]
    assert not texts["no_warning"] & texts["correction"]
    assert all(r["source"] == CORRECTION for r in seed_sized_rows["correction"])


def test_no_answer_serves_more_than_three_rows_at_the_seed_sizes(seed_sized_rows):
    counts = _assistant_texts([r for rows in seed_sized_rows.values() for r in rows])
    assert max(counts.values()) <= MAX_ANSWER_USES == 3, counts.most_common(3)
