"""``korlora data correction``: prompts that carry a collapsed model's broken starts, answered cleanly.

The seed's build_correction_sft.py. Three patterns, each with every broken start of the family
(punctuation or symbols, a role tag such as ``assistant:``, blank lines, a disclaimer first):

- ``prefix``: the user's message arrives with the junk in front of it;
- ``trailing_tag``: the user's message ends in a stray ``assistant:`` or blank lines;
- ``rewrite``: the user pastes a broken answer and asks for it to be fixed.

In every case the answer starts with a clean Hangul sentence. Alongside, DPO preference pairs in TRL's
conversational format: the clean prompt, ``chosen`` = the clean answer, ``rejected`` = the same answer
behind a broken start.
"""

from __future__ import annotations

import random

from korlora.data.bank import BankItem, load_bank, load_templates
from korlora.data.build import write_with_report
from korlora.data.compose import AnswerUses, finish_row, prompt_messages, quotas, row_rng
from korlora.data.config import CorrectionConfig
from korlora.data.parallel import render_specs
from korlora.io import write_jsonl

SOURCE = "korlora-correction"
PATTERNS = ("prefix", "trailing_tag", "rewrite")


def broken_starts() -> list[tuple[str, str]]:
    """Every broken start of the family as ``(kind, text)``; disclaimers are followed by a space."""
    templates = load_templates()
    starts = [(kind, text) for kind, texts in templates["noise_prefixes"].items() for text in texts]
    starts += [("disclaimer", f"{text} ") for text in templates["disclaimers"]]
    return starts


def break_start(answer: str, rng: random.Random, kinds: tuple[str, ...] | None = None) -> tuple[str, str]:
    """``answer`` behind a randomly chosen broken start; returns ``(broken_answer, kind)``."""
    options = [s for s in broken_starts() if kinds is None or s[0] in kinds]
    kind, text = rng.choice(options)
    return text + answer, kind


def _noises(pattern: str) -> list[int]:
    starts = broken_starts()
    if pattern == "trailing_tag":
        return [i for i, (kind, _) in enumerate(starts) if kind in ("role_tag", "blank")]
    return list(range(len(starts)))


def plan_corrections(n: int, seed: int) -> list[dict]:
    bank = load_bank()
    by_id = {item.id: item for items in bank.values() for item in items}
    uses = AnswerUses(SOURCE)
    specs = []
    for category, quota in quotas(n, list(bank)).items():
        rng = random.Random(f"{seed}:correction:{category}")
        combos = [(item.id, pattern, noise) for item in bank[category] for pattern in PATTERNS
                  for noise in _noises(pattern)]
        if quota > len(combos):
            raise ValueError(f"the bank cannot give {quota} distinct '{category}' correction rows")
        # spread over items first: round-robin over a shuffled item order, random combo per item
        rng.shuffle(combos)
        by_item: dict[str, list] = {}
        for combo in combos:
            by_item.setdefault(combo[0], []).append(combo)
        chosen, queues = [], list(by_item.values())
        while len(chosen) < quota:
            for queue in queues:
                if queue and len(chosen) < quota:
                    chosen.append(queue.pop())
        for item_id, pattern, noise in chosen:
            specs.append({"id": f"fix:{item_id}:{pattern}:{noise:02d}", "kind": "correction", "items": [item_id],
                          "pattern": pattern, "noise": noise, "seed": seed, "source": SOURCE,
                          "answer": uses.take(by_id[item_id])})
    return specs


def render_correction(spec: dict, items: dict[str, BankItem]) -> tuple[dict, dict]:
    templates = load_templates()
    rng = row_rng(spec["seed"], spec["id"])
    item = items[spec["items"][0]]
    answer = item.answers[spec.get("answer", 0)]
    kind, noise = broken_starts()[spec["noise"]]
    clean_prompt = prompt_messages(item, rng)
    messages = [dict(m) for m in clean_prompt]
    user = messages[-1]
    if spec["pattern"] == "prefix":
        user["content"] = noise + user["content"]
    elif spec["pattern"] == "trailing_tag":
        user["content"] = user["content"] + "\n\n" + noise.strip(" ")
    else:
        request = rng.choice(templates["rewrite_request"][item.level])
        user["content"] = request.format(broken=noise + answer)
    messages.append({"role": "assistant", "content": answer})
    row = finish_row(spec, item, messages, tags=["correction", spec["pattern"], kind])
    rejected, rejected_kind = break_start(answer, rng, kinds=("punct", "role_tag", "disclaimer"))
    pair = {"prompt": clean_prompt, "chosen": [{"role": "assistant", "content": answer}],
            "rejected": [{"role": "assistant", "content": rejected}], "id": spec["id"],
            "category": item.category, "source": SOURCE, "tags": [rejected_kind]}
    return row, pair


def correction_command(cfg: CorrectionConfig) -> int:
    rows, pairs = render_specs(plan_corrections(cfg.num_rows, cfg.seed), "korlora.data.correction:render_correction",
                               cfg.num_blocks)
    write_with_report(rows, cfg.output, cfg.report, "korlora data correction")
    write_jsonl(cfg.pairs_output, pairs)
    print(f"wrote {len(pairs)} DPO pairs to {cfg.pairs_output}")
    return 0
