"""Answers that open with invisible characters (Gemma 3 emits U+200B runs) are noise starts."""

from __future__ import annotations

import json

import pytest

from korlora.clean.gates import GateOptions, gate_rows
from korlora.clean.noise import (
    NOISE_CATEGORIES,
    is_invisible_char,
    is_noise_start,
    repair_start,
    start_category,
)
from korlora.diagnose.report import NOISE_STARTS, _byte_decoder, answer_stats, token_start_class

INVISIBLE = {
    "zero width space": "\u200b",
    "zero width non-joiner": "\u200c",
    "zero width joiner": "\u200d",
    "word joiner": "\u2060",
    "byte order mark": "\ufeff",
    "soft hyphen": "\u00ad",
    "left-to-right mark (Cf)": "\u200e",
    "hangul filler": "\u3164",
    "hangul choseong filler": "\u115f",
    "hangul jungseong filler": "\u1160",
    "halfwidth hangul filler": "\uffa0",
}


def gate(answer: str, **opts) -> dict:
    row = {"messages": [{"role": "user", "content": "인사해 줘"}, {"role": "assistant", "content": answer}]}
    return gate_rows([(1, json.dumps(row, ensure_ascii=False).encode("utf-8"))], GateOptions(**opts))[0]


@pytest.mark.parametrize("name", list(INVISIBLE))
def test_invisible_first_character_is_a_noise_start(name):
    ch = INVISIBLE[name]
    assert is_invisible_char(ch)
    assert start_category(ch * 3 + "안녕하세요. 반가워요.") == "invisible"
    assert is_noise_start(ch + "안녕하세요.")
    assert repair_start(ch * 2 + "안녕하세요. 반가워요.") == "안녕하세요. 반가워요."


def test_zero_width_run_is_the_noise_class():
    assert start_category("\u200b\u200b안녕하세요") == "invisible"
    assert "invisible" in NOISE_CATEGORIES and "invisible" in NOISE_STARTS


def test_visible_text_is_unchanged():
    assert start_category("안녕\u200b하세요. 반가워요.") == "hangul"  # invisible inside, not first
    assert start_category("ㅋㅋ 재밌네요.") == "hangul"  # jamo are Hangul, only the fillers are not
    assert not is_invisible_char("ㅋ") and not is_invisible_char(" ") and not is_invisible_char("가")


def test_repair_skips_invisible_characters_mixed_with_other_noise():
    assert repair_start("\u200b\u3164. assistant: 네, 알려 드릴게요.") == "네, 알려 드릴게요."
    assert repair_start("\u200b\u200b\u3164\u3164") is None  # nothing but invisible characters


def test_cleaning_repairs_and_tags_an_invisible_start():
    result = gate("\u200b\u200b\u200b오늘은 맑고 따뜻해요. 산책하기 좋아요.")
    assert result["reasons"] == [] and result["tags"] == ["repaired"]
    assert result["row"]["messages"][-1]["content"] == "오늘은 맑고 따뜻해요. 산책하기 좋아요."
    filler = gate("\u3164\u3164오늘은 맑고 따뜻해요.")
    assert filler["reasons"] == [] and filler["row"]["messages"][-1]["content"] == "오늘은 맑고 따뜻해요."


def test_cleaning_without_repair_drops_an_invisible_start_with_its_reason():
    result = gate("\u3164오늘은 맑고 따뜻해요.", repair=False)
    assert result["reasons"] == ["noise_start"]
    assert "invisible" in result["details"][0]


def test_answer_stats_count_invisible_starts_as_noise():
    stats = answer_stats(["\u200b\u200b안녕하세요.", "\u3164안녕하세요.", "안녕하세요.", ". 안녕하세요."])
    assert stats["starts"]["invisible"] == 2
    assert stats["punct_start_share"] == 0.75
    assert stats["hangul_start_share"] == 0.25


@pytest.mark.parametrize("ch", ["\u200b", "\ufeff", "\u2060", "\u3164", "\u115f", "\u00ad"])
def test_tokens_decoding_to_invisible_characters_are_punct(ch):
    encoder = {byte: c for c, byte in _byte_decoder().items()}
    byte_level = "".join(encoder[b] for b in (ch + "안녕").encode())
    assert token_start_class(byte_level, _byte_decoder()) == "punct"
    assert token_start_class(ch + "안녕", None) == "punct"  # a SentencePiece piece
