import hashlib
import json

from transformers import AutoModelForCausalLM, AutoTokenizer

from korlora.models import resolve_model_path
from korlora.models.config import ModelBuildConfig
from korlora.models.tiny_ko import build_tiny_ko

KOREAN = "오늘 저녁엔 된장찌개를 끓였어요. 맛있게 드세요! 값은 12,000원이고, 주소는 https://예시.kr 입니다.\n\t끝."


def test_loads_with_auto_classes(tiny_ko):
    model = AutoModelForCausalLM.from_pretrained(tiny_ko)
    tokenizer = AutoTokenizer.from_pretrained(tiny_ko)
    assert model.config.model_type == "qwen2"
    assert 1_000_000 < model.num_parameters() < 10_000_000
    info = json.loads((tiny_ko / "korlora.json").read_text())
    assert info["parameters"] == model.num_parameters()
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"


def test_chat_template_matches_qwen_format(tiny_ko):
    tokenizer = AutoTokenizer.from_pretrained(tiny_ko)
    chat = [{"role": "system", "content": "시스템"}, {"role": "user", "content": "안녕?"},
            {"role": "assistant", "content": "안녕하세요."}]
    text = tokenizer.apply_chat_template(chat, tokenize=False)
    assert text == ("<|im_start|>system\n시스템<|im_end|>\n<|im_start|>user\n안녕?<|im_end|>\n"
                    "<|im_start|>assistant\n안녕하세요.<|im_end|>\n")
    prompt = tokenizer.apply_chat_template(chat[:2], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>user\n안녕?<|im_end|>\n<|im_start|>assistant\n")
    assert "{% generation %}" in tokenizer.chat_template
    out = tokenizer.apply_chat_template(chat, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    masked = [t for t, m in zip(out["input_ids"], out["assistant_masks"], strict=False) if m]
    # exactly the answer and its end of turn: the first supervised token is the answer's own
    assert tokenizer.decode(masked) == "안녕하세요.<|im_end|>"


def test_tokenizer_round_trips_korean(tiny_ko):
    tokenizer = AutoTokenizer.from_pretrained(tiny_ko)
    for text in [KOREAN, "  띄어쓰기  두 칸", "ㅋㅋㅋ ㅠㅠ 😀", "漢字と日本語 and English"]:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        assert tokenizer.decode(ids) == text
    # trained on Korean: common Korean words are single tokens, not bytes
    assert len(tokenizer("합니다", add_special_tokens=False)["input_ids"]) <= 2


def test_generates(tiny_ko):
    tokenizer = AutoTokenizer.from_pretrained(tiny_ko)
    model = AutoModelForCausalLM.from_pretrained(tiny_ko)
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "안녕하세요?"}], add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True)
    out = model.generate(**ids, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]


def _weights_digest(path):
    return hashlib.sha256((path / "model.safetensors").read_bytes()).hexdigest()


def test_build_is_deterministic_and_cached(tmp_path):
    a = build_tiny_ko(ModelBuildConfig(cache_dir=str(tmp_path / "a"), warmup_steps=3))
    b = build_tiny_ko(ModelBuildConfig(cache_dir=str(tmp_path / "b"), warmup_steps=3))
    assert a.name == b.name
    assert _weights_digest(a) == _weights_digest(b)
    assert (a / "tokenizer.json").read_bytes() == (b / "tokenizer.json").read_bytes()
    c = build_tiny_ko(ModelBuildConfig(cache_dir=str(tmp_path / "a"), seed=1, warmup_steps=3))
    assert c != a and _weights_digest(c) != _weights_digest(a)
    mtime = (a / "model.safetensors").stat().st_mtime
    assert build_tiny_ko(ModelBuildConfig(cache_dir=str(tmp_path / "a"), warmup_steps=3)) == a
    assert (a / "model.safetensors").stat().st_mtime == mtime


def test_names_resolve(tiny_ko):
    assert resolve_model_path("tiny-ko") == str(tiny_ko)
    assert resolve_model_path("Qwen/Qwen2.5-1.5B") == "Qwen/Qwen2.5-1.5B"
    assert resolve_model_path("/some/local/dir") == "/some/local/dir"
