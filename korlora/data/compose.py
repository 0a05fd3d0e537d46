"""Turning bank items into chat rows.

A *spec* says what a row is made of (``kind`` and bank item ids); :func:`render` turns it into a row. All
the random choices of a row (system prompt, lead-in, …) come from a generator seeded by ``(seed, id)``,
so a row is the same whichever worker renders it and in whichever block.
"""

from __future__ import annotations

import random
from typing import Any

from korlora.data.bank import BankItem, load_bank, load_templates

SYSTEM_PROMPT_SHARE = 0.85


def row_rng(seed: int, row_id: str) -> random.Random:
    return random.Random(f"{seed}:{row_id}")  # str seeds hash with SHA-512: stable across processes


def items_by_id() -> dict[str, BankItem]:
    return {item.id: item for items in load_bank().values() for item in items}


def with_lead_in(lead: str, text: str) -> str:
    if not lead:
        return text
    return f"{lead}\n{text}" if "\n" in text else f"{lead} {text}"


def _opening(item: BankItem, rng: random.Random, templates: dict) -> list[dict]:
    messages = []
    if rng.random() < SYSTEM_PROMPT_SHARE:
        messages.append({"role": "system", "content": rng.choice(templates["system"][item.level])})
    lead = rng.choice(templates["lead_in"][item.level])
    messages.append({"role": "user", "content": with_lead_in(lead, item.question)})
    return messages


def prompt_messages(item: BankItem, rng: random.Random) -> list[dict]:
    """System prompt (usually) and the user's question, in the item's register."""
    return _opening(item, rng, load_templates())


def render_dialogue(spec: dict[str, Any], items: dict[str, BankItem]) -> dict:
    """A clean dialogue: ``single`` (one exchange), ``followup`` (+ the item's follow-up) or ``pair``
    (two items of the same category and register in one conversation)."""
    templates = load_templates()
    rng = row_rng(spec["seed"], spec["id"])
    first = items[spec["items"][0]]
    messages = _opening(first, rng, templates)
    messages.append({"role": "assistant", "content": first.answer})
    kind = spec["kind"]
    if kind == "followup":
        messages += [{"role": "user", "content": first.followup_question},
                     {"role": "assistant", "content": first.followup_answer}]
    elif kind == "pair":
        second = items[spec["items"][1]]
        bridge = rng.choice(templates["next_topic"][first.level])
        messages += [{"role": "user", "content": with_lead_in(bridge, second.question)},
                     {"role": "assistant", "content": second.answer}]
    elif kind != "single":
        raise ValueError(f"unknown dialogue kind {kind!r}")
    return finish_row(spec, first, messages, tags=[kind])


def finish_row(spec: dict, item: BankItem, messages: list[dict], tags: list[str]) -> dict:
    row = {"messages": messages, "category": item.category, "speech_level": item.level,
           "source": spec["source"], "id": spec["id"], "tags": tags}
    if item.dialect:
        row["dialect"] = item.dialect
    return row


def quotas(n: int, categories: list[str]) -> dict[str, int]:
    """Split ``n`` rows evenly over categories (the first ones take the remainder)."""
    base, extra = divmod(n, len(categories))
    return {c: base + (1 if i < extra else 0) for i, c in enumerate(sorted(categories))}


def pair_candidates(items: tuple[BankItem, ...], rng: random.Random):
    """Unordered pairs of same-register items, nearest offsets first, never the same pair twice."""
    groups: dict[str, list[BankItem]] = {}
    for item in items:
        groups.setdefault(item.level, []).append(item)
    for group in groups.values():
        rng.shuffle(group)
    seen: set[frozenset[str]] = set()
    longest = max((len(g) for g in groups.values()), default=0)
    for offset in range(1, longest):
        batch = []
        for group in groups.values():
            for i in range(len(group)):
                j = (i + offset) % len(group)
                key = frozenset((group[i].id, group[j].id))
                if i != j and key not in seen:
                    seen.add(key)
                    batch.append((group[i], group[j]))
        rng.shuffle(batch)
        yield from batch


def plan_dialogues(n: int, seed: int, source: str, id_prefix: str = "", followup_share: float = 0.3,
                   use_every_item_twice: bool = False) -> list[dict]:
    """Specs for ``n`` unique dialogues spread evenly over the categories.

    Each item appears once as a single exchange or with its follow-up (never both, so no two rows are near
    copies); the rest of each category's quota is pairs of items. With ``use_every_item_twice`` every item
    appears both alone and with its follow-up before pairs are used (for sets where near copies are fine).
    """
    bank = load_bank()
    specs: list[dict] = []
    for category, quota in quotas(n, list(bank)).items():
        rng = random.Random(f"{seed}:plan:{category}")
        items = list(bank[category])
        rng.shuffle(items)
        chosen: list[tuple[str, list[str]]] = []
        for item in items:
            if len(chosen) >= quota:
                break
            if use_every_item_twice:
                chosen += [("single", [item.id]), ("followup", [item.id])]
            else:
                chosen.append(("followup" if rng.random() < followup_share else "single", [item.id]))
        chosen = chosen[:quota]
        pairs = pair_candidates(tuple(items), rng)
        while len(chosen) < quota:
            try:
                a, b = next(pairs)
            except StopIteration:
                raise ValueError(f"the bank cannot give {quota} distinct '{category}' dialogues") from None
            chosen.append(("pair", [a.id, b.id]))
        for kind, ids in chosen:
            suffix = {"single": "", "followup": "~f", "pair": ""}[kind]
            specs.append({"id": f"{id_prefix}{'+'.join(ids)}{suffix}", "kind": kind, "items": ids,
                          "seed": seed, "source": source, "category": category})
    return specs
