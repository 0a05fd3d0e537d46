"""The disclaimer mass is the probability of the disclaimer openings, not of their first token.

In a byte-level vocabulary the first token of "정확한 …" is the UTF-8 lead byte 0xEC, shared with 정말, 저는,
예금은, 이 …: a model that never opens with a disclaimer must still score near zero. Tokenizers and models are
built and trained here, in seconds, on CPU.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from korlora.clean.disclaimer import DISCLAIMER_FAMILY  # noqa: E402
from korlora.diagnose.report import (  # noqa: E402
    _byte_decoder,
    _opening_token_ids,
    disclaimer_openings,
    start_token_distribution,
    token_start_class,
    vocab_start_classes,
)

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
PROMPTS = ["예금이 뭐예요?", "저녁 추천해 줘.", "비 오면 뭐 해?", "감기엔 뭘 먹어요?", "월세 팁 있어요?",
           "운동 어떻게 해요?"]
# Every clean answer opens with a syllable whose first byte is 0xEC, like 정확한's 정 — never with a disclaimer.
CLEAN_ANSWERS = ["정말 좋은 질문이에요.", "저는 이렇게 봐요.", "예금은 맡기는 거예요."]
DISCLAIMER = "정확한 판단은 전문가와 상담하세요. "


def byte_level_tokenizer():
    """GPT-2-style byte-level BPE with no merges: every Hangul syllable is three byte tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {ch: i for i, ch in enumerate(bytes_to_unicode().values())}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens(SPECIALS)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   chat_template=CHATML)


def sentencepiece_tokenizer():
    """Gemma-style: "▁" for spaces, a few whole syllables, every other character as ``<0xHH>`` byte pieces."""
    from tokenizers import Tokenizer, decoders, models, normalizers
    from transformers import PreTrainedTokenizerFast

    pieces = [f"<0x{b:02X}>" for b in range(256)] + ["▁"] + [chr(c) for c in range(0x21, 0x7F)]
    pieces += list("요다는은을를가고에서해")  # none of them starts a test answer
    tok = Tokenizer(models.BPE(vocab={p: i for i, p in enumerate(pieces)}, merges=[], byte_fallback=True))
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.add_special_tokens(SPECIALS)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   chat_template=CHATML)


def train_chat_model(tokenizer, disclaimer_first: bool, steps: int = 100, seed: int = 0):
    """A two-layer Llama trained on the test chats; loss on the answer tokens only."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config)
    rows = []
    for i, prompt in enumerate(PROMPTS):
        answer = (DISCLAIMER if disclaimer_first else "") + CLEAN_ANSWERS[i % len(CLEAN_ANSWERS)]
        head = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                             tokenize=True, return_dict=True)["input_ids"]
        body = tokenizer(answer + "<|im_end|>", add_special_tokens=False)["input_ids"]
        rows.append((list(head), list(body)))
    width = max(len(h) + len(b) for h, b in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    labels = torch.full((len(rows), width), -100)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, (head, body) in enumerate(rows):
        ids[r, :len(head) + len(body)] = torch.tensor(head + body)
        labels[r, len(head):len(head) + len(body)] = torch.tensor(body)
        mask[r, :len(head) + len(body)] = 1
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


def first_token_disclaimer_sum(model, tokenizer) -> float:
    """The old measure: the answer-start probability of the first token of every family member."""
    first = {tokenizer(t, add_special_tokens=False)["input_ids"][0] for t in DISCLAIMER_FAMILY}
    total = 0.0
    with torch.no_grad():
        for prompt in PROMPTS:
            ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                                return_tensors="pt", return_dict=True)
            probs = torch.softmax(model(**ids).logits[0, -1].float(), -1)
            total += float(sum(probs[i] for i in first))
    return total / len(PROMPTS)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models train several times faster on one thread than on two contended ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", params=["byte_level", "sentencepiece"])
def trained(request):
    tokenizer = byte_level_tokenizer() if request.param == "byte_level" else sentencepiece_tokenizer()
    return (request.param, tokenizer, train_chat_model(tokenizer, disclaimer_first=False),
            train_chat_model(tokenizer, disclaimer_first=True))


def test_both_vocabularies_split_the_disclaimer_into_lead_bytes():
    """The premise: 정확한's first token is the lead byte 0xEC that 정말/저는/예금은 start with too."""
    for tokenizer, lead in ((byte_level_tokenizer(), "ì"), (sentencepiece_tokenizer(), "<0xEC>")):
        firsts = {tokenizer.convert_ids_to_tokens(tokenizer(t, add_special_tokens=False)["input_ids"])[0]
                  for t in [DISCLAIMER, *CLEAN_ANSWERS]}
        assert firsts == {lead}


def test_clean_model_scores_near_zero_and_disclaimer_model_high(trained):
    name, tokenizer, clean, disclaimer = trained
    clean_dist = start_token_distribution(clean, tokenizer, PROMPTS)
    disclaimer_dist = start_token_distribution(disclaimer, tokenizer, PROMPTS)
    assert first_token_disclaimer_sum(clean, tokenizer) > 0.5, name  # the old measure calls it a disclaimer
    assert clean_dist["disclaimer_mass"] < 0.05, (name, clean_dist["disclaimer_openings"])
    assert disclaimer_dist["disclaimer_mass"] > 0.5, (name, disclaimer_dist["disclaimer_openings"])
    assert disclaimer_dist["disclaimer_openings"]["정확한 판단은"] > 0.5
    assert set(disclaimer_dist["disclaimer_openings"]) <= set(disclaimer_openings())
    # Both models start with a lead byte 0xEC: Hangul either way.
    assert clean_dist["hangul_mass"] > 0.9 and disclaimer_dist["hangul_mass"] > 0.9, name


def test_teacher_forced_opening_probability_matches_sequential_scoring(trained):
    """The batched, padded score equals the product of next-token probabilities computed one prompt at a time."""
    _, tokenizer, _, model = trained
    opening = "정확한 판단은"
    dist = start_token_distribution(model, tokenizer, PROMPTS[:2], openings=[opening, "예금은"])
    seq = tokenizer(opening, add_special_tokens=False)["input_ids"]
    expected = []
    with torch.no_grad():
        for prompt in PROMPTS[:2]:
            head = list(tokenizer.apply_chat_template([{"role": "user", "content": prompt}],
                                                      add_generation_prompt=True, tokenize=True,
                                                      return_dict=True)["input_ids"])
            logp = torch.log_softmax(model(input_ids=torch.tensor([head + seq])).logits[0].float(), -1)
            expected.append(float(sum(logp[len(head) - 1 + k, t] for k, t in enumerate(seq)).exp()))
    assert dist["disclaimer_openings"][opening] == pytest.approx(sum(expected) / 2, rel=1e-3, abs=1e-6)


def test_bfloat16_model_gives_finite_masses_summing_to_one(trained):
    _, tokenizer, clean, _ = trained
    reference = start_token_distribution(clean, tokenizer, PROMPTS)
    half = train_chat_model(tokenizer, disclaimer_first=False, steps=0)
    half.load_state_dict(clean.state_dict())
    half = half.to(torch.bfloat16)
    dist = start_token_distribution(half, tokenizer, PROMPTS)
    masses = [dist["hangul_mass"], dist["punct_mass"], dist["other_mass"], dist["disclaimer_mass"], dist["entropy"]]
    assert all(torch.isfinite(torch.tensor(m)) for m in masses)
    assert dist["hangul_mass"] + dist["punct_mass"] + dist["other_mass"] == pytest.approx(1.0, abs=1e-3)
    assert dist["hangul_mass"] == pytest.approx(reference["hangul_mass"], abs=0.05)
    assert dist["disclaimer_mass"] == pytest.approx(reference["disclaimer_mass"], abs=0.05)


def test_openings_are_two_eojeol_deduplicated():
    openings = disclaimer_openings()
    assert openings[:3] == ["정확한 판단은", "정확한 판단을", "정확한 진단은"]
    assert openings.count("이 답변은") == 1  # two members open with it
    assert all(len(o.split()) == 2 and not o.endswith(",") for o in openings)
    assert disclaimer_openings(["참고용입니다.", "참고용입니다. 다른 문장"], words=1) == ["참고용입니다"]


def test_openings_extending_another_opening_are_dropped():
    tokenizer = byte_level_tokenizer()
    kept = _opening_token_ids(tokenizer, ["정확한 판단은", "정확한", "정확한 판단은"])
    assert list(kept) == ["정확한"]


@pytest.mark.parametrize("piece, cls", [
    ("<0xEC>", "hangul"),  # byte fallback: the lead byte of 정/저/예/이
    ("<0xEB>", "hangul"),
    ("<0x2E>", "punct"),  # "."
    ("<0x0A>", "punct"),  # newline
    ("<0x80>", "punct"),  # a stray continuation byte
    ("<0x41>", "other"),  # "A"
    ("<0xE3>", "punct"),  # lead byte of CJK punctuation and kana: not Hangul
    ("정확", "hangul"),
    ("▁정확", "punct"),  # a space first
    ("▁", "punct"),
])
def test_sentencepiece_token_classes(piece, cls):
    assert token_start_class(piece, None) == cls


@pytest.mark.parametrize("raw, cls", [
    (b"\xec", "hangul"),  # the lead byte of 정/저/예/이
    ("가".encode(), "hangul"),
    (b"\xea\xb0", "hangul"),  # U+AC00–U+AC3F: Hangul only
    (b"\xea", "hangul"),  # a lone lead byte of U+A000–U+AFFF (가–깋 and scripts Korean never starts with)
    (b"\xea\x80", "punct"),  # U+A000–U+A03F: Yi syllables
    (b"\xe3\x85", "hangul"),  # U+3140–U+317F: compatibility jamo
    (b"\xa0", "punct"),  # a stray continuation byte
    (b" \xec", "punct"),
    (b".", "punct"),
    (b"assistant", "other"),
])
def test_byte_level_token_classes(raw, cls):
    encoder = {byte: ch for ch, byte in _byte_decoder().items()}
    assert token_start_class("".join(encoder[b] for b in raw), _byte_decoder()) == cls


def test_byte_fallback_piece_is_read_as_a_byte_even_with_the_byte_level_map():
    assert token_start_class("<0xEC>", _byte_decoder()) == "hangul"


def test_vocab_classes_follow_the_vocabulary_kind():
    sp = sentencepiece_tokenizer()
    classes = vocab_start_classes(sp)
    assert classes[sp.convert_tokens_to_ids("<0xEC>")] == "hangul"
    assert classes[sp.convert_tokens_to_ids("<0x20>")] == "punct"
    assert classes[sp.convert_tokens_to_ids("요")] == "hangul"
    assert classes[sp.convert_tokens_to_ids("A")] == "other"
    bl = byte_level_tokenizer()
    classes = vocab_start_classes(bl)
    assert classes[bl.convert_tokens_to_ids("ì")] == "hangul"
    assert classes[bl.convert_tokens_to_ids("Ġ")] == "punct"
    assert classes[bl.convert_tokens_to_ids("A")] == "other"


def test_models_without_a_repeatable_cache_score_the_same(trained, monkeypatch):
    """The fallback that reruns the prompt for every opening gives the cached path's numbers."""
    from transformers import cache_utils

    _, tokenizer, clean, disclaimer = trained
    cached = [start_token_distribution(m, tokenizer, PROMPTS) for m in (clean, disclaimer)]
    monkeypatch.setattr(cache_utils.Cache, "batch_repeat_interleave",
                        property(lambda self: (_ for _ in ()).throw(AttributeError("no repeat"))))
    for model, expected in zip((clean, disclaimer), cached, strict=True):
        rerun = start_token_distribution(model, tokenizer, PROMPTS)
        assert rerun["disclaimer_mass"] == pytest.approx(expected["disclaimer_mass"], rel=1e-3, abs=1e-9)
        assert rerun["hangul_mass"] == pytest.approx(expected["hangul_mass"], abs=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: inputs must follow the model there")
def test_model_on_cuda_in_bfloat16(trained):
    _, tokenizer, clean, disclaimer = trained
    for model in (clean, disclaimer):
        expected = start_token_distribution(model, tokenizer, PROMPTS)
        gpu = train_chat_model(tokenizer, disclaimer_first=False, steps=0)
        gpu.load_state_dict(model.state_dict())
        dist = start_token_distribution(gpu.to("cuda", torch.bfloat16), tokenizer, PROMPTS)
        assert dist["disclaimer_mass"] == pytest.approx(expected["disclaimer_mass"], abs=0.05)
        assert dist["hangul_mass"] == pytest.approx(expected["hangul_mass"], abs=0.05)
