"""Preference pairs for ``korlora train --method dpo|orpo``: reading them, and the TRL trainer that uses them.

A pair file holds one record per line (or a JSON array / Parquet table), in any of these shapes:

- korlora's ``*_dpo.jsonl`` and TRL's own: ``{"prompt": str | [messages], "chosen": str | [messages],
  "rejected": str | [messages]}``;
- ``{"messages": [the prompt conversation], "chosen": ..., "rejected": ...}``;
- ShareGPT: ``{"conversations": [{"from": "human", "value": ...}, ...], "chosen": {"from": "gpt", "value": ...},
  "rejected": {...}}``.

Each becomes TRL's conversational preference row ``{"prompt": [messages ending with a user turn], "chosen":
[assistant messages], "rejected": [assistant messages]}`` with its metadata (``id``, ``category``, ``source``,
``tags``), or a reject with its line number and reason code, as every korlora reader does. Like SFT training,
training refuses a file with rejects; the driver writes them to ``<data_file>.rejects.jsonl``.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

from korlora.clean.imports import SHAREGPT_ROLES, iter_records
from korlora.errors import KorloraError
from korlora.io import ReadResult, collect, escape_raw, make_reject, valid_rows
from korlora.schema import DEFAULT_MAX_CHARS, METADATA_TYPES, Reason, RowError, validate_row
from korlora.train.sft import in_held_out

SIDES = ("chosen", "rejected")


def _message(value: Any, where: str) -> dict:
    """A ``{"role", "content"}`` message from itself or a ShareGPT turn ``{"from", "value"}``."""
    if not isinstance(value, dict):
        raise RowError(Reason.INVALID_SCHEMA, f"{where} is not an object")
    if "role" in value or "content" in value:
        return {"role": value.get("role"), "content": value.get("content")}
    who = value.get("from")
    role = SHAREGPT_ROLES.get(str(who).lower()) if who is not None else None
    if role is None:
        raise RowError(Reason.INVALID_SCHEMA, f"{where}.from is {who!r}; expected human/gpt/system")
    return {"role": role, "content": value.get("value")}


def _messages(value: Any, where: str, text_role: str) -> list[dict]:
    """A message list from a string (one ``text_role`` message), one message, or a list of messages."""
    if isinstance(value, str):
        return [{"role": text_role, "content": value}]
    if isinstance(value, dict):
        return [_message(value, where)]
    if isinstance(value, list) and value:
        return [_message(m, f"{where}[{i}]") for i, m in enumerate(value)]
    what = "missing" if value is None else "an empty array" if value == [] else f"a JSON {type(value).__name__}"
    raise RowError(Reason.INVALID_SCHEMA, f"'{where}' is {what}")


def to_pair(record: Any) -> dict:
    """One record to a conversational preference row (validated); raises :class:`RowError`."""
    if not isinstance(record, dict):
        raise RowError(Reason.INVALID_SCHEMA, f"record is a JSON {type(record).__name__}, not an object")
    key = next((k for k in ("prompt", "messages", "conversations") if k in record), None)
    if key is None:
        raise RowError(Reason.INVALID_SCHEMA, "no 'prompt', 'messages' or 'conversations' field")
    prompt = _messages(record[key], key, "user")
    if isinstance(record.get("system"), str) and record["system"].strip() and prompt[0]["role"] != "system":
        prompt.insert(0, {"role": "system", "content": record["system"]})
    if prompt[-1]["role"] != "user":
        raise RowError(Reason.INVALID_SCHEMA, f"the prompt ends with a {prompt[-1]['role']!r} turn, not the user's")
    meta = {k: record[k] for k in METADATA_TYPES if record.get(k) is not None}
    pair = {"prompt": prompt, **meta}
    for side in SIDES:
        answer = _messages(record.get(side), side, "assistant")
        roles = {m["role"] for m in answer}
        if roles != {"assistant"}:
            raise RowError(Reason.INVALID_SCHEMA, f"'{side}' has {sorted(map(str, roles))} turns; expected only assistant")
        try:  # the prompt and this answer together must be a valid chat row
            validate_row({"messages": prompt + answer, **meta}, max_chars=None)
        except RowError as e:
            raise RowError(e.reason, f"{side}: {e.detail}") from None
        pair[side] = answer
    # exact text: blank lines in front of an answer are one of the broken starts that pairs teach against
    if [m["content"] for m in pair["chosen"]] == [m["content"] for m in pair["rejected"]]:
        raise RowError(Reason.CHOSEN_EQUALS_REJECTED, "'chosen' and 'rejected' are the same answer")
    return pair


def parse_pair(number: int, raw: bytes, max_chars: int | None = DEFAULT_MAX_CHARS) -> tuple[dict | None, dict | None]:
    """One raw record to ``(pair, None)`` or ``(None, reject)``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        return None, make_reject(number, Reason.INVALID_UTF8, f"byte {e.start}: {e.reason}", escape_raw(raw))
    try:
        record = json.loads(text)
    except json.JSONDecodeError as e:
        return None, make_reject(number, Reason.INVALID_JSON, f"{e.msg} at column {e.colno}", text)
    try:
        pair = to_pair(record)
        longest = max(sum(len(m["content"]) for m in pair["prompt"] + pair[side]) for side in SIDES)
        if max_chars is not None and longest > max_chars:
            raise RowError(Reason.TOO_LONG, f"{longest} characters > limit {max_chars}")
    except RowError as e:
        return None, make_reject(number, e.reason, e.detail, text)
    return pair, None


def read_pairs(path: str | os.PathLike, max_chars: int | None = DEFAULT_MAX_CHARS) -> ReadResult:
    """Read a JSONL, JSON-array or Parquet file of preference pairs into valid pairs and rejects, in order."""
    return collect(iter_records(path), lambda number, raw: parse_pair(number, raw, max_chars))


def load_pairs(path: str) -> list[dict]:
    """The pairs of a file with no rejects (training refuses to silently drop lines, as for chat rows)."""
    return valid_rows(read_pairs(path), path, "pairs", f"every reject is in {path}.rejects.jsonl")


def split_pairs(pairs: list[dict], eval_share: float) -> tuple[list[dict], list[dict]]:
    """Hold out pairs by a hash of their id (or prompt), as :func:`korlora.train.sft.split_rows` does rows."""
    train, held_out = [], []
    for i, pair in enumerate(pairs):
        key = str(pair.get("id", i)) + pair["prompt"][-1]["content"][:64]
        (held_out if in_held_out(key, eval_share) else train).append(trainer_row(pair))
    if not train:
        raise KorloraError("no training pairs left after the eval split")
    return train, held_out


def trainer_row(pair: dict) -> dict:
    return {k: pair[k] for k in ("prompt", *SIDES)}


def prompt_prefix_share(tokenizer, pairs: list[dict], sample: int = 64) -> float:
    """Share of pairs whose tokenised prompt (with the generation prompt) is a prefix of prompt + chosen.

    TRL starts the completion where the two diverge: where the template renders a prompt differently on its
    own, the first answer tokens, the ones that preference training on answer starts is about, would be cut.
    """
    fits = 0
    for pair in pairs[:sample]:
        prompt = tokenizer.apply_chat_template(pair["prompt"], add_generation_prompt=True, tokenize=True,
                                               return_dict=True)["input_ids"]
        full = tokenizer.apply_chat_template(pair["prompt"] + pair["chosen"], tokenize=True,
                                             return_dict=True)["input_ids"]
        fits += list(full[:len(prompt)]) == list(prompt)
    return fits / max(min(len(pairs), sample), 1)


def preference_trainer(method: str, **kwargs):
    """``DPOTrainer`` or ``ORPOTrainer`` (``trl.experimental`` since TRL 1.0) with the worker's arguments.

    DPO with ``ref_model=None`` and a PEFT model needs no second model: for a fresh LoRA the reference is the
    model with the adapter disabled; for ``--init_adapter`` TRL adds a frozen copy of the loaded adapter named
    ``ref``, so the reference is the SFT model being continued. ORPO has no reference model.
    """
    if method == "dpo":
        from trl import DPOTrainer

        return DPOTrainer(**kwargs)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*trl.experimental.*")
        from trl.experimental.orpo import ORPOTrainer
    return ORPOTrainer(**kwargs)
