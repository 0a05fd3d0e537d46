"""Exact keys and MinHash LSH near duplicates: determinism, recall on planted edits, keep-first."""

from __future__ import annotations

import random

import numpy as np

from korlora.clean.dedup import (
    MinHasher,
    candidate_pairs,
    dedup_form,
    exact_key,
    first_kept,
    near_duplicate_pairs,
)

SUBJECTS = ["우리 팀은", "이번 프로젝트는", "동네 도서관은", "새로 산 노트북은", "주말 농장은", "회사 식당은",
            "지하철 2호선은", "할머니 댁은", "학교 운동장은", "시청 앞 광장은", "작은 카페는", "온라인 강의는"]
PREDICATES = ["아침마다 붐빕니다", "생각보다 조용했어요", "다음 달부터 문을 닫아요", "예산이 부족합니다",
              "사람들이 자주 찾아요", "관리가 잘 되어 있어요", "주말에만 열립니다", "소음 문제가 있었어요",
              "새 규칙을 만들었습니다", "분위기가 많이 바뀌었어요", "전기 요금이 올랐습니다", "후기가 좋아요"]
DETAILS = ["그래서 미리 예약하는 게 좋아요", "특히 오후 세 시쯤이 가장 한가해요", "담당자에게 물어보면 금방 알려 줘요",
           "작년보다 이용객이 두 배로 늘었습니다", "주차 공간이 좁으니 대중교통을 이용하세요",
           "창가 자리는 햇빛이 잘 들어요", "가격은 조금 올랐지만 품질은 그대로예요", "근처에 맛있는 빵집도 있어요"]
SWAPS = {"아침마다": "저녁마다", "생각보다": "예상보다", "자주": "종종", "특히": "무엇보다", "금방": "바로",
         "작년보다": "재작년보다", "조금": "약간", "좋아요": "괜찮아요", "그래서": "따라서", "가장": "제일"}


def paragraph(rng: random.Random) -> str:
    return " ".join(f"{rng.choice(SUBJECTS)} {rng.choice(PREDICATES)}. {rng.choice(DETAILS)}." for _ in range(5))


def edit(text: str, rng: random.Random) -> str:
    """A planted near duplicate: a one-word swap, plus a punctuation or spacing change."""
    words = [w for w in SWAPS if w in text]
    if words:
        w = rng.choice(words)
        text = text.replace(w, SWAPS[w], 1)
    return rng.choice([text.replace(". ", "! ", 1), text.replace(" ", "  ", 3), text + "!", text.replace(" ", "", 2)])


def test_exact_key_ignores_spacing_punctuation_and_case():
    assert dedup_form("안녕하세요, 반가워요!  Hello.") == "안녕하세요반가워요hello"
    assert exact_key("김치찌개 끓이는 법") == exact_key("김치찌개  끓이는 법!!")
    assert exact_key("김치찌개 끓이는 법") != exact_key("된장찌개 끓이는 법")


def test_signatures_do_not_depend_on_the_batch():
    rng = random.Random(3)
    forms = [dedup_form(paragraph(rng)) for _ in range(50)]
    hasher = MinHasher()
    together = hasher.signatures(forms, chunk=500)
    one_by_one = np.stack([hasher.signatures([f])[0] for f in forms])
    assert np.array_equal(together, one_by_one)
    assert np.array_equal(hasher.band_keys(together), MinHasher().band_keys(one_by_one))


def test_near_duplicate_recall_on_planted_edits():
    rng = random.Random(7)
    texts = [paragraph(rng) for _ in range(400)]
    planted = {}
    for i in rng.sample(range(400), 100):
        planted[len(texts)] = i
        texts.append(edit(texts[i], rng))
    pairs = near_duplicate_pairs(texts, threshold=0.8)
    found = {(i, j) for i, j, _ in pairs}
    recall = sum((src, copy) in found for copy, src in planted.items()) / len(planted)
    assert recall >= 0.95
    assert all(score >= 0.8 for *_, score in pairs)
    assert pairs == near_duplicate_pairs(texts, threshold=0.8)  # deterministic


def test_short_unrelated_texts_are_not_pairs():
    texts = ["오늘은 날씨가 맑아요.", "내일은 비가 온대요.", "파이썬으로 파일을 읽는 방법을 알려 주세요."]
    assert near_duplicate_pairs(texts) == []


def test_keep_first_compares_with_kept_rows_only():
    # 1 is a copy of 0 and is dropped; 2 resembles only 1, so it stays.
    assert first_kept(3, [(0, 1, 0.9), (1, 2, 0.85)]) == {1: (0, 0.9)}


def test_candidate_pairs_in_big_buckets_use_a_window():
    keys = np.zeros((200, 2), dtype=np.uint64)
    pairs = {tuple(p) for p in candidate_pairs(keys, window=8).tolist()}
    assert len(pairs) == sum(min(j, 8) for j in range(200))
    assert {(j - 1, j) for j in range(1, 200)} <= pairs and (0, 100) not in pairs


def test_candidate_pairs_prefilter_by_signature_estimate():
    keys = np.zeros((3, 1), dtype=np.uint64)
    sigs = np.array([[1, 2, 3, 4], [1, 2, 3, 9], [7, 8, 9, 9]], dtype=np.uint32)
    assert candidate_pairs(keys, signatures=sigs, min_estimate=0.7).tolist() == [[0, 1]]
