"""Alpaca, ShareGPT, JSON arrays and Parquet become messages rows; nothing is lost on the way."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from korlora.clean.imports import detect_format, read_rows, to_messages_row
from korlora.schema import RowError

ALPACA = {"instruction": "다음 문장을 존댓말로 바꿔 주세요.", "input": "밥 먹었어?", "output": "식사하셨어요?",
          "id": "al-1"}
SHAREGPT = {"conversations": [{"from": "system", "value": "친절한 한국어 도우미입니다."},
                              {"from": "human", "value": "서울에서 부산까지 KTX로 얼마나 걸려요?"},
                              {"from": "gpt", "value": "보통 두 시간 반 정도 걸려요."}], "id": "sg-1"}
MESSAGES = {"messages": [{"role": "user", "content": "안녕?"}, {"role": "assistant", "content": "안녕! 반가워."}]}


def test_detect_format():
    assert detect_format(ALPACA) == "alpaca"
    assert detect_format(SHAREGPT) == "sharegpt"
    assert detect_format(MESSAGES) == "messages"
    assert detect_format({"text": "그냥 글"}) is None


def test_alpaca_to_messages():
    row = to_messages_row(ALPACA)
    assert row["messages"] == [{"role": "user", "content": "다음 문장을 존댓말로 바꿔 주세요.\n\n밥 먹었어?"},
                               {"role": "assistant", "content": "식사하셨어요?"}]
    assert row["id"] == "al-1" and "instruction" not in row


def test_sharegpt_to_messages():
    row = to_messages_row(SHAREGPT)
    assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
    assert row["messages"][2]["content"] == "보통 두 시간 반 정도 걸려요."


def test_named_format_refuses_other_records():
    with pytest.raises(RowError, match="not alpaca"):
        to_messages_row(SHAREGPT, "alpaca")


def test_mixed_jsonl_loses_no_line(tmp_path):
    path = tmp_path / "mixed.jsonl"
    lines = [json.dumps(x, ensure_ascii=False) for x in (ALPACA, SHAREGPT, MESSAGES)]
    lines += ["", '{"text": "형식을 알 수 없는 줄"}', '{"conversations": [{"from": "alien", "value": "?"}]}', "{broken"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = read_rows(path)
    assert result.lines == 6
    assert len(result.rows) == 3
    assert [(r["line"], r["reason"]) for r in result.rejects] == [
        (5, "invalid_schema"), (6, "invalid_schema"), (7, "invalid_json")]
    named = read_rows(path, fmt="alpaca")
    assert len(named.rows) == 1 and len(named.rows) + len(named.rejects) == 6


def test_json_array_and_parquet(tmp_path):
    array = tmp_path / "alpaca.json"
    array.write_text(json.dumps([ALPACA, {**ALPACA, "id": "al-2"}], ensure_ascii=False, indent=2), encoding="utf-8")
    assert [r["id"] for r in read_rows(array).rows] == ["al-1", "al-2"]

    table = pa.Table.from_pylist([MESSAGES, {**MESSAGES, "messages": []}])
    parquet = tmp_path / "chat.parquet"
    pq.write_table(table, parquet)
    result = read_rows(parquet)
    assert result.rows[0]["messages"][1]["content"] == "안녕! 반가워."
    assert result.lines == 2 and result.rejects[0]["line"] == 2
