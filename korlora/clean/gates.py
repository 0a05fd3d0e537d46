"""The per-row cleaning gates, as pure functions over a list of raw records.

:func:`gate_rows` is what Ray Data's ``map_batches`` runs and what the single-process baseline loops over:
its result for a record depends only on that record (Kiwi runs once per batch for speed, but analyses each
text on its own), so any split into blocks gives the same verdicts. Gate order: schema → too_long →
noise_start (or repair) → non_korean → mixed_speech_level. Dedup keys and MinHash band keys are computed
here too; the decision between rows is made afterwards in input order (:mod:`korlora.clean.pipeline`).
"""

from __future__ import annotations

import functools
import json
import re
import unicodedata
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from korlora.clean import korean
from korlora.clean.dedup import (
    DEFAULT_BANDS,
    DEFAULT_NGRAM,
    DEFAULT_NUM_PERM,
    MinHasher,
    dedup_form,
    dedup_text,
    form_key,
)
from korlora.clean.disclaimer import row_has_disclaimer
from korlora.clean.imports import parse_record
from korlora.clean.noise import NOISE_CATEGORIES, repair_start, start_category
from korlora.data.bank import WRITTEN_TEXT_CATEGORIES
from korlora.schema import DEFAULT_MAX_CHARS, Reason

# Requests whose answer is a piece of written text (besides the bank's written-text categories): summaries,
# rewrites, and composing or correcting a text of some kind (a letter, a diary, a poem, a story, an exam problem, ...).
_TEXT_KIND = (r"글|문장|문단|단락|기사|보도자료|안내문|공지|편지|이메일|메일|소개글|자기소개서|일기|시|연|시조|소설|동화|이야기|"
              r"작품|줄거리|전개|장면|도입부|결말|스토리|시나리오|에세이|수필|칼럼|감상문|독후감|초대장|"
              r"대본|가사|노래|연설문|축사|광고|홍보|메시지|문구|개요|초안|보고서|리뷰|후기|문제|예문|답장")
_TEXT_VERB = r"써|쓰|작성|지어|만들|출제|수정|고쳐|교정|다듬"
_WRITTEN_REQUEST = re.compile(r"요약|간추려|줄여\s*(?:주|줘)|문체|말투로|바꿔\s*(?:주|줘|써)|고쳐\s*써|다듬어|윤문|재작성|"
                              rf"(?<![가-힣])(?:{_TEXT_KIND})[^.?!\n]{{0,30}}?(?:{_TEXT_VERB})")
# What the frame around a requested piece speaks of: the request ("요약하면", "작성해 보겠습니다") or, looking
# back, the piece itself ("이렇게 …", "위의 …", "이 편지는 …").
_REQUEST_WORD = re.compile(r"요약|간추|문체|말투|바꾸|바꿔|바뀐|고쳐|고친|수정|교정|다듬|윤문|작성|출제")
# A kind noun as a word of its own: "시를", "이 연은", not "시간" or "연구".
_KIND_TAIL = r"(?:[을를은는이가의에와과도만로]|으로|에서|처럼|형식|(?![가-힣]))"
_KIND_WORD = re.compile(rf"(?<![가-힣])({_TEXT_KIND})")
_LOOKING_BACK = re.compile(r"(?:^|[.!?]\s+)(?:이렇게|이처럼|이와\s*같이|위와\s*같이|위의?\s|이상으로|이상의)")
_ZERO_WIDTH = re.compile("[\u200b\u2060\ufeff]")
_HSPACE = re.compile(r"(?<=\S)[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]{2,}|[\u00a0\u2000-\u200a\u202f\u205f\u3000]")
_FENCE_SPLIT = re.compile(r"(```.*?(?:```|\Z)|~~~.*?(?:~~~|\Z))", re.S)
_PARAGRAPH = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class GateOptions:
    """What the gates need from a clean/check config; small and picklable for Ray workers."""

    fmt: str = "auto"
    max_chars: int | None = DEFAULT_MAX_CHARS
    max_tokens: int | None = None
    tokenizer: str | None = None
    min_hangul_ratio: float = 0.6
    repair: bool = True
    speech_level: bool = True
    all_reasons: bool = False  # check: collect every failing gate, not only the first
    dedup_keys: bool = True
    ngram: int = DEFAULT_NGRAM
    num_perm: int = DEFAULT_NUM_PERM
    bands: int = DEFAULT_BANDS

    @classmethod
    def from_config(cls, cfg: Any, all_reasons: bool = False) -> GateOptions:
        return cls(fmt=cfg.format, max_chars=cfg.max_chars, max_tokens=cfg.max_tokens, tokenizer=cfg.tokenizer,
                   min_hangul_ratio=cfg.min_hangul_ratio, repair=cfg.repair, speech_level=cfg.speech_level,
                   all_reasons=all_reasons, dedup_keys=cfg.dedup or cfg.near_dup, ngram=cfg.ngram,
                   num_perm=cfg.num_perm, bands=cfg.bands)


def normalize_text(text: str) -> str:
    """NFC, no zero-width characters, single spaces inside lines, at most one blank line in a row, trimmed.
    Code blocks keep their spacing."""
    text = _ZERO_WIDTH.sub("", unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n"))
    parts = _FENCE_SPLIT.split(text)
    for i in range(0, len(parts), 2):  # even parts are outside code fences
        lines = [_HSPACE.sub(" ", line).rstrip() for line in parts[i].split("\n")]
        parts[i] = re.sub(r"\n{3,}", "\n\n", "\n".join(lines))
    return "".join(parts).strip()


def is_written_task(row: dict, user_text: str) -> bool:
    """True when the answer is itself a piece of writing (summary, style transfer), where 해라체 is normal."""
    return row.get("category") in WRITTEN_TEXT_CATEGORIES or bool(_WRITTEN_REQUEST.search(user_text))


def requested_kinds(user_text: str) -> set[str]:
    """The kinds of text a request names ("편지를 다시 작성해보세요" → {"편지"})."""
    return {k for m in _WRITTEN_REQUEST.finditer(user_text) for k in _KIND_WORD.findall(m.group())}


def is_frame(paragraph: str, kinds: set[str]) -> bool:
    """A paragraph around a requested piece, in the answer's own voice: it names the request or the kind of
    text asked for ("다음은 편지의 예시입니다.", "이 일기는 …"), or looks back at the piece ("이렇게 초반은 …")."""
    if _REQUEST_WORD.search(paragraph) or _LOOKING_BACK.search(paragraph):
        return True
    named = "|".join(map(re.escape, kinds))
    return bool(named) and bool(re.search(rf"(?<![가-힣])(?:{named}){_KIND_TAIL}", paragraph))


@functools.cache
def _tokenizer(path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def count_tokens(row: dict, tokenizer: str) -> int:
    tok = _tokenizer(tokenizer)
    return sum(len(tok(m["content"], add_special_tokens=False)["input_ids"]) for m in row["messages"])


def new_result(line: int) -> dict:
    return {"line": line, "id": None, "row": None, "reasons": [], "details": [], "tags": [], "key": None}


def _fail(result: dict, reason: Reason, detail: str) -> None:
    result["reasons"].append(str(reason))
    result["details"].append(detail)


def _is_foreign(text: str, opts: GateOptions) -> bool:
    """Prose letters that are mostly not Hangul (the purity gate then says ``non_korean``)."""
    hangul, other = korean.letter_counts(text)
    return hangul + other > 0 and hangul / (hangul + other) < opts.min_hangul_ratio


def _clean_messages(row: dict, result: dict, opts: GateOptions) -> None:
    """Normalise every message; repair (or refuse) assistant answers that start with noise."""
    repaired = False
    for i, message in enumerate(row["messages"]):
        content = unicodedata.normalize("NFC", message["content"])
        if message["role"] == "assistant":
            category = start_category(content)
            if category in NOISE_CATEGORIES:
                fixed = repair_start(content) if opts.repair else None
                if fixed is not None:
                    content, repaired = fixed, True
                elif not _is_foreign(content, opts):
                    _fail(result, Reason.NOISE_START, f"messages[{i}] starts with {category}: {content[:30]!r}")
                    return
                # else: a foreign-language answer; the purity gate calls it non_korean whatever its first character
        message["content"] = normalize_text(content)
        if not message["content"]:
            _fail(result, Reason.EMPTY_CONTENT, f"messages[{i}] is empty after normalisation")
            return
    if repaired:
        result["tags"].append("repaired")


def _purity(row: dict, result: dict, opts: GateOptions) -> None:
    for i, message in enumerate(row["messages"]):
        if message["role"] != "assistant":
            continue
        hangul, other = korean.letter_counts(message["content"])
        if hangul + other == 0:
            continue  # code only: no prose to judge
        ratio = hangul / (hangul + other)
        if ratio < opts.min_hangul_ratio:
            _fail(result, Reason.NON_KOREAN,
                  f"messages[{i}]: Hangul is {ratio:.2f} of the letters (< {opts.min_hangul_ratio})")
            return
        foreign = korean.foreign_sentences(message["content"])
        if foreign:
            _fail(result, Reason.NON_KOREAN, f"messages[{i}]: non-Korean sentence {foreign[0][:60]!r}")
            return


def _speech_units(row: dict) -> list[tuple[int, str, bool]]:
    """``(message index, text, written)`` to analyse: the running prose of each answer
    (:func:`korlora.clean.korean.register_prose`). In a written-text answer the requested piece keeps its own
    register and is not judged: only the frame around it is (:func:`is_frame`), paragraph by paragraph."""
    units, user = [], ""
    for i, message in enumerate(row["messages"]):
        if message["role"] == "user":
            user = message["content"]
        elif message["role"] == "assistant":
            written = is_written_task(row, user)
            text = korean.register_prose(message["content"], user)
            if written:
                kinds = requested_kinds(user)
                parts = [p for p in _PARAGRAPH.split(text) if is_frame(p, kinds)]
            else:
                parts = [text]
            units += [(i, p, written) for p in parts if p.strip()]
    return units


def _speech_gate(pending: list[tuple[dict, dict]]) -> None:
    """The Kiwi gate over a whole batch: standard reading first, dialect reading for what looks mixed."""
    jobs = []  # (result, message index, text, written, dialect hint)
    for row, result in pending:
        hint = bool(row.get("dialect")) or row.get("category") == "dialect"
        jobs += [(result, i, text, written, hint) for i, text, written in _speech_units(row)]
    levels = [None] * len(jobs)
    for dialects in (False, True):
        todo = [k for k, job in enumerate(jobs) if job[4] == dialects]
        for k, counts in zip(todo, korean.speech_levels_batch([jobs[k][2] for k in todo], dialects=dialects),
                             strict=True):
            levels[k] = counts
    retry = [k for k, job in enumerate(jobs) if not job[4] and korean.is_mixed(levels[k], job[3])]
    for k, counts in zip(retry, korean.speech_levels_batch([jobs[k][2] for k in retry], dialects=True),
                         strict=True):
        levels[k] = counts
    for (result, i, _, written, _), counts in zip(jobs, levels, strict=True):
        if korean.is_mixed(counts, written) and str(Reason.MIXED_SPEECH_LEVEL) not in result["reasons"]:
            _fail(result, Reason.MIXED_SPEECH_LEVEL, f"messages[{i}]: {korean.describe_levels(counts)}")


def gate_rows(records: list[tuple[int, bytes]], opts: GateOptions) -> list[dict]:
    """Run every per-row gate over ``(line, raw JSON bytes)`` records. Each result holds ``line``, ``id``,
    ``row`` (the cleaned row, or ``None``), ``reasons``/``details`` (empty when kept), ``tags`` and, for
    kept rows, the exact-duplicate ``key`` and the MinHash signature ``sig`` (bytes of ``num_perm`` uint32)."""
    results, pending = [], []
    for line, raw in records:
        result = new_result(int(line))
        results.append(result)
        row, reject = parse_record(int(line), bytes(raw), opts.fmt, opts.max_chars)
        if reject is not None:
            _fail(result, Reason(reject["reason"]), reject["detail"])
            continue
        result["id"] = row.get("id")
        if opts.max_tokens is not None and opts.tokenizer:
            n = count_tokens(row, opts.tokenizer)
            if n > opts.max_tokens:
                _fail(result, Reason.TOO_LONG, f"{n} tokens > limit {opts.max_tokens}")
                if not opts.all_reasons:
                    continue
        _clean_messages(row, result, opts)
        if Reason.NOISE_START in result["reasons"] or Reason.EMPTY_CONTENT in result["reasons"]:
            continue  # nothing sensible left to judge
        if not result["reasons"] or opts.all_reasons:
            _purity(row, result, opts)
        result["row"] = row
        if row_has_disclaimer(row):
            result["tags"].append("disclaimer")
        if opts.speech_level and (not result["reasons"] or opts.all_reasons):
            pending.append((row, result))
    if pending:
        _speech_gate(pending)
    alive = [r for r in results if not r["reasons"]]
    for r in results:
        r["sig"] = b""
    if opts.dedup_keys and alive:
        forms = [dedup_form(dedup_text(r["row"])) for r in alive]
        hasher = MinHasher(num_perm=opts.num_perm, bands=opts.bands, ngram=opts.ngram)
        for r, form, sig in zip(alive, forms, hasher.signatures(forms), strict=True):
            r["key"] = form_key(form)
            r["sig"] = sig.tobytes()
    for r in results:
        if r["reasons"]:
            r["row"] = None
        elif "repaired" in r["tags"]:
            r["row"]["tags"] = [*(r["row"].get("tags") or []), "repaired"]
    return results


def gate_batch(batch: dict[str, np.ndarray], opts: GateOptions) -> dict[str, list]:
    """``map_batches`` adapter: columns ``line``/``raw`` in; ``line``, ``result`` (JSON) and ``sig`` out."""
    results = gate_rows(list(zip(batch["line"].tolist(), batch["raw"], strict=True)), opts)
    sigs = [r.pop("sig") for r in results]
    return {"line": [r["line"] for r in results],
            "result": [json.dumps(r, ensure_ascii=False) for r in results],
            "sig": sigs}


def options_dict(opts: GateOptions) -> dict:
    return asdict(opts)
