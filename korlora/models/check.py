"""Pre-flight check of a chat template before assistant-only LoRA training.

Assistant-only loss trains exactly the tokens inside ``{% generation %}``. A template can look right and still
train the wrong tokens (TRL issues #3781, #3728): a role header or a newline as the first supervised token, an
end-of-turn token outside the mask (the model never learns to stop), a pad token equal to the end-of-turn token,
or a base tokenizer whose eos is not the token its chat turns end with (generation runs past the turn).
``check_chat_template`` renders a few Korean conversations, compares the mask with the answers character by
character, and refuses a template it cannot vouch for. The four families korlora knows ship as templates in
``korlora/models/templates/``; in each, the generation block holds exactly the answer and the end-of-turn token.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from korlora.errors import KorloraError

TEMPLATE_DIR = Path(__file__).parent / "templates"
# family -> (a marker only that family's template contains, its end-of-turn token)
FAMILY_MARKERS: dict[str, tuple[str, str]] = {
    "chatml": ("<|im_start|>", "<|im_end|>"),
    "gemma": ("<start_of_turn>", "<end_of_turn>"),
    "llama3": ("<|start_header_id|>", "<|eot_id|>"),
    "exaone": ("[|assistant|]", "[|endofturn|]"),
}
FAMILIES = tuple(FAMILY_MARKERS)
# Pad tokens the released tokenizers of each family carry, tried first when pad would equal end-of-turn.
PAD_CANDIDATES: dict[str, tuple[str, ...]] = {
    "chatml": ("<|endoftext|>",),
    "gemma": ("<pad>",),
    "llama3": ("<|finetune_right_pad_id|>", "<|reserved_special_token_0|>"),
    "exaone": ("[PAD]",),
}
_DEFAULT_SYSTEM_LINE = '{%- set default_system = "당신은 친절하고 정확한 한국어 어시스턴트입니다." %}'

# Representative conversations: system + user + assistant, two assistant turns, Korean with digits and quotes.
CONVERSATIONS: list[list[dict[str, str]]] = [
    [{"role": "system", "content": "당신은 친절한 한국어 요리 상담원입니다."},
     {"role": "user", "content": "김치찌개는 어떻게 끓이나요?"},
     {"role": "assistant", "content": "먼저 돼지고기와 김치를 볶은 뒤 물을 붓고 20분쯤 끓이세요."}],
    [{"role": "user", "content": "서울의 인구는 얼마나 되나요?"},
     {"role": "assistant", "content": "약 940만 명입니다."},
     {"role": "user", "content": "부산은요?"},
     {"role": "assistant", "content": "부산은 약 330만 명이에요. (2024년 기준)"}],
    [{"role": "user", "content": "Say hello in Korean."},
     {"role": "assistant", "content": "\"안녕하세요\"라고 하면 됩니다."}],
]


def family_template(family: str, system: str | None = None) -> str:
    """The chat template of ``family`` with generation markers; ``system`` replaces ChatML's default system
    prompt (tiny-ko's Korean one)."""
    if family not in FAMILY_MARKERS:
        raise KorloraError(f"unknown chat template family {family!r}; known: {', '.join(FAMILIES)}")
    text = (TEMPLATE_DIR / f"{family}.jinja").read_text(encoding="utf-8")
    if system is not None:
        if family != "chatml":
            raise KorloraError(f"only the chatml template has a default system prompt, not {family!r}")
        line = "{%- set default_system = " + json.dumps(system, ensure_ascii=False) + " %}"
        text = text.replace(_DEFAULT_SYSTEM_LINE, line)
    return text


def _template_text(tokenizer) -> str | None:
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):
        template = template.get("default")
    return template or None


def _single_token_id(tokenizer, token: str) -> int | None:
    ids = tokenizer.encode(token, add_special_tokens=False)
    return ids[0] if len(ids) == 1 else None


def detect_family(tokenizer) -> str | None:
    """The template family whose marker and end-of-turn token the chat template uses, or None."""
    template = _template_text(tokenizer)
    if not template:
        return None
    found = [f for f, (marker, eot) in FAMILY_MARKERS.items() if marker in template and eot in template]
    return found[0] if len(found) == 1 else None


@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str
    fix: str = ""


@dataclass
class TemplateCheck:
    """What the pre-flight check found; ``stop_ids`` are the ids to pass as ``eos_token_id`` to ``generate``."""

    family: str | None = None
    eot_token: str | None = None
    eot_id: int | None = None
    eos_ids: list[int] = field(default_factory=list)
    pad_token: str | None = None
    pad_id: int | None = None
    suggested_pad_token: str | None = None
    stop_ids: list[int] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[CheckResult]:
        return [c for c in self.checks if not c.ok]

    def message(self) -> str:
        """One paragraph per failed check: what is wrong and what to do."""
        return "; ".join(f"check '{c.name}' failed: {c.detail}" + (f" — {c.fix}" if c.fix else "")
                         for c in self.failures)

    def as_dict(self) -> dict:
        out = asdict(self)
        out["ok"] = self.ok
        return out

    def table(self) -> str:
        width = max(len(c.name) for c in self.checks) if self.checks else 5
        lines = [f"family: {self.family or '?'}   end of turn: {self.eot_token!r} ({self.eot_id})   "
                 f"pad: {self.pad_token!r} ({self.pad_id})"]
        lines += [f"  {'ok ' if c.ok else 'FAIL'} {c.name.ljust(width)}  {c.detail}" for c in self.checks]
        lines.append(f"stop ids: {self.stop_ids}")
        return "\n".join(lines)


def _eos_ids(tokenizer, generation_config) -> list[int]:
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    gen = getattr(generation_config, "eos_token_id", None) if generation_config is not None else None
    ids += [gen] if isinstance(gen, int) else list(gen or [])
    return list(dict.fromkeys(ids))


def _pad_candidate(tokenizer, family: str, eot_id: int, template: str) -> str | None:
    """A different special token that can pad: the family's usual pad, then eos, then an unused special."""
    vocab = tokenizer.get_vocab()
    names = list(PAD_CANDIDATES.get(family, ()))
    if tokenizer.eos_token:
        names.append(tokenizer.eos_token)
    names += [t for t in tokenizer.all_special_tokens if t not in template and t != tokenizer.bos_token]
    for name in names:
        if name in vocab and vocab[name] != eot_id:
            return name
    return None


def _runs(mask: list[int]) -> list[tuple[int, int]]:
    """(first, last) index of each stretch of ones."""
    runs, start = [], None
    for i, bit in enumerate([*mask, 0]):
        if bit and start is None:
            start = i
        elif not bit and start is not None:
            runs.append((start, i - 1))
            start = None
    return runs


def _check_masks(tokenizer, family: str, eot_token: str, eot_id: int) -> list[CheckResult]:
    """Render CONVERSATIONS and compare each assistant mask with the answer it should cover."""
    special = set(tokenizer.all_special_ids)
    first_bad, eot_bad, cover_bad, count_bad = [], [], [], []
    for conversation in CONVERSATIONS:
        try:
            text = tokenizer.apply_chat_template(conversation, tokenize=False)
            out = tokenizer.apply_chat_template(conversation, tokenize=True, return_dict=True,
                                                return_assistant_tokens_mask=True)
            offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        except Exception as e:  # noqa: BLE001 - templates raise whatever their authors chose
            return [CheckResult("render", False, f"rendering a conversation failed: {type(e).__name__}: {e}",
                                "the template must render system/user/assistant turns with a fast tokenizer")]
        ids, mask = list(out["input_ids"]), list(out["assistant_masks"])
        answers = [m["content"].strip() for m in conversation if m["role"] == "assistant"]
        runs = _runs(mask)
        if len(runs) != len(answers):
            count_bad.append(f"{len(answers)} assistant turns but {len(runs)} supervised spans")
            continue
        cursor = 0
        for (first, last), answer in zip(runs, answers, strict=True):
            start = text.find(answer, cursor)
            cursor = start + len(answer) if start >= 0 else cursor
            piece = text[offsets[first][0]:offsets[first][1]]
            if ids[first] in special or offsets[first][0] != start or not piece or piece[0].isspace():
                first_bad.append(f"first supervised token is {piece!r}, not the start of {answer[:12]!r}")
            if ids[last] != eot_id:
                eot_bad.append(f"last supervised token is {text[offsets[last][0]:offsets[last][1]]!r}")
            labelled = text[offsets[first][0]:offsets[last][1]]
            if labelled != answer + eot_token:
                cover_bad.append(f"supervised text is {labelled!r}, expected {answer + eot_token!r}")
    results = []
    if count_bad:
        results.append(CheckResult("assistant spans", False, count_bad[0],
                                   "wrap each assistant answer (and only it) in {% generation %}"))
    results += [
        CheckResult("first token is content", not first_bad,
                    first_bad[0] if first_bad else "every answer's first supervised token is answer text",
                    "keep the role header and the newline after it outside {% generation %}"),
        CheckResult("end of turn in mask", not eot_bad,
                    eot_bad[0] if eot_bad else f"{eot_token} closes every supervised span",
                    f"put {eot_token} inside {{% generation %}}, right after the answer"),
        CheckResult("mask coverage", not cover_bad,
                    cover_bad[0] if cover_bad else f"exactly each answer + {eot_token} is supervised",
                    f"the generation block must hold the answer followed by {eot_token}, nothing else"),
    ]
    return results


def inspect_chat_template(tokenizer, generation_config=None) -> TemplateCheck:
    """Run every check and return the findings; never raises for a failed check."""
    result = TemplateCheck(pad_token=tokenizer.pad_token, pad_id=tokenizer.pad_token_id)
    template = _template_text(tokenizer)
    result.family = detect_family(tokenizer)
    if result.family is None:
        detail = ("the tokenizer has no chat template" if not template else
                  f"the chat template is none of {', '.join(FAMILIES)} (or more than one)")
        result.checks.append(CheckResult("family", False, detail,
                                         "give the tokenizer one of korlora/models/templates/*.jinja "
                                         "(korlora.models.check.family_template(family))"))
        return result
    marker, eot_token = FAMILY_MARKERS[result.family]
    result.eot_token, result.eot_id = eot_token, _single_token_id(tokenizer, eot_token)
    if result.eot_id is None:
        result.checks.append(CheckResult("family", False, f"{result.family} template, but {eot_token} is not one "
                                         "token of this tokenizer", f"add {eot_token} as a special token"))
        return result
    result.checks.append(CheckResult("family", True, f"{result.family} ({marker} … {eot_token})"))

    from trl.chat_template_utils import has_generation_markers

    if not has_generation_markers(re.sub(r"\{#.*?#\}", "", template, flags=re.DOTALL)):  # not in comments
        result.checks.append(CheckResult("generation markers", False, "the chat template has no {% generation %} "
                                         "markers, so assistant-only loss has no mask",
                                         f"use korlora/models/templates/{result.family}.jinja"))
    else:
        result.checks += _check_masks(tokenizer, result.family, eot_token, result.eot_id)

    result.eos_ids = _eos_ids(tokenizer, generation_config)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad_id == result.eot_id:
        result.suggested_pad_token = _pad_candidate(tokenizer, result.family, result.eot_id, template)
        how = (f"set tokenizer.pad_token = {result.suggested_pad_token!r}" if result.suggested_pad_token
               else "add a pad token (tokenizer.add_special_tokens({'pad_token': '<pad>'})) and resize embeddings")
        which = "pad token" if tokenizer.pad_token_id is not None else "pad token (unset, so eos)"
        result.checks.append(CheckResult(
            "pad is not end of turn", False,
            f"the {which} is the end-of-turn token {eot_token}: collators that mask labels by pad id drop every "
            f"{eot_token} label, so the model never learns to stop", how))
    else:
        result.checks.append(CheckResult("pad is not end of turn", True,
                                         f"pad {tokenizer.pad_token or tokenizer.eos_token!r} ≠ {eot_token}"))

    result.stop_ids = list(dict.fromkeys([result.eot_id, *result.eos_ids]))
    stops_by_default = result.eot_id in result.eos_ids
    result.checks.append(CheckResult(
        "stop ids include end of turn", True,
        f"eos already stops at {eot_token}" if stops_by_default else
        f"eos {tokenizer.eos_token!r} is not {eot_token}: generate() needs eos_token_id={result.stop_ids}"))
    return result


def check_chat_template(tokenizer, generation_config=None) -> TemplateCheck:
    """Check that assistant-only loss will train exactly the answers and the end-of-turn token, and return the
    stop ids for generation. Raises ``KorloraError`` naming the failed check and its fix."""
    result = inspect_chat_template(tokenizer, generation_config)
    if not result.ok:
        raise KorloraError(f"the chat template cannot be used for assistant-only training: {result.message()}")
    return result


def check_command(cfg) -> int:
    """``korlora model check M``: print the checks and the stop ids; exit 2 when a check fails."""
    from transformers import AutoTokenizer, GenerationConfig

    from korlora.models.resolve import resolve_model_path

    path = resolve_model_path(cfg.model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError) as e:
        raise KorloraError(f"cannot load a tokenizer from {cfg.model!r}: {e}") from None
    try:
        generation_config = GenerationConfig.from_pretrained(path)
    except (OSError, ValueError):
        generation_config = None
    result = inspect_chat_template(tokenizer, generation_config)
    print(json.dumps(result.as_dict(), ensure_ascii=False, indent=2) if cfg.json else f"{cfg.model}\n{result.table()}")
    if not result.ok:
        raise KorloraError(result.message())
    return 0
