"""How an answer starts, and repairing answers that start with noise.

After a start-pattern collapse a model opens with punctuation (". ", "… "), a role tag ("assistant:"),
blank lines, invisible characters (Gemma 3 emits U+200B runs) or a disclaimer instead of a Hangul sentence. :func:`start_category` names the start (also used
to diagnose model outputs); :func:`repair_start` cuts a noisy start back to the first Hangul sentence.
"""

from __future__ import annotations

import re
import unicodedata

from korlora.clean.disclaimer import is_disclaimer
from korlora.clean.korean import has_hangul, is_hangul

START_CATEGORIES = ("hangul", "punct", "invisible", "disclaimer", "role_tag", "blank", "markdown", "code", "latin",
                    "other", "empty")
NOISE_CATEGORIES = frozenset({"punct", "invisible", "role_tag", "blank"})
# Letters that render as nothing: the Hangul fillers (category Lo, inside the jamo blocks that count as Hangul)
# and the default-ignorable marks outside category Cf.
_INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u034f\u17b4\u17b5")
_VARIATION_SELECTORS = ((0x180B, 0x180F), (0xFE00, 0xFE0F), (0xE0100, 0xE01EF))

ROLE_TAG = re.compile(
    r"(?:<\|?im_start\|?>\s*assistant\b|<\|?(?:assistant|bot|model)\|?>"  # <|im_start|>assistant, <|assistant|>
    r"|\[/?(?:assistant|inst|bot)\]"  # [ASSISTANT], [/INST]
    r"|#{1,4}\s*(?:assistant|답변|응답)\s*:?"  # ### Assistant
    r"|(?:assistant|ai|bot|gpt|chatgpt|model|답변|응답|어시스턴트|챗봇|상담원)\s*(?:[:：]|\n))",
    re.IGNORECASE,
)
_FIRST_SENTENCE = re.compile(r".*?(?:[.!?。…](?=\s|$)|\n|$)", re.S)
_SENTENCE_START = re.compile(r"(?:[.!?。…]+[\"'”’」)]*\s+|\n+)")
_HEADING = re.compile(r"#{1,6} [^\n]{1,40}\n\s*\S")
_BOLD_LEAD = re.compile(r"\*\*[^*\s][^*\n]{0,60}\*\*")
_LIST_LINE = re.compile(r"^\s*(?:[-*+•]|\d{1,2}[.)])\s+\S", re.M)
_NUMBERED = re.compile(r"\d{1,2}[.)]\s")
MIN_HANGUL_AFTER_REPAIR = 2  # one Korean word


def is_invisible_char(ch: str) -> bool:
    """A character that renders as nothing: format characters (category Cf: U+200B–U+200D, U+2060, U+FEFF, soft
    hyphen, bidi marks, …), the Hangul fillers U+115F/U+1160/U+3164/U+FFA0 and other default-ignorable marks.

    The fillers are letters inside the jamo blocks, so :func:`korlora.clean.korean.is_hangul` counts them as
    Hangul: check this first.
    """
    if ch in _INVISIBLE_LETTERS or unicodedata.category(ch) == "Cf":
        return True
    o = ord(ch)
    return any(lo <= o <= hi for lo, hi in _VARIATION_SELECTORS)


def is_noise_char(ch: str) -> bool:
    """Punctuation, symbols and invisible characters (not letters, digits or whitespace)."""
    return (unicodedata.category(ch)[0] in "PSC" and not ch.isspace()) or is_invisible_char(ch)


def first_sentence(text: str) -> str:
    m = _FIRST_SENTENCE.match(text.lstrip())
    return m.group(0) if m else text


def _markdown_start(text: str) -> bool:
    """A real markdown structure (heading over a body, a list of ≥ 2 items, a bold lead-in) — not noise."""
    if _HEADING.match(text) and not text.split("\n", 1)[0].rstrip().endswith((".", "!", "?")):
        return True
    if _BOLD_LEAD.match(text):
        return True
    return bool(_LIST_LINE.match(text)) and len(_LIST_LINE.findall(text)) >= 2


def start_category(text: str) -> str:
    """What an answer starts with: one of :data:`START_CATEGORIES`."""
    if not text or not text.strip():
        return "empty"
    text = unicodedata.normalize("NFC", text)
    c = text[0]
    if c.isspace():
        return "blank"
    if is_invisible_char(c):
        return "invisible"
    if ROLE_TAG.match(text):
        return "role_tag"
    if text.startswith(("```", "~~~")):
        return "code"
    if (is_noise_char(c) or _NUMBERED.match(text)) and _markdown_start(text):
        return "markdown"
    if is_noise_char(c):
        return "punct"
    first = first_sentence(text)
    if is_disclaimer(first):
        return "disclaimer"
    if is_hangul(c) or (c.isalnum() and has_hangul(first)):
        return "hangul"
    if c.isascii() and c.isalnum():
        return "latin"
    return "other"


def is_noise_start(text: str) -> bool:
    return start_category(text) in NOISE_CATEGORIES


def _strip_leading_noise(text: str) -> str:
    while True:
        before = text
        text = text.lstrip()
        m = ROLE_TAG.match(text)
        if m:
            text = text[m.end():]
        i = 0
        while i < len(text) and is_noise_char(text[i]):
            i += 1
        text = text[i:]
        if text == before:
            return text


def _starts_sentence(text: str) -> bool:
    return bool(text) and ((is_hangul(text[0]) and not is_invisible_char(text[0])) or (text[0].isalnum() and has_hangul(first_sentence(text))))


def repair_start(text: str) -> str | None:
    """``text`` cut to start at its first Hangul sentence, or ``None`` when no sensible Korean remains.

    Leading whitespace, invisible characters, role tags and punctuation are dropped; if what follows is still not a Korean
    sentence (a stray English phrase, a lone symbol run), the text restarts at the next sentence that does
    start with Hangul.
    """
    rest = _strip_leading_noise(unicodedata.normalize("NFC", text))
    if not _starts_sentence(rest):
        for m in _SENTENCE_START.finditer(rest):
            candidate = _strip_leading_noise(rest[m.end():])
            if _starts_sentence(candidate):
                rest = candidate
                break
        else:
            return None
    rest = rest.rstrip()
    if sum(1 for c in rest if is_hangul(c) and not is_invisible_char(c)) < MIN_HANGUL_AFTER_REPAIR:
        return None
    return rest
