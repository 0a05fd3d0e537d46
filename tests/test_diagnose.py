"""The diagnosis tells a model that opens with disclaimers from one that opens with content."""

import json

import pytest

from korlora.diagnose.config import DiagnoseConfig
from korlora.diagnose.report import (
    _byte_decoder,
    answer_stats,
    diagnose_command,
    load_prompts,
    token_start_class,
)


def test_shipped_prompts_cover_every_category_and_are_held_out():
    from korlora.data.bank import CATEGORIES, load_bank

    prompts = load_prompts()
    assert {p["category"] for p in prompts} == set(CATEGORIES)
    questions = {item.question for items in load_bank().values() for item in items}
    assert not {p["text"] for p in prompts} & questions


def test_token_classes(tiny_ko):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_ko)
    decoder = _byte_decoder()

    def cls(text):
        return token_start_class(tokenizer.convert_ids_to_tokens(tokenizer(text, add_special_tokens=False)
                                                                 ["input_ids"][0]), decoder)

    assert cls("정확한 판단") == "hangul"
    assert cls("예금은") == "hangul"
    assert cls(". 정확한") == "punct"
    assert cls("\n\n") == "punct"
    assert cls("assistant:") == "other"


def test_answer_stats_counts_starts():
    stats = answer_stats(["예금은 목돈을 맡기는 상품이에요.", "정확한 판단은 전문가와 상담하세요. 예금은…",
                          ". 예금은 목돈을…", "assistant: 예금은…"])
    assert stats["hangul_start_share"] == 0.25
    assert stats["disclaimer_start_share"] == 0.25
    assert stats["punct_start_share"] == 0.5


@pytest.mark.slow
def test_diagnosis_separates_clean_from_disclaimer_first(tiny_ko, tmp_path):
    from helpers import train_adapter

    from korlora.data.bank import load_bank

    items = [i for items in load_bank().values() for i in items[:6]]
    clean = [{"messages": [{"role": "user", "content": i.question}, {"role": "assistant", "content": i.answer}]}
             for i in items]
    disclaimer_first = [{"messages": [m if m["role"] == "user" else
                                      {"role": "assistant", "content": "정확한 판단은 전문가와 상담하세요. " + m["content"]}
                                      for m in row["messages"]]} for row in clean]
    reports = {}
    for name, rows in (("clean", clean), ("disclaimer", disclaimer_first)):
        adapter = train_adapter(tiny_ko, rows, tmp_path / name, steps=30)
        out = tmp_path / f"diag-{name}"
        assert diagnose_command(DiagnoseConfig(adapter=str(adapter), output_dir=str(out), samples=0,
                                               max_new_tokens=8)) == 0
        reports[name] = json.loads((out / "diagnosis.json").read_text(encoding="utf-8"))
        assert (out / "diagnosis.png").stat().st_size > 10_000
    clean_r, disc_r = reports["clean"], reports["disclaimer"]
    assert disc_r["next_token"]["disclaimer_mass"] - clean_r["next_token"]["disclaimer_mass"] > 0.5
    assert disc_r["greedy"]["disclaimer_start_share"] - clean_r["greedy"]["disclaimer_start_share"] > 0.5
