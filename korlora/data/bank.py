"""The content bank: hand-written Korean question/answer cores, one YAML file per category."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path

import yaml

from korlora.errors import KorloraError

BANK_DIR = Path(__file__).parent / "bank"
TEMPLATES_PATH = Path(__file__).parent / "templates.yaml"
LEVELS = ("hapsyo", "haeyo", "banmal", "haera")
LEVEL_NAMES = {"hapsyo": "합쇼체", "haeyo": "해요체", "banmal": "반말", "haera": "해라체"}
DIALECTS = ("gyeongsang", "jeolla", "chungcheong", "jeju", "gangwon")
CATEGORIES = {
    "daily": "일상 대화",
    "it": "IT 기술",
    "spelling": "맞춤법",
    "style": "문체 변환",
    "dialect": "사투리",
    "finance": "금융",
    "law": "법률",
    "car": "자동차 정비",
    "counselling": "감정 상담",
    "summary": "긴 글 요약",
    "reasoning": "추론",
    "code": "코드 설명",
}
# Categories whose answers are written text, where plain 해라체 is the expected register.
WRITTEN_TEXT_CATEGORIES = frozenset({"summary", "style"})


@dataclass(frozen=True)
class BankItem:
    id: str
    category: str
    level: str
    question: str
    answer: str
    followup_question: str
    followup_answer: str
    dialect: str | None = None
    # The day the item's time-sensitive facts (rates, laws, agency names, …) were last checked; None for
    # items that do not date.
    as_of: dt.date | None = None
    # Every hand-written answer to the question and to the follow-up, the original first, then those of
    # ``bank/variants/<category>.yaml`` and ``bank/variants/more/<category>.yaml``.
    answers: tuple[str, ...] = ()
    followup_answers: tuple[str, ...] = ()

    def is_stale(self, today: dt.date, max_age_days: int) -> bool:
        """True if the item's facts were checked more than ``max_age_days`` before ``today``."""
        return self.as_of is not None and (today - self.as_of).days > max_age_days


def parse_date(value, where: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise KorloraError(f"{where}: {value!r} is not a date (YYYY-MM-DD)") from None


def _item(category: str, raw: dict, path: Path) -> BankItem:
    where = f"{path.name}: item {raw.get('id', '?')}"
    try:
        followup = raw["followup"]
        item = BankItem(
            id=raw["id"], category=category, level=raw["level"], question=raw["question"].strip(),
            answer=raw["answer"].strip(), followup_question=followup["question"].strip(),
            followup_answer=followup["answer"].strip(), dialect=raw.get("dialect"),
            as_of=parse_date(raw["as_of"], f"{where}: as_of") if raw.get("as_of") is not None else None,
            answers=(raw["answer"].strip(),), followup_answers=(followup["answer"].strip(),),
        )
    except (KeyError, TypeError, AttributeError) as e:
        raise KorloraError(f"{where}: missing or malformed field {e}") from None
    if item.level not in LEVELS:
        raise KorloraError(f"{where}: level {item.level!r} is not one of {LEVELS}")
    if item.dialect is not None and item.dialect not in DIALECTS:
        raise KorloraError(f"{where}: dialect {item.dialect!r} is not one of {DIALECTS}")
    return item


@functools.cache
def load_bank(bank_dir: str | None = None) -> dict[str, tuple[BankItem, ...]]:
    """All bank items by category key, in id order. Cached per process."""
    directory = Path(bank_dir) if bank_dir else BANK_DIR
    bank: dict[str, tuple[BankItem, ...]] = {}
    for key in CATEGORIES:
        path = directory / f"{key}.yaml"
        if not path.exists():
            continue
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
        items = tuple(sorted((_item(key, raw, path) for raw in data.get("items", [])), key=lambda i: i.id))
        ids = [i.id for i in items]
        if len(set(ids)) != len(ids):
            raise KorloraError(f"{path.name}: duplicate item ids")
        for variants in (directory / "variants" / f"{key}.yaml", directory / "variants" / "more" / f"{key}.yaml"):
            if variants.exists():
                items = _with_variants(items, variants)
        bank[key] = items
    if not bank:
        raise KorloraError(f"the content bank in {directory} is empty")
    return bank


def _texts(value, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, str) and t.strip() for t in value):
        raise KorloraError(f"{where}: expected a list of non-empty answers")
    return tuple(t.strip() for t in value)


def _with_variants(items: tuple[BankItem, ...], path: Path) -> tuple[BankItem, ...]:
    """``items`` with the extra answers of a variants file (``items: {id: {answers, followup_answers}}``)."""
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    extra = data.get("items") or {}
    known = {i.id for i in items}
    unknown = sorted(set(extra) - known)
    if unknown:
        raise KorloraError(f"{path}: variants for unknown items {', '.join(unknown[:5])}")
    out = []
    for item in items:
        more = extra.get(item.id) or {}
        where = f"{path.parent.name}/{path.name}: {item.id}"
        answers = tuple(dict.fromkeys(item.answers + _texts(more.get("answers"), f"{where}: answers")))
        followups = tuple(dict.fromkeys(item.followup_answers
                                        + _texts(more.get("followup_answers"), f"{where}: followup_answers")))
        out.append(dataclasses.replace(item, answers=answers, followup_answers=followups))
    return tuple(out)


def fresh_bank(today: dt.date, max_age_days: int, bank_dir: str | None = None) -> dict[str, tuple[BankItem, ...]]:
    """The bank without items whose facts are stale on ``today`` (see :meth:`BankItem.is_stale`)."""
    return {category: tuple(i for i in items if not i.is_stale(today, max_age_days))
            for category, items in load_bank(bank_dir).items()}


@functools.cache
def load_templates() -> dict:
    with open(TEMPLATES_PATH, encoding="utf-8") as f:
        return yaml.safe_load(f)
