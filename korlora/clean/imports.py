"""Reading chat data in the formats people have: messages JSONL, Alpaca, ShareGPT, as JSONL, a JSON array
or Parquet. Every record becomes a messages row or a reject; none is lost.

Records are numbered like lines: the line number in a JSONL file, the 1-based position in a JSON array or
Parquet table. The format is detected per record (``auto``) or named; a record that does not fit is an
``invalid_schema`` reject.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from korlora.errors import KorloraError
from korlora.io import ReadResult, _check_readable, collect, dumps, iter_lines, parse_line
from korlora.schema import DEFAULT_MAX_CHARS, Reason, RowError

FORMATS = ("auto", "messages", "alpaca", "sharegpt")
SHAREGPT_ROLES = {
    "human": "user", "user": "user", "prompter": "user",
    "gpt": "assistant", "assistant": "assistant", "chatgpt": "assistant", "bing": "assistant", "bard": "assistant",
    "model": "assistant", "bot": "assistant",
    "system": "system",
}
ALPACA_FIELDS = ("instruction", "input", "output", "system")


def detect_format(record: Any) -> str | None:
    """``messages``, ``sharegpt`` or ``alpaca`` from a record's keys; ``None`` if it is none of them."""
    if not isinstance(record, dict):
        return None
    if "messages" in record:
        return "messages"
    if "conversations" in record:
        return "sharegpt"
    if "instruction" in record and "output" in record:
        return "alpaca"
    return None


def _alpaca(record: dict) -> dict:
    for key in ("instruction", "output"):
        if not isinstance(record.get(key), str):
            raise RowError(Reason.INVALID_SCHEMA, f"alpaca '{key}' is missing or not a string")
    extra = record.get("input") or ""
    if not isinstance(extra, str):
        raise RowError(Reason.INVALID_SCHEMA, "alpaca 'input' is not a string")
    messages = []
    if isinstance(record.get("system"), str) and record["system"].strip():
        messages.append({"role": "system", "content": record["system"]})
    user = f"{record['instruction']}\n\n{extra}" if extra.strip() else record["instruction"]
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": record["output"]}]
    row = {k: v for k, v in record.items() if k not in ALPACA_FIELDS}
    return {"messages": messages, **row}


def _sharegpt(record: dict) -> dict:
    turns = record["conversations"]
    if not isinstance(turns, list):
        raise RowError(Reason.INVALID_SCHEMA, "sharegpt 'conversations' is not an array")
    messages = []
    if isinstance(record.get("system"), str) and record["system"].strip():
        messages.append({"role": "system", "content": record["system"]})
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise RowError(Reason.INVALID_SCHEMA, f"conversations[{i}] is not an object")
        who = turn.get("from", turn.get("role"))
        role = SHAREGPT_ROLES.get(str(who).lower()) if who is not None else None
        if role is None:
            raise RowError(Reason.INVALID_SCHEMA, f"conversations[{i}].from is {who!r}; expected human/gpt/system")
        messages.append({"role": role, "content": turn.get("value", turn.get("content"))})
    row = {k: v for k, v in record.items() if k not in ("conversations", "system")}
    return {"messages": messages, **row}


def to_messages_row(record: Any, fmt: str = "auto") -> dict:
    """Convert one record to a messages row (not yet validated); raises :class:`RowError`."""
    found = detect_format(record)
    if fmt != "auto" and found != fmt:
        what = found or "no known format"
        raise RowError(Reason.INVALID_SCHEMA, f"record is {what}, not {fmt}")
    if found == "alpaca":
        return _alpaca(record)
    if found == "sharegpt":
        return _sharegpt(record)
    if found == "messages":
        return record
    if not isinstance(record, dict):
        raise RowError(Reason.INVALID_SCHEMA, f"record is a JSON {type(record).__name__}, not an object")
    raise RowError(Reason.INVALID_SCHEMA, "no 'messages', 'conversations' or 'instruction'/'output' fields")


def parse_record(number: int, raw: bytes, fmt: str = "auto",
                 max_chars: int | None = DEFAULT_MAX_CHARS) -> tuple[dict | None, dict | None]:
    """One raw record (JSON bytes) to ``(row, None)`` or ``(None, reject)``: decode, convert, validate."""
    return parse_line(number, raw, max_chars=max_chars, convert=lambda record: to_messages_row(record, fmt))


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _is_json_array(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    return head.startswith(b"[")


def iter_records(path: str | os.PathLike) -> Iterator[tuple[int, bytes]]:
    """``(number, raw JSON bytes)`` for each record of a JSONL, JSON-array or Parquet file."""
    path = _check_readable(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(path)
        except Exception as e:  # pyarrow raises several types for a bad file
            raise KorloraError(f"cannot read Parquet file {path}: {e}") from None
        for i, record in enumerate(table.to_pylist(), start=1):
            yield i, json.dumps(record, ensure_ascii=False, default=_json_default).encode("utf-8")
    elif path.suffix.lower() == ".json" and _is_json_array(path):
        try:
            with open(path, encoding="utf-8-sig") as f:
                records = json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise KorloraError(f"{path} starts like a JSON array but is not valid JSON: {e}") from None
        for i, record in enumerate(records, start=1):
            yield i, dumps(record).encode("utf-8")
    else:
        yield from iter_lines(path)


def read_rows(path: str | os.PathLike, fmt: str = "auto", max_chars: int | None = DEFAULT_MAX_CHARS) -> ReadResult:
    """Read any supported file into valid messages rows and rejects, in input order."""
    if fmt not in FORMATS:
        raise KorloraError(f"unknown format {fmt!r}; expected one of {', '.join(FORMATS)}")
    return collect(iter_records(path), lambda number, raw: parse_record(number, raw, fmt, max_chars))
