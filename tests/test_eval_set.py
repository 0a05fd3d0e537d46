"""The held-out evaluation set and the loss of a model on its reference answers."""

from __future__ import annotations

import re
from collections import Counter

import pytest
import yaml

from korlora.data.bank import CATEGORIES, load_bank
from korlora.errors import KorloraError
from korlora.eval.heldout import load_eval_set, reference_loss

ITEMS = [
    {"id": "t-1", "category": "daily", "register": "haeyo",
     "messages": [{"role": "user", "content": "주말에 비가 온대요. 실내에서 할 만한 게 있을까요?"}],
     "reference": "가까운 도서관이나 전시회를 둘러보는 건 어때요? 집에서는 보드게임이나 영화 정주행도 좋아요."},
    {"id": "t-2", "category": "it", "register": "banmal", "system": "너는 친절한 개발자야.",
     "messages": [{"role": "user", "content": "깃에서 방금 한 커밋 메시지를 고치려면?"},
                  {"role": "assistant", "content": "git commit --amend를 쓰면 돼."},
                  {"role": "user", "content": "이미 push했으면?"}],
     "reference": "그럼 amend한 다음에 git push --force-with-lease로 올려야 해. 다른 사람이 같은 브랜치를 쓰면 먼저 알려 줘."},
    {"id": "t-3", "category": "law", "register": "hapsyo",
     "messages": [{"role": "user", "content": "전세 계약이 끝났는데 보증금을 못 받고 있습니다."}],
     "reference": "임차권등기명령을 신청하면 이사를 가더라도 대항력과 우선변제권을 지킬 수 있습니다."},
]


def _hf_loss(model, tokenizer, item) -> tuple[float, int]:
    """The loss of the reference by the model's own labels= path: the prompt (with the generation prompt) is
    masked, every later token — the answer and its end of turn — is counted."""
    import torch

    from korlora.eval.heldout import chat_messages

    prompt = tokenizer.apply_chat_template(chat_messages(item), add_generation_prompt=True, tokenize=True,
                                           return_dict=True)["input_ids"]
    full = tokenizer.apply_chat_template(chat_messages(item, item["reference"]), tokenize=True,
                                         return_dict=True)["input_ids"]
    assert full[:len(prompt)] == prompt
    eot = tokenizer.convert_tokens_to_ids("<|im_end|>")
    end = full.index(eot, len(prompt)) + 1  # ChatML: the answer ends at its <|im_end|>
    ids = torch.tensor([full[:end]])
    labels = ids.clone()
    labels[:, :len(prompt)] = -100
    with torch.no_grad():
        return model(input_ids=ids, labels=labels).loss.item(), end - len(prompt)


def test_reference_loss_is_the_answer_tokens_loss(tiny_ko):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_ko)
    model = AutoModelForCausalLM.from_pretrained(tiny_ko)
    per_item = [_hf_loss(model, tokenizer, item) for item in ITEMS]
    tokens = sum(n for _, n in per_item)
    expected = sum(loss * n for loss, n in per_item) / tokens
    batched = reference_loss(model, tokenizer, ITEMS)
    one_by_one = reference_loss(model, tokenizer, ITEMS, logits_budget=1)  # one row per forward
    assert batched["tokens"] == one_by_one["tokens"] == tokens
    assert batched["loss"] == pytest.approx(expected, rel=1e-4)
    assert one_by_one["loss"] == pytest.approx(expected, rel=1e-4)
    worse = [{**item, "reference": "。" * 20 + item["reference"]} for item in ITEMS]
    assert reference_loss(model, tokenizer, worse)["loss"] > batched["loss"]


def test_load_eval_set_reports_malformed_items(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"category": "daily", "prompts": [
        {"id": "x", "register": "haeyo", "messages": [{"role": "user", "content": "안녕하세요"},
                                                      {"role": "assistant", "content": "네"}],
         "reference": "반가워요."}]}, allow_unicode=True), encoding="utf-8")
    with pytest.raises(KorloraError, match="end with a user turn"):
        load_eval_set(bad)
    bad.write_text(yaml.safe_dump({"category": "daily", "prompts": [
        {"id": "x", "register": "polite", "messages": [{"role": "user", "content": "안녕하세요"}],
         "reference": "반가워요."}]}, allow_unicode=True), encoding="utf-8")
    with pytest.raises(KorloraError, match="register"):
        load_eval_set(bad)


def _grams(text: str, n: int = 8) -> set[str]:
    s = re.sub(r"\s+", "", text)
    return {s[i:i + n] for i in range(len(s) - n + 1)}


def test_shipped_eval_set_is_new_and_covers_every_category():
    items = load_eval_set()
    assert len(items) >= 150
    per_category = Counter(i["category"] for i in items)
    assert set(per_category) == set(CATEGORIES), per_category
    multi = Counter(i["category"] for i in items if len(i["messages"]) > 1)
    assert set(multi) == set(CATEGORIES), "every category has multi-turn prompts"
    assert len({i["register"] for i in items}) >= 3

    seen: set[str] = set()
    for item in (i for items_ in load_bank().values() for i in items_):
        for text in (item.question, item.answer, item.followup_question, item.followup_answer):
            seen |= _grams(text)
    from korlora.diagnose.report import load_prompts

    for prompt in load_prompts():
        seen |= _grams(prompt["text"])
    for item in items:
        for text in [m["content"] for m in item["messages"]] + [item["reference"]]:
            grams = _grams(text)
            if grams:
                share = len(grams & seen) / len(grams)
                assert share < 0.2, (item["id"], round(share, 2), text[:60])
