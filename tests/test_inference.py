"""``korlora chat`` and ``korlora export`` on a LoRA adapter made in this process on tiny-ko (no Ray):
answers come out, batching does not change greedy answers, and the merged model equals the adapter."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from korlora.cli import main
from korlora.errors import KorloraError

PROMPTS = ["안녕하세요?", "오늘 저녁 메뉴로 뭐가 좋을까요? 따뜻한 국물 요리면 좋겠어요."]


@pytest.fixture(scope="module")
def adapter(tiny_ko, tmp_path_factory) -> Path:
    """A LoRA adapter on every linear layer of tiny-ko with large random B weights: it moves the logits
    far enough that greedy answers are more than tiny-ko's usual run of newlines."""
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from korlora.train.model import lora_config

    base = AutoModelForCausalLM.from_pretrained(tiny_ko)
    model = get_peft_model(base, lora_config(base, r=4, alpha=8, dropout=0.0, target_modules=None))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator))
    out = tmp_path_factory.mktemp("adapter")
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(tiny_ko).save_pretrained(out)
    return out


def test_chat_one_shot_prints_an_answer(adapter, capsys):
    assert main(["chat", "--adapter", str(adapter), "--prompt", "안녕하세요?", "--max_new_tokens", "5"]) == 0
    assert capsys.readouterr().out  # tiny-ko's greedy answer may be only newlines, so no stripping here


def test_chat_interactive_keeps_the_conversation(adapter, capsys, monkeypatch):
    import korlora.train.inference as inference

    seen = []
    real = inference.generate_answers

    def recording(model, tokenizer, prompts, **kwargs):
        seen.append([list(p) for p in prompts])
        return real(model, tokenizer, prompts, **kwargs)

    lines = iter(["안녕하세요?", "고마워요.", ""])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    monkeypatch.setattr(inference, "generate_answers", recording)
    assert main(["chat", "--adapter", str(adapter), "--max_new_tokens", "3"]) == 0
    assert [m["role"] for m in seen[1][0]] == ["user", "assistant", "user"]
    assert seen[1][0][2]["content"] == "고마워요."

    def eof(prompt=""):
        raise EOFError

    monkeypatch.setattr("builtins.input", eof)
    assert main(["chat", "--adapter", str(adapter)]) == 0
    assert "대화" in capsys.readouterr().out


def test_generate_answers_batched_equals_one_by_one(adapter):
    from korlora.train.inference import generate_answers, load_for_inference

    model, tokenizer = load_for_inference(str(adapter), None)
    batched = generate_answers(model, tokenizer, PROMPTS, max_new_tokens=6)
    alone = [generate_answers(model, tokenizer, [p], max_new_tokens=6)[0] for p in PROMPTS]
    assert batched == alone
    assert all(len(a) == 1 for a in batched)
    assert tokenizer.padding_side == "right"  # left padding is per call, the tokenizer stays as it was

    sampled = generate_answers(model, tokenizer, PROMPTS, max_new_tokens=4, temperature=1.0,
                               num_return_sequences=3, seed=1)
    assert [len(a) for a in sampled] == [3, 3]
    assert sampled == generate_answers(model, tokenizer, PROMPTS, max_new_tokens=4, temperature=1.0,
                                       num_return_sequences=3, seed=1)
    with pytest.raises(KorloraError, match="temperature"):
        generate_answers(model, tokenizer, PROMPTS, num_return_sequences=2)


def test_export_merges_into_a_plain_model(adapter, tmp_path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from korlora.train.inference import load_for_inference

    out = tmp_path / "merged"
    assert main(["export", "--adapter", str(adapter), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out.resolve())
    assert (out / "model.safetensors").is_file() and (out / "tokenizer_config.json").is_file()
    assert not any(p.name.startswith(".merged.tmp") for p in tmp_path.iterdir())

    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    peft_model, tokenizer = load_for_inference(str(adapter), None)
    base = AutoModelForCausalLM.from_pretrained(json.loads((adapter / "adapter_config.json").read_text())[
        "base_model_name_or_path"]).eval()
    ids = AutoTokenizer.from_pretrained(out)("한국어로 천천히 설명해 주세요.", return_tensors="pt")
    with torch.no_grad():
        expected = peft_model(**ids).logits
        got = merged(**ids).logits
        plain = base(**ids).logits
    assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(plain, expected, atol=1e-3)  # the adapter really changes the model

    # exporting again replaces the previous export; a directory with other files is never deleted
    assert main(["export", "--adapter", str(adapter), "-o", str(out)]) == 0
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("x")
    assert main(["export", "--adapter", str(adapter), "-o", str(tmp_path / "notes")]) == 2
    assert (tmp_path / "notes" / "keep.txt").exists()


def test_missing_tiny_ko_base_falls_back_to_the_embedded_model(adapter, tmp_path):
    from korlora.train.inference import adapter_base

    moved = tmp_path / "adapter"
    shutil.copytree(adapter, moved)
    config = json.loads((moved / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = "/nowhere/tiny-ko-0123456789abcdef"
    (moved / "adapter_config.json").write_text(json.dumps(config))
    assert adapter_base(moved) == "tiny-ko"
    config["base_model_name_or_path"] = "/nowhere/other-model"
    (moved / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(KorloraError, match="model_name_or_path"):
        adapter_base(moved)
    config["base_model_name_or_path"] = "Qwen/Qwen2.5-1.5B-Instruct"
    (moved / "adapter_config.json").write_text(json.dumps(config))
    assert adapter_base(moved) == "Qwen/Qwen2.5-1.5B-Instruct"
