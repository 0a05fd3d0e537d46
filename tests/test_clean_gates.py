"""The per-row gates on hand-written Korean rows: one case per reason code, and rows that must be kept."""

from __future__ import annotations

import json

import pytest

from korlora.clean.gates import (
    GateOptions,
    gate_rows,
    is_frame,
    is_written_task,
    normalize_text,
    requested_kinds,
)

OPTS = GateOptions()


def chat(user: str, answer: str, **meta) -> dict:
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}], **meta}


def gate(row: dict | str | bytes, opts: GateOptions = OPTS) -> dict:
    raw = row if isinstance(row, bytes) else (row if isinstance(row, str) else json.dumps(row, ensure_ascii=False))
    return gate_rows([(1, raw.encode("utf-8") if isinstance(raw, str) else raw)], opts)[0]


# --- rows that must be kept ---------------------------------------------------------------------------

KEEP = {
    "code_with_english_identifiers": chat(
        "파이썬에서 딕셔너리를 값 기준으로 정렬하려면 어떻게 해요?",
        "`sorted()`에 `key` 인자를 넘기면 됩니다. 값 기준 내림차순 정렬은 다음과 같습니다.\n\n"
        "```python\nscores = {\"alice\": 90, \"bob\": 72}\nranked = sorted(scores.items(), key=lambda kv: kv[1], "
        "reverse=True)\nfor name, score in ranked:\n    print(f\"{name}: {score}\")\n```\n\n"
        "결과는 점수가 높은 사람부터 출력됩니다.", category="code"),
    "it_prose_with_acronyms": chat(
        "REST API랑 GraphQL 차이가 뭐예요?",
        "REST API는 자원마다 URL을 두고 HTTP 메서드로 조작하는 방식이에요. GraphQL은 엔드포인트 하나에 "
        "클라이언트가 필요한 필드만 질의하죠. 그래서 모바일 앱처럼 데이터를 아껴야 할 때 GraphQL이 유리하고, "
        "캐시와 CDN을 적극적으로 쓰려면 REST가 단순해요.", category="it"),
    "banmal_persona": {"messages": [
        {"role": "system", "content": "너는 사용자의 오랜 친구야. 반말로 편하게 대답해."},
        {"role": "user", "content": "요즘 잠이 너무 안 와. 어떡하지?"},
        {"role": "assistant", "content": "요즘 신경 쓸 일이 많았나 보다. 자기 전에 휴대폰은 좀 멀리 두고, "
                                         "커피는 오후에는 마시지 마. 그래도 계속 못 자면 같이 방법을 더 찾아보자."}],
        "category": "daily"},
    "dialect_answer": chat(
        "경상도 사투리로 손님한테 인사해 줘.",
        "어서 오이소. 먼 길 오신다고 욕봤지예. 여 앉아서 좀 쉬이소. 금방 차 한잔 내올게예.",
        category="dialect", dialect="gyeongsang"),
    "haera_summary": chat(
        "다음 기사를 세 문장으로 요약해 주세요.\n\n(기사 본문)",
        "정부가 내년 예산을 올해보다 3% 늘리기로 했다. 늘어난 예산은 주로 저출생 대응과 지역 균형 발전에 "
        "쓰인다. 야당은 재정 건전성이 나빠질 수 있다고 우려했다.", category="summary"),
    "spelling_answer_quoting_wrong_form": chat(
        "'어떻해'랑 '어떡해' 중에 뭐가 맞아요?",
        "'어떡해'가 맞습니다. '어떡해'는 '어떻게 해'가 줄어든 말이고, '어떻해'는 틀린 표기예요. "
        "예를 들어 \"지갑을 잃어버렸어, 어떡해?\"처럼 씁니다.", category="spelling"),
    "spelling_answer_quoting_banmal_examples": chat(
        "'안 되'랑 '안 돼' 중에 어느 게 맞아요?",
        "'안 되'가 아니라 '안 돼'가 맞아요. '돼'는 '되어'를 줄인 말이거든요.\n\n예:\n\"그렇게 하면 안 돼.\"\n"
        "\"내일은 와도 돼?\"", category="spelling"),
    "chungcheong_dialect_polite": chat(
        "충청도 사투리로 손님 맞는 말 해 줘.",
        "어서 와유. 먼 길 오느라 고생 많았지유? 여기 앉아서 좀 쉬어유. 금방 밥 차려 드릴게요.",
        category="dialect", dialect="chungcheong"),
    "jeolla_dialect_banmal": chat(
        "전라도 사투리로 친구한테 밥 먹자고 해 봐.",
        "야, 밥 묵었냐? 안 묵었으면 같이 가불자. 내가 맛있는 데 알고 있당께.", category="dialect"),
    "haeyo_with_plain_numbered_list": chat(
        "미역국 끓이는 순서 알려 주세요.",
        "순서대로 하면 어렵지 않아요.\n\n1. 미역을 물에 불린다\n2. 참기름에 소고기와 미역을 볶는다\n"
        "3. 물을 붓고 20분 끓인다\n\n간은 국간장으로 맞추면 돼요.", category="daily"),
    "hapsyo_and_haeyo": chat(
        "환불은 어떻게 받아요?",
        "환불은 구매 후 7일 안에 신청하시면 됩니다. 영수증을 같이 보내 주세요. 확인되면 3일 안에 입금해 드립니다.",
        category="daily"),
    "quoted_banmal_in_haeyo": chat(
        "친구한테 사과할 때 뭐라고 해요?",
        "짧고 솔직하게 말하는 게 좋아요. 예를 들어 \"어제는 내가 말이 심했어. 미안해.\"라고 하면 돼요.",
        category="daily"),
    "requested_haera_summary_with_polite_intro": chat(
        "이 보도자료를 해라체로 세 줄 요약해 주세요.\n\n(본문)",
        "요약해 드릴게요.\n\n시는 내년부터 공영주차장 요금을 20% 내린다. 대상은 도심 12곳이다. "
        "줄어든 수입은 주차 단속 강화로 메운다.\n\n더 줄여 드릴까요?", category="news"),
    "requested_diary_in_banmal": chat(
        "여행 간 날의 일기를 반말로 써 주세요.",
        "이렇게 써 봤어요.\n\n오늘 드디어 제주에 왔다. 바다가 생각보다 훨씬 파랬어. 내일은 한라산에 갈 거야.\n\n"
        "마음에 드시면 좋겠어요.", category="writing"),
    "requested_letter_switching_register_inside": chat(
        "이메일 대신 친구에게 보내는 편지로 다시 작성해 보세요.",
        "다음은 편지로 다시 작성한 예시입니다.\n\n지수에게,\n\n잘 지내고 있니? 요즘 날씨가 많이 추워졌어요. "
        "나는 새 직장에 조금씩 적응하고 있어. 다음 달에는 꼭 얼굴 보자.\n\n민호가\n\n"
        "이 편지는 이메일보다 안부를 길게 묻고, 끝인사에 이름을 적었습니다.", category="writing"),
    "requested_story_opening_then_comment": chat(
        "시간 여행을 다룬 작품의 초반 전개를 400자 내외로 작성해보세요.",
        "2050년, 과학자 서윤은 마침내 시간 이동 장치를 완성했다. 첫 실험 날, 장치에서 나온 사람은 "
        "늙은 자기 자신이었다. 그는 떨리는 목소리로 말했다. 곧 모든 것이 무너질 것이다.\n\n"
        "이렇게 초반에 수수께끼를 던지면 독자가 뒷이야기를 궁금해하게 됩니다.", category="writing"),
    "corrected_sentence_then_polite_explanation": chat(
        "아래 문장의 높임 표현을 올바르게 수정해 보아라.\n\n할머니가 밥을 먹는다.",
        "할머니께서 진지를 잡수신다.\n\n주체인 할머니를 높이려면 '께서'와 '잡수시다'를 써야 합니다.",
        category="spelling"),
    "problem_displayed_after_introducer": chat(
        "주어진 문제의 난이도를 높일 방법을 제시해 주세요.",
        "입력 조건을 넓히면 난이도가 올라갑니다. 예를 들어, 문제를 다음과 같이 변경할 수 있습니다.\n\n"
        "주어진 목록에서 가장 자주 나오는 문자를 반환하는 함수를 작성하라.\n함수명: most_common\n"
        "매개변수: characters\n반환값: 가장 자주 나오는 문자\n\n"
        "이 문제는 입력의 길이와 자료형을 제한하지 않아 더 어렵습니다.", category="code"),
    "question_repeated_as_a_title": chat(
        "김치찌개는 어떻게 끓여?",
        "김치찌개는 어떻게 끓여?\n\n먼저 김치를 돼지고기와 함께 볶으세요. 물을 붓고 20분 끓이면 됩니다.",
        category="daily"),
    "latex_heavy_korean": chat(
        "등비수열 합 공식 알려 주세요.",
        "첫째항이 $a$, 공비가 $r$이면 합은 다음과 같아요.\n\n\\[ S_n = \\frac{a(1 - r^n)}{1 - r} \\quad (r \\neq 1) \\]\n\n"
        "\\(|r| < 1\\)이면 \\( S_\\infty = \\frac{a}{1 - r} \\)로 수렴합니다.", category="it"),
    "html_heavy_korean": chat(
        "가게 휴무 공지를 HTML로 만들어 주세요.",
        "<div class=\"notice\">\n  <h2>임시 휴무 안내</h2>\n  <p>3월 2일은 내부 공사로 쉽니다.</p>\n"
        "  <p>이용에 불편을 드려 죄송합니다.</p>\n</div>", category="it"),
}


@pytest.mark.parametrize("name", list(KEEP))
def test_rows_that_must_be_kept(name):
    result = gate(KEEP[name])
    assert result["reasons"] == [], (name, result["details"])
    assert result["row"]["messages"][-1]["content"]


# --- one case per reason code -------------------------------------------------------------------------

DROP = {
    "invalid_json": '{"messages": [',
    "invalid_schema": json.dumps({"messages": [{"role": "user", "content": "질문만 있어요"}]}, ensure_ascii=False),
    "empty_content": json.dumps(chat("안녕하세요?", "   "), ensure_ascii=False),
    "noise_start": chat("요약해 줘", "... !!! ???"),
    "non_korean": chat("서버가 자꾸 죽어요.", "Sure! You should restart the server and check the logs carefully."),
    "non_korean_japanese": chat("인사말 알려 줘", "こんにちは。今日はいい天気ですね。"),
    "non_korean_sentence": chat("설치 방법 알려 주세요.",
                                "좋은 질문이에요. This is a very common problem for new users. 먼저 설치부터 해요."),
    "mixed_speech_level": chat("이 약은 어떻게 먹어요?",
                               "이 약은 하루 세 번 식후에 드십시오. 그리고 물을 충분히 마셔. 잊지 말고 챙겨 먹어."),
    "mixed_speech_level_imperative": chat("방이 너무 추워요.",
                                          "보일러 온도를 조금 올려 보세요. 그리고 창문은 닫아. 그래도 추우면 내복을 입으세요."),
    "mixed_speech_level_frame_of_a_written_piece": chat(
        "친구에게 보내는 편지를 반말로 써 주세요.",
        "편지를 반말로 써 드릴게요. 이 편지는 짧게 써 봤어.\n\n지수야, 잘 지내? 다음 달에 꼭 보자.",
        category="writing"),
    "mixed_speech_level_question_repeated_in_prose": chat(
        "김치찌개는 어떻게 끓여?",
        "김치찌개는 어떻게 끓여? 먼저 김치를 돼지고기와 함께 볶으세요. 물을 붓고 20분 끓이면 됩니다.",
        category="daily"),
    "non_korean_leading_space": chat("서버가 자꾸 죽어요.", " This is English: restart the server and read the logs."),
    "non_korean_leading_blank_lines": chat("인사말 알려 줘", "\n\nHello! Here is a friendly greeting for you."),
}


@pytest.mark.parametrize("name", list(DROP))
def test_each_reason_code(name):
    result = gate(DROP[name])
    expected = next(code for code in ("non_korean", "mixed_speech_level", "noise_start", "empty_content",
                                      "invalid_schema", "invalid_json") if name.startswith(code))
    assert result["reasons"][:1] == [expected], result["details"]
    assert result["row"] is None


def test_invalid_utf8():
    assert gate(b'{"messages": "\xff\xfe"}')["reasons"] == ["invalid_utf8"]


def test_too_long_by_characters():
    opts = GateOptions(max_chars=50)
    result = gate(chat("짧은 질문", "가" * 100), opts)
    assert result["reasons"] == ["too_long"]


def test_noise_start_is_repaired_and_tagged():
    result = gate(chat("날씨 어때?", "assistant:\n\n. 오늘은 맑고 따뜻해. 산책하기 딱 좋아."))
    assert result["reasons"] == []
    assert result["tags"] == ["repaired"]
    assert result["row"]["messages"][-1]["content"] == "오늘은 맑고 따뜻해. 산책하기 딱 좋아."
    assert result["row"]["tags"] == ["repaired"]


def test_noise_start_without_repair_is_dropped():
    result = gate(chat("날씨 어때?", ". 오늘은 맑고 따뜻해."), GateOptions(repair=False))
    assert result["reasons"] == ["noise_start"]


def test_speech_gate_can_be_turned_off():
    row = DROP["mixed_speech_level"]
    assert gate(row, GateOptions(speech_level=False))["reasons"] == []


def test_check_mode_collects_every_reason():
    row = chat("질문", "... Sure. 이 약은 하루 세 번 드십시오. 물도 많이 마셔. This answer is partly in English for sure.")
    result = gate(row, GateOptions(all_reasons=True))
    assert set(result["reasons"]) == {"non_korean", "mixed_speech_level"}
    assert "repaired" in result["tags"]


def test_disclaimer_tag():
    row = chat("적금 깨도 될까요?", "급한 돈이 아니라면 만기까지 두는 편이 유리해요. 정확한 판단은 전문가와 상담하세요.")
    result = gate(row)
    assert result["reasons"] == [] and "disclaimer" in result["tags"]
    ordinary = chat("전문가들은 금리를 어떻게 봐요?", "전문가들은 올해 하반기에 금리가 내려갈 것으로 내다봤어요.")
    assert "disclaimer" not in gate(ordinary)["tags"]


def test_whitespace_normalisation_keeps_code():
    text = "첫 줄입니다.   공백이   많아요.\u00a0\n\n\n\n둘째 줄\u200b입니다.  \n```python\nif x:\n    y  =  1\n```"
    assert normalize_text(text) == "첫 줄입니다. 공백이 많아요.\n\n둘째 줄입니다.\n```python\nif x:\n    y  =  1\n```"


def test_dedup_keys_ignore_spacing_and_punctuation():
    a = gate(chat("김치찌개 끓이는 법 알려 줘", "먼저 김치를 볶고, 물을 부어 끓이면 돼."))
    b = gate(chat("김치찌개 끓이는 법 알려 줘!", "먼저 김치를 볶고 물을 부어   끓이면 돼"))
    assert a["key"] == b["key"] and len(a["sig"]) > 0


def whitespace_tokenizer(directory) -> str:
    """A word-level tokenizer saved the way transformers loads it (no download, no model)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.train_from_iterator(["짧은 질문이에요 한국어 답변입니다"], trainers.WordLevelTrainer(special_tokens=["[UNK]"]))
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]").save_pretrained(directory)
    return str(directory)


@pytest.mark.slow
def test_too_long_by_tokens(tmp_path):
    tokenizer = whitespace_tokenizer(tmp_path / "tok")
    row = chat("짧은 질문이에요.", "토큰 수를 세는 한도를 시험하는 조금 긴 한국어 답변입니다. " * 20)  # about 200 tokens
    assert gate(row, GateOptions(max_tokens=300, tokenizer=tokenizer))["reasons"] == []
    result = gate(row, GateOptions(max_tokens=100, tokenizer=tokenizer))
    assert result["reasons"] == ["too_long"] and "tokens > limit 100" in result["details"][0]


def test_content_that_is_only_invisible_characters():
    assert gate(chat("\u200b\ufeff", "네, 말씀하세요."))["reasons"] == ["empty_content"]
    assert gate(chat("안녕하세요?", "\u200b\u200b"))["reasons"] == ["noise_start"]  # an answer of noise


@pytest.mark.parametrize(("request_text", "written"), [
    ("시간 여행을 다룬 작품의 초반 전개를 작성해보세요.", True),
    ("아래 문장의 높임 표현을 올바르게 수정해 보아라.", True),
    ("비슷한 문제를 출제하고 풀이 방법을 제시해줘.", True),
    ("이 코드를 수정해 줘.", False),
    ("시간이 없는데 보고 절차를 간단히 알려 줘.", False),
])
def test_written_requests(request_text, written):
    assert is_written_task({}, request_text) is written


def test_frame_of_a_requested_piece():
    kinds = requested_kinds("우주인의 일기를 구체적으로 작성해보세요.")
    assert kinds == {"일기"}
    assert is_frame("이 일기는 우주인의 그리움을 담았습니다.", kinds)
    assert is_frame("이렇게 쓰면 감정이 잘 드러납니다.", kinds)
    assert not is_frame("오늘은 지구가 유난히 그리웠다. 감사합니다, 지구.", kinds)
    assert not is_frame("일기장 맨 앞에 연구 일정을 적어 두었다.", kinds)  # "일기장" is another word
