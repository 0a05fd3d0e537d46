"""Turning bank items into chat rows.

A *spec* says what a row is made of (``kind`` and bank item ids); :func:`render` turns it into a row. All
the random choices of a row (system prompt, lead-in, …) come from a generator seeded by ``(seed, id)``,
so a row is the same whichever worker renders it and in whichever block.

Who says what, in which register:

- the system prompt is a persona for the item's *category* (a counsellor for counselling, a developer for
  code, …) that asks for the *answer's* register (``item.level``);
- the user's lead-in and the bridge to a second topic follow the register of the user's *own question*
  (:func:`question_register`), which for written-text categories differs from the answer's (a polite
  request for a 해라체 summary);
- two items share a conversation only if one speaker can plausibly ask both: same answer register, same
  question register, and at most one of the two questions says something about the user's own life
  (:func:`tells_about_self`), so a second topic never contradicts the first. Counselling items are never
  paired: a new topic right after a confession reads as if the user were not listened to.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from typing import Any

from korlora.data.bank import BankItem, load_bank, load_templates

SYSTEM_PROMPT_SHARE = 0.85
# Which of an item's answers (``BankItem.answers``, the original first) each data source uses: the sources
# that a relearn merges never share an answer (the merge would drop the later row as a near duplicate, and
# the model would read the same text again and again). Within a source, each answer serves at most
# MAX_ANSWER_USES rows while the bank has room (past that, the least used answer is reused).
ANSWER_SLOTS = {"korlora-bank": (0, 1), "korlora-no-warning": (1, 3), "korlora-correction": (3, 5)}
MAX_ANSWER_USES = 3
QUESTION_REGISTERS = ("hapsyo", "haeyo", "banmal")
# Categories whose items are never paired with another topic in one conversation.
UNPAIRED_CATEGORIES = frozenset({"counselling"})
# Categories whose question holds a passage to work on: the user's own words are its first paragraph.
_PASSAGE_CATEGORIES = frozenset({"summary", "style"})

_FENCE = re.compile(r"(```|~~~).*?(?:\1|\Z)", re.S)
_INLINE_CODE = re.compile(r"`[^`\n]*`")
_QUOTED = re.compile(r"\"[^\"\n]*\"|“[^”\n]*”|'[^'\n]*'|‘[^’\n]*’|「[^」\n]*」|『[^』\n]*』")
_SENTENCE_END = re.compile(r"[.?!…~]+|\n+")
_TRAILING = re.compile(r"[\s.?!…~,;:)\]ㅠㅜㅋㅎ^]+$")
_HAPSYO_ENDINGS = ("니다", "니까", "십시오", "시오", "소서")
_HAEYO_ENDINGS = ("요", "죠")
# Final syllables of non-honorific sentence endings (반말 and 해라체: 해, 줘, 돼, 거야, 할까, 하지, 했는데, …).
_BANMAL_FINALS = frozenset("어아야지니냐래까게자줘해돼와워봐라나네군데고다걸든며대내가랴렴마지")
# The user talks about their own life: first-person words, family, work, home, or a past event of theirs.
_SELF = re.compile(
    r"(?:^|[\s\"'(])(?:저는|저도|제가|제|저희|저한테|저를|저만|저랑|전|나는|나도|내가|내|나한테|나를|나만|나랑|난|우리|울)"
    r"(?=[\s,]|$)"
    r"|남편|아내|와이프|엄마|아빠|어머니|아버지|부모님|시어머니|장모|아들|딸|아이가|아이를|아이한테|애가|조카|동생|남자\s*친구|여자\s*친구"
    r"|남친|여친|애인|할머니|할아버지|손주|친구|선배|후배|팀장|사장님|상사|동료|회사에서|직장|입사|퇴사|알바|아르바이트|집주인|세입자|"
    r"이사|계약했|샀는데|받았는데|했는데|됐는데|다녀왔|졸업|결혼|이혼|임신|출산|돌아가셨|다쳤|아파서|아픈데"
    # a situation of theirs: something that happened, is going on, or who they are
    r"|(?:었|았|였|했|렸|났|졌|왔|갔|겼|봤|됐|줬|셨)(?:는데|어요|습니다|어|다|고)"
    r"|고\s*있(?:어|습니|는데|고)|중인데|중이에요|중입니다|째|받으러|연락을 받|문자를 받|우리\s*집|저희\s*집"
    r"|초년생|프리랜서|대학생|고등학생|중학생|취준생|직장인|주부|자영업|은퇴|\d+대\s*(?:초반|중반|후반)?(?:입니다|이에요|인데)"
    r"|월급|연봉|빚이|연체|대출을\s*받|혼인신고|같이\s*살|피해자|가해자|맞벌이|자취|회사가|회사\s*다니|다니면서|직원|팀에서"
)
_DISTRESS = re.compile(
    r"힘들|괴로|우울|불안|무서|두렵|슬프|슬퍼|눈물|울고|외로|서운|속상|자책|죄책|상처|돌아가셨|떠나보|이별|헤어졌|다쳤|사고|"
    r"아파|아프|병원|진단|해고|잘렸|폐업|빚|연체|괴롭힘|폭언|폭행|스트레스|막막|답답|지쳤|지쳐"
)


def row_rng(seed: int, row_id: str) -> random.Random:
    return random.Random(f"{seed}:{row_id}")  # str seeds hash with SHA-512: stable across processes


def items_by_id() -> dict[str, BankItem]:
    return {item.id: item for items in load_bank().values() for item in items}


def user_words(item: BankItem) -> str:
    """The user's own words in the question: no code, no quoted text, no passage to summarise or rewrite."""
    text = _FENCE.sub("\n", item.question)
    if item.category in _PASSAGE_CATEGORIES:
        text = text.strip().split("\n\n")[0]
    text = _INLINE_CODE.sub("코드", text)
    return _QUOTED.sub("인용", text)


def sentence_register(sentence: str) -> str | None:
    """``hapsyo``, ``haeyo`` or ``banmal`` from a sentence's final syllables; None when it ends in no verb."""
    sentence = _TRAILING.sub("", sentence)
    if not sentence or not ("가" <= sentence[-1] <= "힣"):
        return None
    if sentence.endswith(_HAPSYO_ENDINGS):
        return "hapsyo"
    if sentence.endswith(_HAEYO_ENDINGS):
        return "haeyo"
    if sentence[-1] in _BANMAL_FINALS:
        return "banmal"
    return None


def question_register(item: BankItem) -> str:
    """The register the user speaks in, from the last sentence of their own words that ends in a verb.

    Falls back to the answer's register (해요체 for a 해라체 answer: users ask for written text politely)."""
    for sentence in reversed(_SENTENCE_END.split(user_words(item))):
        level = sentence_register(sentence)
        if level is not None:
            return level
    return item.level if item.level in QUESTION_REGISTERS else "haeyo"


def tells_about_self(item: BankItem) -> bool:
    """True if the question says something about the user's own life (job, family, home, a past event)."""
    return bool(_SELF.search(user_words(item)))


def is_distressed(item: BankItem) -> bool:
    """True if the question carries grief, fear, illness, conflict or money trouble."""
    return item.category == "counselling" or bool(_DISTRESS.search(user_words(item)))


def with_lead_in(lead: str, text: str) -> str:
    """``lead`` before ``text``: on its own line before a multi-line question, except a lead-in that opens
    the sentence (``있잖아,``), which stays on the question's first line."""
    if not lead:
        return text
    if lead.endswith(",") or "\n" not in text:
        return f"{lead} {text}"
    return f"{lead}\n{text}"


def system_prompts(item: BankItem, templates: dict) -> list[str]:
    """Personas for the item's category, asking for the answer's register."""
    return templates["system"][item.category][item.level]


def _opening(item: BankItem, rng: random.Random, templates: dict) -> list[dict]:
    messages = []
    if rng.random() < SYSTEM_PROMPT_SHARE:
        messages.append({"role": "system", "content": rng.choice(system_prompts(item, templates))})
    lead = rng.choice(templates["lead_in"][question_register(item)])
    messages.append({"role": "user", "content": with_lead_in(lead, item.question)})
    return messages


def prompt_messages(item: BankItem, rng: random.Random) -> list[dict]:
    """System prompt (usually) and the user's question, the lead-in in the user's own register."""
    return _opening(item, rng, load_templates())


def can_pair(a: BankItem, b: BankItem) -> bool:
    """Whether one user can ask ``a`` and then ``b`` in one conversation without contradicting themselves."""
    return (a.id != b.id and a.category == b.category and a.category not in UNPAIRED_CATEGORIES
            and a.level == b.level and question_register(a) == question_register(b)
            and not (tells_about_self(a) and tells_about_self(b)))


def bridge_options(first: BankItem, second: BankItem, templates: dict) -> list[str]:
    """How the user moves on from ``first`` to ``second``: gentle after a hard situation, plain otherwise."""
    key = "next_topic_gentle" if is_distressed(first) else "next_topic"
    return templates[key][question_register(second)]


class AnswerUses:
    """Hands out the answers of one source's slot (:data:`ANSWER_SLOTS`), the least used first."""

    def __init__(self, source: str) -> None:
        self.slot = ANSWER_SLOTS.get(source, (0, None))
        self.uses: Counter[tuple[str, str, int]] = Counter()

    def choices(self, item: BankItem, followup: bool = False) -> range:
        texts = item.followup_answers if followup else item.answers
        lo, hi = self.slot
        slot = range(lo, min(len(texts), hi if hi is not None else len(texts)))
        return slot or range(1)  # a bank without variants: the original

    def left(self, item: BankItem) -> int:
        """How many more rows the item's answers can serve before one is used MAX_ANSWER_USES times."""
        return sum(max(0, MAX_ANSWER_USES - self.uses[item.id, "a", i]) for i in self.choices(item))

    def take(self, item: BankItem, followup: bool = False) -> int:
        kind = "f" if followup else "a"
        index = min(self.choices(item, followup), key=lambda i: (self.uses[item.id, kind, i], i))
        self.uses[item.id, kind, index] += 1
        return index


def render_dialogue(spec: dict[str, Any], items: dict[str, BankItem]) -> dict:
    """A clean dialogue: ``single`` (one exchange), ``followup`` (+ the item's follow-up) or ``pair``
    (two items one user can ask together, see :func:`can_pair`)."""
    templates = load_templates()
    rng = row_rng(spec["seed"], spec["id"])
    first = items[spec["items"][0]]
    answers = spec.get("answers", [0, 0])
    messages = _opening(first, rng, templates)
    messages.append({"role": "assistant", "content": first.answers[answers[0]]})
    kind = spec["kind"]
    if kind == "followup":
        messages += [{"role": "user", "content": first.followup_question},
                     {"role": "assistant", "content": first.followup_answers[spec.get("followup_answer", 0)]}]
    elif kind == "pair":
        second = items[spec["items"][1]]
        if not can_pair(first, second):
            raise ValueError(f"{first.id} and {second.id} cannot share a conversation")
        bridge = rng.choice(bridge_options(first, second, templates))
        messages += [{"role": "user", "content": with_lead_in(bridge, second.question)},
                     {"role": "assistant", "content": second.answers[answers[1]]}]
    elif kind != "single":
        raise ValueError(f"unknown dialogue kind {kind!r}")
    return finish_row(spec, first, messages, tags=[kind])


def finish_row(spec: dict, item: BankItem, messages: list[dict], tags: list[str]) -> dict:
    row = {"messages": messages, "category": item.category, "speech_level": item.level,
           "source": spec["source"], "id": spec["id"], "tags": tags}
    if item.dialect:
        row["dialect"] = item.dialect
    return row


def quotas(n: int, categories: list[str], capacity: dict[str, int] | None = None) -> dict[str, int]:
    """Split ``n`` rows evenly over categories (the first ones take the remainder). A category with a
    ``capacity`` below its share gets its capacity, and the rest is split evenly over the others."""
    capacity = capacity or {}
    result: dict[str, int] = {}
    open_ = sorted(categories)
    remaining = n
    while open_:
        base, extra = divmod(remaining, len(open_))
        share = {c: base + (1 if i < extra else 0) for i, c in enumerate(open_)}
        capped = [c for c in open_ if capacity.get(c, share[c]) < share[c]]
        if not capped:
            result.update(share)
            break
        for c in capped:
            result[c] = capacity[c]
            remaining -= capacity[c]
            open_.remove(c)
    return {c: result.get(c, 0) for c in sorted(categories)}


def pair_candidates(items: tuple[BankItem, ...], rng: random.Random):
    """Unordered pairs one user can ask together (:func:`can_pair`), nearest offsets first within groups of
    the same answer and question register, never the same pair twice."""
    groups: dict[tuple[str, str], list[BankItem]] = {}
    for item in items:
        if item.category not in UNPAIRED_CATEGORIES:
            groups.setdefault((item.level, question_register(item)), []).append(item)
    for key in sorted(groups):
        rng.shuffle(groups[key])
    ordered = [groups[key] for key in sorted(groups)]
    seen: set[frozenset[str]] = set()
    longest = max((len(g) for g in ordered), default=0)
    for offset in range(1, longest):
        batch = []
        for group in ordered:
            for i in range(len(group)):
                j = (i + offset) % len(group)
                key = frozenset((group[i].id, group[j].id))
                if i != j and key not in seen and can_pair(group[i], group[j]):
                    seen.add(key)
                    batch.append((group[i], group[j]))
        rng.shuffle(batch)
        yield from batch


def category_capacity(items: tuple[BankItem, ...], use_every_item_twice: bool) -> int:
    """How many distinct dialogues a category's items give: each item once (twice with
    ``use_every_item_twice``) plus every pair one user can ask together."""
    singles = len(items) * (2 if use_every_item_twice else 1)
    pairs = sum(1 for i, a in enumerate(items) for b in items[i + 1:] if can_pair(a, b))
    return singles + pairs


def _plan_category(items: list[BankItem], quota: int, uses: AnswerUses, rng: random.Random, followup_share: float,
                   use_every_item_twice: bool, within_uses: bool = False) -> list[tuple[str, list[str], dict]]:
    """``(kind, item ids, chosen answers)`` for up to ``quota`` rows of one category (``items`` shuffled).
    ``within_uses``: stop before any answer would serve more than MAX_ANSWER_USES rows."""
    chosen: list[tuple[str, list[str]]] = []
    for item in items:
        if len(chosen) >= quota:
            break
        if use_every_item_twice:
            chosen += [("single", [item.id]), ("followup", [item.id])]
        else:
            chosen.append(("followup" if rng.random() < followup_share else "single", [item.id]))
    by_id = {item.id: item for item in items}
    picks = []
    for kind, ids in chosen[:quota]:
        item = by_id[ids[0]]
        picks.append((kind, ids, {"answers": [uses.take(item)],
                                  **({"followup_answer": uses.take(item, True)} if kind == "followup" else {})}))
    pairs = list(pair_candidates(tuple(items), rng)) if len(picks) < quota else []
    left = {item.id: uses.left(item) for item in items}

    def degrees() -> Counter[str]:  # pairs each item can still join without going past the cap
        count: Counter[str] = Counter()
        for a, b in pairs:
            if left[a.id] > 0 and left[b.id] > 0:
                count[a.id] += 1
                count[b.id] += 1
        return count

    while len(picks) < quota and pairs:
        degree = degrees()
        room = [k for k, (a, b) in enumerate(pairs) if left[a.id] > 0 and left[b.id] > 0]
        if room:  # items with the fewest partners left go first, so that more of them find one
            k = min(room, key=lambda k: (degree[pairs[k][0].id] + degree[pairs[k][1].id], k))
        elif within_uses:
            break
        else:  # past the cap: the pair whose answers are least used
            k = max(range(len(pairs)), key=lambda k: (min(left[pairs[k][0].id], left[pairs[k][1].id]), -k))
        a, b = pairs.pop(k)
        picks.append(("pair", [a.id, b.id], {"answers": [uses.take(a), uses.take(b)]}))
        left[a.id] -= 1
        left[b.id] -= 1
    return picks


def plan_dialogues(n: int, seed: int, source: str, id_prefix: str = "", followup_share: float = 0.3,
                   use_every_item_twice: bool = False, bank: dict[str, tuple[BankItem, ...]] | None = None) -> list[dict]:
    """Specs for ``n`` unique dialogues spread evenly over the categories.

    Each item appears once as a single exchange or with its follow-up (never both, so no two rows are near
    copies); the rest of each category's quota is pairs of items. With ``use_every_item_twice`` every item
    appears both alone and with its follow-up before pairs are used (for sets where near copies are fine).
    A category that cannot fill an even share (counselling, never paired) gives what it has and the other
    categories share the rest. ``bank`` defaults to the whole content bank.

    Each row takes its answers from the source's own answers of each item (:class:`AnswerUses`). While the
    bank has room, a category gives only as many rows as its answers serve within MAX_ANSWER_USES each
    (law pairs little: most of its questions are about the user's own case), and the others give more.
    """
    bank = load_bank() if bank is None else bank
    capacity = {c: category_capacity(items, use_every_item_twice) for c, items in bank.items()}
    if n > sum(capacity.values()):
        raise ValueError(f"the bank cannot give {n} distinct dialogues (at most {sum(capacity.values())})")

    def plan(category: str, quota: int, within_uses: bool) -> list[tuple[str, list[str], dict]]:
        rng = random.Random(f"{seed}:plan:{category}")
        items = list(bank[category])
        rng.shuffle(items)
        return _plan_category(items, quota, AnswerUses(source), rng, followup_share, use_every_item_twice,
                              within_uses)

    within = {c: len(plan(c, capacity[c], within_uses=True)) for c in bank}
    quota_of = quotas(min(n, sum(within.values())), list(bank), within)
    if n > sum(within.values()):  # past the bank's room: the rest reuses answers, spread evenly
        extra = quotas(n - sum(within.values()), list(bank), {c: capacity[c] - within[c] for c in bank})
        quota_of = {c: quota_of[c] + extra[c] for c in bank}
    specs: list[dict] = []
    for category, quota in quota_of.items():
        picks = plan(category, quota, within_uses=False)
        if len(picks) < quota:
            raise ValueError(f"the bank cannot give {quota} distinct '{category}' dialogues")
        for kind, ids, chosen_answers in picks:
            suffix = {"single": "", "followup": "~f", "pair": ""}[kind]
            specs.append({"id": f"{id_prefix}{'+'.join(ids)}{suffix}", "kind": kind, "items": ids,
                          "seed": seed, "source": source, "category": category, **chosen_answers})
    return specs
