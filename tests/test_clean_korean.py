"""Korean text measures, noisy starts and the disclaimer family, on hand-written Korean."""

from __future__ import annotations

import pytest

from korlora.clean.disclaimer import DISCLAIMER_FAMILY, ORDINARY_MENTIONS, disclaimer_spans, is_disclaimer
from korlora.clean.korean import (
    foreign_sentences,
    hangul_ratio,
    is_mixed,
    prose,
    register_prose,
    speech_levels,
)
from korlora.clean.noise import repair_start, start_category


def test_prose_drops_code_urls_numbers_acronyms_and_glued_names():
    text = ("React에서 `useState` 훅을 쓰면 상태를 관리할 수 있어요. 자세한 건 https://react.dev 를 보세요. "
            "API 서버는 HTTP/2와 JSON을 쓰고, 16GB RAM이면 충분합니다.\n```python\nprint('hello world')\n```")
    left = prose(text)
    for gone in ("React", "useState", "https", "API", "JSON", "16", "GB", "RAM", "print", "hello"):
        assert gone not in left
    assert hangul_ratio(text) == 1.0


def test_hangul_ratio_of_foreign_answers():
    assert hangul_ratio("Sure! You should restart the server and check the logs.") == 0.0
    assert hangul_ratio("これは日本語の文章です。") == 0.0
    assert hangul_ratio("这是一个很好的问题。") == 0.0
    assert hangul_ratio("...") == 0.0  # no letters at all
    assert 0.9 < hangul_ratio("경제(經濟)는 세상을 다스리고 백성을 구한다는 뜻이에요.") < 1.0


def test_foreign_sentences_inside_a_korean_answer():
    answer = "좋은 질문이에요. This is a great question and I will explain it. 먼저 설치부터 해요."
    assert foreign_sentences(answer) == ["This is a great question and I will explain it."]
    assert foreign_sentences("Visual Studio Code를 열고 git status를 입력하세요.") == []
    assert foreign_sentences("영어로는 'Thank you very much'라고 말해요.") == []


@pytest.mark.parametrize("text, expected", [
    ("안녕하십니까. 오늘은 날씨가 맑습니다. 산책하기 좋겠어요.", {"hapsyo": 2, "haeyo": 1}),
    ("오늘 뭐 했어? 나는 영화 봤어. 진짜 재밌더라.", {"banmal": 3}),
    ("이 글은 기후 변화의 원인을 다룬다. 저자는 탄소 배출이 핵심이라고 주장한다.", {"haera": 2}),
])
def test_speech_levels(text, expected):
    assert dict(speech_levels(text)) == expected


def test_mixing_rules():
    polite_and_banmal = speech_levels("안녕하십니까. 도와드릴게요. 그건 네가 잘못한 거야.")
    assert is_mixed(polite_and_banmal)
    polite_and_plain = speech_levels("요약하면 다음과 같습니다. 정부는 내년 예산을 늘렸다.")
    assert is_mixed(polite_and_plain, written=False)
    assert not is_mixed(polite_and_plain, written=True)  # 해라체 is normal in a written-text task


def test_quoted_wrong_form_is_not_read_as_speech():
    answer = "'어떻해'는 틀린 표기입니다. '어떡해'가 맞아요. 예를 들어 \"이제 어떡해?\"처럼 씁니다."
    assert not is_mixed(speech_levels(answer))


def register_levels(answer: str, question: str = ""):
    return speech_levels(register_prose(answer, question))


def test_plain_style_list_in_haeyo_answer_is_consistent():
    answer = ("떡국은 이렇게 끓이면 돼요.\n\n1. 떡을 찬물에 30분 불린다\n2. 육수를 끓인다\n3. 떡을 넣고 5분 더 끓인다\n\n"
              "마지막에 달걀지단을 올리면 더 맛있어요.")
    assert not is_mixed(register_levels(answer))
    assert "불린다" not in register_prose(answer)


def test_headings_tables_and_labelled_fields_are_not_prose():
    answer = ("## 준비물\n\n| 재료 | 양 |\n|---|---|\n| 밀가루 | 200g |\n\n풀이 방법: 재료를 섞는다\n\n"
              "위 표대로 준비하시면 됩니다.")
    assert register_prose(answer) == "위 표대로 준비하시면 됩니다."


def test_hapsyo_and_haeyo_together_are_consistent():
    answer = "신청서는 내일까지 내시면 됩니다. 서류가 빠지면 다시 연락드릴게요. 궁금한 점은 언제든 물어보세요."
    assert not is_mixed(register_levels(answer))


def test_quoted_banmal_sentence_in_haeyo_prose_is_consistent():
    answer = "친구가 \"오늘 저녁에 같이 밥 먹자.\"라고 하면 '좋아, 몇 시에 볼까?'처럼 대답하면 돼요. 편하게 말하면 돼요."
    assert not is_mixed(register_levels(answer))


def test_displayed_example_after_an_introducer_is_not_prose():
    answer = "맞춤법에 맞게 고치면 다음과 같습니다:\n\n우리는 어제 도서관에 갔다.\n\n'갔다'는 과거형이라 이렇게 씁니다."
    assert not is_mixed(register_levels(answer))
    reworked = "철수는 학교에 간다.\n\n'학교을'이 아니라 '학교에'가 맞아요."
    assert not is_mixed(register_levels(reworked, "다음 문장을 고쳐 줘: 철수는 학교을 간다."))


def test_sentences_citing_the_question_are_not_the_answers_voice():
    options = ("글을 읽고 알맞은 것을 고르세요.\n\nA) 장터가 사라졌다.\nB) 장터가 더 커졌다.\n"
               "C) 장터가 온라인으로 옮겨 가며 손님이 줄었다.")
    answer = ("글의 셋째 문단을 보면 답을 찾을 수 있습니다. 따라서 정답은 C) 장터가 온라인으로 옮겨 가며 손님이 줄었다. "
              "둘째 문단의 설명과도 맞습니다.")
    assert not is_mixed(register_levels(answer, options))
    example = "다음 문장에서 틀린 조사를 고쳐 주세요.\n\n동생이 학교을 갔다."
    assert not is_mixed(register_levels("동생이 학교에 갔다. 장소를 나타낼 때는 '에'를 씁니다.", example))
    heading = "김치찌개는 어떻게 끓여?"
    answer = "김치찌개는 어떻게 끓여?\n\n먼저 김치를 돼지고기와 함께 볶으세요. 물을 붓고 20분 끓이면 됩니다."
    assert not is_mixed(register_levels(answer, heading))


def test_retelling_the_question_in_plain_style_is_still_mixed():
    """Only displayed material is a citation: the question's statements retold as the answer's own are read."""
    question = "사과 12개가 바구니에 있다. 민지가 3개를 먹었다. 남은 사과는 몇 개일까?"
    answer = "사과 12개가 바구니에 있었다. 민지가 3개를 먹었으니 남은 사과는 9개입니다."
    assert is_mixed(register_levels(answer, question))


def test_haoche_and_hageche_count_as_plain_outside_written_pieces():
    letter = "이 발견을 자네에게 알리게 되어 참으로 기쁘오. 곧 연구실에서 뵙겠습니다. 답장을 기다리겠네."
    levels = speech_levels(letter)
    assert levels["haoche"] == 2 and levels["hapsyo"] == 1
    assert is_mixed(levels, written=False)  # "비가 오네" is 반말 in an ordinary answer
    assert not is_mixed(levels, written=True)  # a requested letter may keep the old middle levels


def test_banmal_imperative_between_polite_sentences_is_mixed():
    answer = "휴대폰이 뜨거우면 먼저 밝기를 낮춰 보세요. 그리고 안 쓰는 앱은 다 꺼. 그래도 뜨거우면 잠시 쉬게 두세요."
    levels = register_levels(answer)
    assert levels["banmal"] == 1 and is_mixed(levels)


def test_plain_prose_sentence_between_polite_sentences_is_mixed():
    answer = "보험료는 매달 빠져나갑니다. 미납이 두 번이면 계약이 해지된다. 자동이체를 꼭 확인하세요."
    assert is_mixed(register_levels(answer))


def test_latex_code_and_html_are_not_foreign_prose():
    latex = ("판별식은 $D = b^2 - 4ac$ 입니다.\n\n\\[ x = \\frac{-b \\pm \\sqrt{b^2 - 4ac}}{2a} \\]\n\n"
             "\\( \\alpha + \\beta = -\\frac{b}{a} \\)이고 \\( \\alpha\\beta = \\frac{c}{a} \\)예요.")
    html = ("<!DOCTYPE html>\n<html lang=\"ko\">\n<head><title>공지</title></head>\n<body>\n<h1>휴관 안내</h1>\n"
            "<p>도서관은 월요일에 쉽니다.</p>\n<ul><li>열람실</li><li>자료실</li></ul>\n</body>\n</html>")
    code = ("정렬은 이렇게 해요.\nscores = {\"a\": 3, \"b\": 1}\nranked = sorted(scores.items(), key=lambda kv: kv[1])\n"
            "print(ranked)\n결과는 작은 값부터 나와요.")
    for text in (latex, html, code):
        assert hangul_ratio(text) > 0.9, text
        assert foreign_sentences(text) == []
    assert hangul_ratio("Since x = 2 and y = 3, the sum of these two numbers is 5.") == 0.0  # a sentence stays


def test_dialect_endings_are_not_mixing():
    answer = "아이고, 그라믄 안 되지예. 천천히 하이소. 금방 끝납니더. 걱정 마세요."
    assert speech_levels(answer, dialects=True)["dialect"] >= 2
    assert not is_mixed(speech_levels(answer, dialects=True))


@pytest.mark.parametrize("text, category", [
    ("안녕하세요. 무엇을 도와드릴까요?", "hangul"),
    ("Python은 배우기 쉬운 언어예요.", "hangul"),
    (". 안녕하세요. 오늘은 맑아요.", "punct"),
    ("… 네, 알려 드릴게요.", "punct"),
    ("assistant: 네, 알려 드릴게요.", "role_tag"),
    ("<|im_start|>assistant\n네, 알려 드릴게요.", "role_tag"),
    ("\n\n네, 알려 드릴게요.", "blank"),
    ("정확한 판단은 전문가와 상담하세요. 일반적으로는 이렇습니다.", "disclaimer"),
    ("- 첫째, 물을 끓입니다.\n- 둘째, 면을 넣습니다.", "markdown"),
    ("```python\nprint(1)\n```\n위 코드는 1을 출력해요.", "code"),
    ("Sure! 알겠어요.", "latin"),
])
def test_start_category(text, category):
    assert start_category(text) == category


def test_repair_start():
    assert repair_start(". 안녕하세요. 오늘은 맑아요.") == "안녕하세요. 오늘은 맑아요."
    assert repair_start("assistant:\n\n네, 알려 드릴게요.") == "네, 알려 드릴게요."
    assert repair_start("... Sure. 먼저 설치부터 할게요.") == "먼저 설치부터 할게요."
    assert repair_start("... !!! ???") is None
    assert repair_start("assistant: OK") is None


def test_disclaimer_family_and_ordinary_mentions():
    assert all(is_disclaimer(t) for t in DISCLAIMER_FAMILY)
    assert not any(is_disclaimer(t) for t in ORDINARY_MENTIONS)
    answer = "적금은 만기까지 유지하는 게 유리해요. 다만 이 답변은 참고용이며, 정확한 판단은 전문가와 상담하세요."
    spans = disclaimer_spans(answer)
    assert [name for _, _, name in spans] == ["for_reference_only", "accurate_judgement"]
    assert answer[spans[0][0]:].startswith("참고용")
