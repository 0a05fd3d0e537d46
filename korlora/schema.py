"""The chat row every korlora stage reads and writes, and the reason codes for rows it refuses.

A row is ``{"messages": [{"role": ..., "content": ...}, ...]}`` plus optional metadata
(``category``, ``source``, ``id``, ``tags`` and anything else) that every stage passes through untouched.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

ROLES = ("system", "user", "assistant")
METADATA_TYPES: dict[str, tuple[type, ...]] = {
    "category": (str,),
    "source": (str,),
    "id": (str, int),
    "tags": (list,),
}
DEFAULT_MAX_CHARS = 16_000


class Reason(StrEnum):
    """Why a row was rejected. One vocabulary for every stage; each stage adds its own codes here."""

    # reading and schema
    INVALID_JSON = "invalid_json"  # the line is not JSON
    INVALID_UTF8 = "invalid_utf8"  # the line is not valid UTF-8
    INVALID_SCHEMA = "invalid_schema"  # not an object, no messages, bad role, non-string content, ...
    EMPTY_CONTENT = "empty_content"  # a message whose content is empty or only whitespace
    TOO_LONG = "too_long"  # over the configured character (or token) limit
    # cleaning gates
    NOISE_START = "noise_start"  # an answer that starts with noise and has no Hangul sentence to keep
    NON_KOREAN = "non_korean"  # an answer whose prose is not Korean
    MIXED_SPEECH_LEVEL = "mixed_speech_level"  # polite and 반말 endings mixed in one answer
    DUPLICATE = "duplicate"  # same normalised text as an earlier row
    NEAR_DUPLICATE = "near_duplicate"  # character n-gram Jaccard over the threshold with an earlier row
    # merging
    CROSS_SOURCE_DUPLICATE = "cross_source_duplicate"  # same normalised text as a row of an earlier source
    CROSS_SOURCE_NEAR_DUPLICATE = "cross_source_near_duplicate"  # near duplicate of a row of an earlier source
    # rebalancing
    DISCLAIMER_OVER_CAP = "disclaimer_over_cap"  # a disclaimer row dropped to keep the share under the cap
    # preference pairs
    CHOSEN_EQUALS_REJECTED = "chosen_equals_rejected"  # a pair whose two answers are the same text


REASON_DOCS: dict[Reason, str] = {
    Reason.INVALID_JSON: "the line is not valid JSON",
    Reason.INVALID_UTF8: "the line is not valid UTF-8",
    Reason.INVALID_SCHEMA: "not an object, no messages list, bad role, non-string content, no assistant turn, "
    "or assistant not last",
    Reason.EMPTY_CONTENT: "a message with empty content",
    Reason.TOO_LONG: "longer than the configured limit",
    Reason.NOISE_START: "an answer starting with punctuation, a role tag or blank lines that cannot be repaired",
    Reason.NON_KOREAN: "answer prose is not Korean",
    Reason.MIXED_SPEECH_LEVEL: ("polite and 반말 sentence endings mixed in the answer's own prose (headings, list "
                                "items, quotes, examples, code and a requested written piece are not judged)"),
    Reason.DUPLICATE: "exact duplicate of an earlier row after normalisation",
    Reason.NEAR_DUPLICATE: "near duplicate of an earlier row (character n-gram MinHash)",
    Reason.CROSS_SOURCE_DUPLICATE: "merge: exact duplicate of a row of an earlier source",
    Reason.CROSS_SOURCE_NEAR_DUPLICATE: "merge: near duplicate of a row of an earlier source",
    Reason.DISCLAIMER_OVER_CAP: "disclaimer row removed to keep the disclaimer share under the cap",
    Reason.CHOSEN_EQUALS_REJECTED: "preference pair whose chosen and rejected answers are the same",
}


class RowError(ValueError):
    """A row that breaks the schema; ``reason`` is a :class:`Reason`."""

    def __init__(self, reason: Reason, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def _type_name(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def validate_row(row: Any, max_chars: int | None = DEFAULT_MAX_CHARS) -> None:
    """Raise :class:`RowError` if ``row`` is not a valid chat row; return ``None`` when it is."""
    if not isinstance(row, dict):
        raise RowError(Reason.INVALID_SCHEMA, f"row is a JSON {_type_name(row)}, not an object")
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        what = "missing" if "messages" not in row else f"a {_type_name(messages)}, not a non-empty array"
        raise RowError(Reason.INVALID_SCHEMA, f"'messages' is {what}")
    for key, types in METADATA_TYPES.items():
        if key in row and row[key] is not None and not isinstance(row[key], types):
            raise RowError(Reason.INVALID_SCHEMA, f"'{key}' is a {_type_name(row[key])}")
    if "tags" in row and isinstance(row["tags"], list) and not all(isinstance(t, str) for t in row["tags"]):
        raise RowError(Reason.INVALID_SCHEMA, "'tags' must be a list of strings")
    total = 0
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise RowError(Reason.INVALID_SCHEMA, f"messages[{i}] is a {_type_name(message)}, not an object")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise RowError(Reason.INVALID_SCHEMA, f"messages[{i}].role is {role!r}; expected one of {ROLES}")
        if role == "system" and i != 0:
            raise RowError(Reason.INVALID_SCHEMA, f"messages[{i}] is a system message after the first turn")
        if not isinstance(content, str):
            raise RowError(Reason.INVALID_SCHEMA, f"messages[{i}].content is a {_type_name(content)}, not a string")
        if not content.strip():
            raise RowError(Reason.EMPTY_CONTENT, f"messages[{i}] ({role}) has empty content")
        total += len(content)
    if not any(m["role"] == "assistant" for m in messages):
        raise RowError(Reason.INVALID_SCHEMA, "no assistant turn")
    if messages[-1]["role"] != "assistant":
        raise RowError(Reason.INVALID_SCHEMA, f"the last message is from {messages[-1]['role']}, not the assistant")
    if max_chars is not None and total > max_chars:
        raise RowError(Reason.TOO_LONG, f"{total} characters > limit {max_chars}")


def assistant_texts(row: dict) -> list[str]:
    """The assistant messages of a row, in order."""
    return [m["content"] for m in row["messages"] if m["role"] == "assistant"]


def row_text(row: dict) -> str:
    """All message contents joined, for hashing and near-duplicate detection."""
    return "\n".join(f"{m['role']}: {m['content']}" for m in row["messages"])
