"""SFT pieces shared by the Ray Train worker: data split, assistant-mask check, start-weighted loss."""

from __future__ import annotations

import hashlib

from korlora.errors import KorloraError
from korlora.io import read_jsonl, valid_rows


def split_rows(rows: list[dict], eval_share: float) -> tuple[list[dict], list[dict]]:
    """Hold out rows by a hash of their id (or text): the split never depends on order or workers."""
    train, held_out = [], []
    for i, row in enumerate(rows):
        key = str(row.get("id", i)) + row["messages"][-1]["content"][:64]
        (held_out if in_held_out(key, eval_share) else train).append({"messages": row["messages"]})
    if not train:
        raise KorloraError("no training rows left after the eval split")
    return train, held_out


def in_held_out(key: str, eval_share: float) -> bool:
    """Whether the row with this key is held out: a hash bucket, the same on every worker and in any order."""
    return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16) / 0xFFFFFFFF < eval_share


def load_chat_rows(path: str) -> list[dict]:
    return valid_rows(read_jsonl(path), path, "rows", "run 'korlora data clean' first")


def assistant_mask_coverage(tokenizer, rows: list[dict], sample: int = 64) -> dict[str, float]:
    """Share of assistant-content tokens that carry labels, and of other tokens that do not (the labelled
    end-of-turn tokens right after an answer, and an answer's leading or trailing blanks, are neither).

    Assistant-only loss silently breaks when a template's masks come out empty or shifted, so we render a
    sample, find each assistant message's text in the decoded sequence, and compare with the mask.
    """
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    template = tokenizer.chat_template
    if not template:
        raise KorloraError("the tokenizer has no chat template")
    if not has_generation_markers(template):
        try:
            template = get_training_chat_template(tokenizer)
        except Exception as e:  # noqa: BLE001 - TRL raises plain errors for unknown templates
            raise KorloraError("the chat template has no {% generation %} markers and TRL cannot patch it, so "
                               f"assistant-only loss would have no mask ({e})") from None
    labeled_in = total_in = unlabeled_out = total_out = 0
    for row in rows[:sample]:
        text = tokenizer.apply_chat_template(row["messages"], tokenize=False, chat_template=template)
        out = tokenizer.apply_chat_template(row["messages"], tokenize=True, return_dict=True,
                                            return_assistant_tokens_mask=True, chat_template=template)
        encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        if encoded["input_ids"] != list(out["input_ids"]):
            raise KorloraError("the chat template tokenises differently from its rendered text; cannot check masks")
        spans, offset = [], 0
        for message in row["messages"]:  # in order: a user turn may quote an answer (a rewrite request)
            content = message["content"].strip()  # templates may trim it (Gemma's, Llama 3's)
            start = text.find(content, offset)
            if start >= 0:
                if message["role"] == "assistant":
                    spans.append((start, start + len(content)))
                offset = start + len(content)
        answer_run = False  # inside an answer or the labelled end-of-turn tokens right after it
        for (a, b), bit in zip(encoded["offset_mapping"], out["assistant_masks"], strict=False):
            if any(a < end and b > start for start, end in spans):
                total_in += 1
                labeled_in += bool(bit)
                answer_run = bool(bit)
            elif bit and (answer_run or not text[a:b].strip()):
                continue  # the end of turn (labelled so that the model learns to stop) or the answer's own blanks
            else:
                answer_run = False
                total_out += 1
                unlabeled_out += not bit
    coverage = {"assistant_labeled_share": labeled_in / max(total_in, 1),
                "other_unlabeled_share": unlabeled_out / max(total_out, 1)}
    if labeled_in == 0:
        raise KorloraError("the chat template gives no assistant mask: no assistant token would be trained")
    return coverage


def start_weighted_loss(logits, labels, start_weight: float, start_tokens: int, num_items: int | None = None):
    """Causal-LM cross-entropy where the first ``start_tokens`` tokens of every answer weigh ``start_weight``.

    Fine-tuning mostly moves the first few answer tokens (Qi et al. 2024, "Safety alignment should be more
    than a few tokens deep"); weighting them more makes a relearn fix the start first. Every template that
    korlora trains with passes the pre-flight check (:mod:`korlora.models.check`): an answer's labelled span
    starts with its first content token, whatever the family, so the weighted tokens are the answer's own.
    Normalised like TRL's loss: by ``num_items`` (labelled tokens of the whole step, every rank) or, without
    it, by this batch's labelled tokens.
    """
    import torch
    import torch.nn.functional as F

    logits = logits[:, :-1, :].float()
    labels = labels[:, 1:]
    mask = labels != -100
    ce = F.cross_entropy(logits.reshape(-1, logits.size(-1)), labels.reshape(-1).clamp(min=0),
                         reduction="none").view_as(labels)
    starts = mask & ~F.pad(mask, (1, 0), value=False)[:, :-1]
    positions = torch.arange(mask.size(1), device=mask.device)
    run_start = torch.cummax(torch.where(starts, positions, 0), dim=1).values
    weights = torch.where(mask & (positions - run_start < start_tokens), start_weight, 1.0) * mask
    denominator = num_items if num_items is not None else mask.sum()
    return (ce * weights).sum() / torch.as_tensor(denominator, device=ce.device).clamp(min=1)


def start_weighted_loss_func(start_weight: float, start_tokens: int):
    """A ``compute_loss_func`` for ``SFTTrainer``: the start-weighted loss while training, the plain loss in
    evaluation (``eval_loss`` stays comparable between plain and weighted runs). TRL multiplies what this
    returns by the number of processes, as for its own loss, since ``num_items_in_batch`` counts every
    rank's tokens and DDP averages gradients."""
    import torch

    def loss(outputs, labels, num_items_in_batch=None):
        weight = start_weight if torch.is_grad_enabled() else 1.0
        return start_weighted_loss(outputs.logits, labels, weight, start_tokens, num_items_in_batch)

    return loss
