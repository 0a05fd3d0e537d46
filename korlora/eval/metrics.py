"""What ``korlora eval`` measures in one generated answer, and the shares over many.

Each measure reuses the cleaning gates' judgement (:mod:`korlora.clean`), whose agreement with editors on
real model answers is measured in ``benchmarks/``: Korean prose (code, formulas and markup aside), foreign
sentences, how the answer starts, disclaimers, and speech levels of the answer's own running prose.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from korlora.clean import korean
from korlora.clean.disclaimer import disclaimer_spans
from korlora.clean.noise import start_category

# How answers start, in the report's words (start_category's classes grouped).
START_GROUPS = {"hangul": "hangul", "punct": "punctuation", "blank": "punctuation", "markdown": "hangul",
                "invisible": "invisible", "role_tag": "role_tag", "disclaimer": "disclaimer"}
_HANJA_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]{2,}")
_WORD = re.compile(r"\S+")
POLITE, CASUAL = ("hapsyo", "haeyo"), ("banmal", "haera", "haoche")


def start_group(answer: str) -> str:
    """hangul | punctuation | invisible | role_tag | disclaimer | other."""
    return START_GROUPS.get(start_category(answer), "other")


def repetition_loop(answer: str, n: int = 3, times: int = 3, chars: int = 10) -> bool:
    """A degenerate loop: some ``n``-word sequence, or some ``chars``-character run (for text without
    spaces), occurs ``times`` times or more."""
    words = _WORD.findall(answer)
    grams = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    if grams and max(grams.values()) >= times:
        return True
    squeezed = re.sub(r"\s+", "", answer)
    runs = Counter(squeezed[i:i + chars] for i in range(0, max(0, len(squeezed) - chars + 1)))
    return bool(runs) and max(runs.values()) >= times + 1


def register_verdict(levels: Counter, expected: str) -> str | None:
    """``match``, ``mismatch`` or None (no sentence ending to judge) for an answer's speech levels against
    the register the question asks for. 합쇼체 and 해요체 go together; a written piece (해라체) may come
    with a polite line around it."""
    polite = sum(levels[k] for k in POLITE)
    casual = sum(levels[k] for k in CASUAL)
    if not polite and not casual:
        return None
    if expected in POLITE:
        return "match" if polite and not casual else "mismatch"
    if expected == "banmal":
        return "match" if casual and not polite else "mismatch"
    return "match" if casual else "mismatch"  # haera: the piece itself is plain


def answer_measures(answers: Sequence[str], questions: Sequence[str], registers: Sequence[str],
                    stopped: Sequence[bool]) -> list[dict]:
    """One record per answer (speech levels read by Kiwi in one batch)."""
    prose = [korean.register_prose(a, q) for a, q in zip(answers, questions, strict=True)]
    levels = korean.speech_levels_batch(prose)
    records = []
    for answer, register, stop, level in zip(answers, registers, stopped, levels, strict=True):
        hangul, other = korean.letter_counts(answer)
        foreign = korean.foreign_sentences(answer)
        korean_prose = hangul + other > 0 and hangul / (hangul + other) >= 0.6 and not foreign
        records.append({
            "start": start_group(answer),
            "korean": korean_prose,
            "code_switch": bool(foreign),
            "hanja": bool(_HANJA_RUN.search(korean.prose(korean.unquote(answer)))),
            "disclaimer_anywhere": bool(disclaimer_spans(answer)),
            "stopped": bool(stop),
            "repetition": repetition_loop(answer),
            "register": register_verdict(level, register),
            "mixed_register": korean.is_mixed(level, written=register == "haera"),
        })
    return records


def shares(records: Sequence[dict]) -> dict:
    """The report's figures over ``records`` (shares in [0, 1])."""
    n = len(records)
    if not n:
        return {"answers": 0}
    starts = Counter(r["start"] for r in records)
    judged = [r for r in records if r["register"] is not None]
    return {
        "answers": n,
        "korean_share": sum(r["korean"] for r in records) / n,
        "code_switch_share": sum(r["code_switch"] for r in records) / n,
        "hanja_share": sum(r["hanja"] for r in records) / n,
        "hangul_start_share": starts["hangul"] / n,
        "punct_start_share": starts["punctuation"] / n,
        "invisible_start_share": starts["invisible"] / n,
        "role_tag_start_share": starts["role_tag"] / n,
        "disclaimer_start_share": starts["disclaimer"] / n,
        "disclaimer_anywhere_share": sum(r["disclaimer_anywhere"] for r in records) / n,
        "stop_share": sum(r["stopped"] for r in records) / n,
        "repetition_share": sum(r["repetition"] for r in records) / n,
        "register_match_share": (sum(r["register"] == "match" for r in judged) / len(judged)) if judged else None,
        "mixed_register_share": sum(r["mixed_register"] for r in records) / n,
    }
