import json
import os

import pytest

from korlora.cli import main
from korlora.io import atomic_path, read_jsonl, write_jsonl
from korlora.schema import Reason, RowError, validate_row

GOOD = {"messages": [{"role": "user", "content": "안녕?"}, {"role": "assistant", "content": "안녕하세요."}]}


def line(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def damaged_file(path):
    lines = [
        b"\xef\xbb\xbf" + line(GOOD) + b"\r",  # BOM + CRLF on the first line
        line({**GOOD, "id": "a", "category": "daily", "tags": ["x"], "extra": 1}) + b"\r",
        b"   ",  # blank: not counted
        b'{"messages": [',  # broken JSON
        '{"messages": "안녕"}'.encode("cp949"),  # invalid UTF-8 (CP949 bytes)
        b"[1, 2, 3]",  # an array
        b"null",
        line({"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "네"}]}),
        line({"messages": [{"role": "bot", "content": "hi"}]}),
        line({"messages": [{"role": "user", "content": "질문"}]}),  # no assistant turn
        line({"messages": [{"role": "assistant", "content": "답"}, {"role": "user", "content": "또"}]}),
        line({"messages": [{"role": "user", "content": "질문"}, {"role": "assistant", "content": "  "}]}),
        line({"messages": [{"role": "user", "content": "가" * 50}, {"role": "assistant", "content": "나" * 60}]}),
        line({**GOOD, "tags": "not-a-list"}),
        b"",
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return sum(1 for raw in lines if raw.strip())


def test_every_line_is_kept_or_rejected(tmp_path):
    path = tmp_path / "in.jsonl"
    nonblank = damaged_file(path)
    result = read_jsonl(path, max_chars=100)
    assert len(result.rows) + len(result.rejects) == nonblank == result.lines
    assert [r["id"] for r in result.rows if "id" in r] == ["a"]
    assert result.rows[1]["extra"] == 1  # metadata survives
    reasons = {r["line"]: r["reason"] for r in result.rejects}
    assert reasons == {
        4: Reason.INVALID_JSON, 5: Reason.INVALID_UTF8, 6: Reason.INVALID_SCHEMA, 7: Reason.INVALID_SCHEMA,
        8: Reason.INVALID_SCHEMA, 9: Reason.INVALID_SCHEMA, 10: Reason.INVALID_SCHEMA,
        11: Reason.INVALID_SCHEMA, 12: Reason.EMPTY_CONTENT, 13: Reason.TOO_LONG, 14: Reason.INVALID_SCHEMA,
    }
    utf8 = next(r for r in result.rejects if r["reason"] == Reason.INVALID_UTF8)
    assert "\\x" in utf8["raw"] and utf8["detail"]
    assert all(r["detail"] for r in result.rejects)


@pytest.mark.parametrize(
    "row, reason",
    [
        ({"messages": []}, Reason.INVALID_SCHEMA),
        ({"msgs": []}, Reason.INVALID_SCHEMA),
        ({"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"},
                       {"role": "assistant", "content": "c"}]}, Reason.INVALID_SCHEMA),
        ({"messages": [{"role": "assistant", "content": None}]}, Reason.INVALID_SCHEMA),
        ({"messages": [{"role": "assistant", "content": ""}]}, Reason.EMPTY_CONTENT),
        ({**GOOD, "category": 5}, Reason.INVALID_SCHEMA),
    ],
)
def test_validator_reasons(row, reason):
    with pytest.raises(RowError) as e:
        validate_row(row)
    assert e.value.reason == reason


def test_writer_is_atomic(tmp_path):
    path = tmp_path / "out.jsonl"
    write_jsonl(path, [GOOD])
    before = path.read_bytes()

    def rows():
        yield GOOD
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_jsonl(path, rows())
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["out.jsonl"]
    with atomic_path(tmp_path / "sub" / "x.txt") as f:
        f.write("한국어")
    assert (tmp_path / "sub" / "x.txt").read_text(encoding="utf-8") == "한국어"


def test_missing_input_is_a_clear_error(tmp_path, capsys):
    code = main(["data", "validate", str(tmp_path / "nope.jsonl")])
    err = capsys.readouterr().err
    assert code == 2
    assert "not found" in err and "Traceback" not in err

def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_jsonl(tmp_path / "out.jsonl", [GOOD])
    finally:
        os.umask(old)
    assert (tmp_path / "out.jsonl").stat().st_mode & 0o777 == 0o644
