"""korlora's held-out evaluation set, and the loss of a model on its clean reference answers.

The set lives in ``korlora/eval/prompts/<category>.yaml``: prompts written for evaluation only (not from the
content bank or the diagnosis prompts), each with the register its answer should use and a clean reference
answer. The reference loss tells what a fix costs: a relearned adapter should not be worse than the one it
replaced at plain, well-formed Korean answers.
"""

from __future__ import annotations

import math
from pathlib import Path

import yaml

from korlora.errors import KorloraError

PROMPTS_DIR = Path(__file__).parent / "prompts"
REGISTERS = ("hapsyo", "haeyo", "banmal", "haera")


def _check(item: dict, where: str) -> dict:
    messages = item.get("messages")
    if not isinstance(messages, list) or not messages:
        raise KorloraError(f"{where}: 'messages' must be a non-empty list")
    for i, m in enumerate(messages):
        want = "user" if i % 2 == 0 else "assistant"
        if not isinstance(m, dict) or m.get("role") != want or not str(m.get("content", "")).strip():
            raise KorloraError(f"{where}: message {i + 1} must be a non-empty {want} turn")
    if len(messages) % 2 == 0:
        raise KorloraError(f"{where}: the conversation must end with a user turn")
    if item.get("register") not in REGISTERS:
        raise KorloraError(f"{where}: register must be one of {', '.join(REGISTERS)}")
    if not str(item.get("reference", "")).strip():
        raise KorloraError(f"{where}: missing reference answer")
    return item


def load_eval_set(path: str | Path | None = None) -> list[dict]:
    """The evaluation prompts: ``{id, category, register, system?, messages, reference}`` each.

    ``path``: a YAML file or a directory of them (default: the shipped set)."""
    path = Path(path) if path else PROMPTS_DIR
    files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise KorloraError(f"no evaluation prompts at {path}")
    items, seen = [], set()
    for file in files:
        data = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        category = data.get("category")
        for raw in data.get("prompts", []):
            where = f"{file.name}: {raw.get('id', '?')}"
            item = _check({"category": category, **raw}, where)
            if item.get("id") in seen:
                raise KorloraError(f"{where}: duplicate id")
            seen.add(item.get("id"))
            items.append(item)
    if not items:
        raise KorloraError(f"no evaluation prompts in {path}")
    return items


def chat_messages(item: dict, answer: str | None = None) -> list[dict]:
    """The item as chat messages (system first when it has one), optionally with ``answer`` as the last turn."""
    messages = ([{"role": "system", "content": item["system"]}] if item.get("system") else []) + [
        {"role": m["role"], "content": m["content"]} for m in item["messages"]]
    return messages + ([{"role": "assistant", "content": answer}] if answer is not None else [])


def _last_answer_span(mask: list[int]) -> tuple[int, int]:
    """Start and end of the last run of ones in the assistant mask: the final answer and its end of turn."""
    end = len(mask)
    while end and not mask[end - 1]:
        end -= 1
    start = end
    while start and mask[start - 1]:
        start -= 1
    return start, end


def reference_loss(model, tokenizer, items: list[dict], logits_budget: int = 2**27) -> dict:
    """Mean cross-entropy (nats per token) of the reference answers, end-of-turn included, given their
    conversation — teacher-forced, assistant tokens of the last turn only (the chat template's generation
    markers tell which). Returns ``{"loss", "tokens", "answers"}``.

    Rows are left-padded so that the answers end together and only their positions are projected onto the
    vocabulary; a batch holds at most ``logits_budget`` logits (a 262k vocabulary fills memory fast)."""
    import torch

    from korlora.train.inference import forward_last

    sequences = []
    for item in items:
        out = tokenizer.apply_chat_template(chat_messages(item, item["reference"]), tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True)
        ids, mask = list(out["input_ids"]), list(out["assistant_masks"])
        start, end = _last_answer_span(mask)
        if start == 0 or start == end:
            raise KorloraError("the chat template marks no answer tokens after the prompt "
                               "(it needs a {% generation %} block around the assistant's answer)")
        sequences.append((ids[:end], end - start))
    sequences.sort(key=lambda s: len(s[0]))
    device = next(model.parameters()).device
    vocab = model.get_output_embeddings().weight.shape[0]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    total, count, b = 0.0, 0, 0
    model.eval()
    with torch.no_grad():
        while b < len(sequences):
            rows = 1
            while (b + rows < len(sequences)
                   and (rows + 1) * (max(n for _, n in sequences[b:b + rows + 1]) + 1) * vocab <= logits_budget):
                rows += 1
            batch, b = sequences[b:b + rows], b + rows
            width, keep = max(len(ids) for ids, _ in batch), max(n for _, n in batch) + 1
            input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
            attention = torch.zeros_like(input_ids)
            labels = torch.full_like(input_ids, -100)
            for i, (ids, n) in enumerate(batch):
                input_ids[i, width - len(ids):] = torch.tensor(ids)
                attention[i, width - len(ids):] = 1
                labels[i, width - n:] = input_ids[i, width - n:]
            positions = (attention.cumsum(-1) - 1).clamp_min(0)
            logits = forward_last(model, keep, input_ids=input_ids.to(device), attention_mask=attention.to(device),
                                  position_ids=positions.to(device)).logits[:, -keep:].float()
            targets = labels[:, -keep + 1:].to(device)
            total += torch.nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), targets, ignore_index=-100,
                                                       reduction="sum").item()
            count += int((targets != -100).sum())
    loss = total / max(count, 1)
    if not math.isfinite(loss):
        raise KorloraError("the reference loss is not finite")
    return {"loss": loss, "tokens": count, "answers": len(items)}
