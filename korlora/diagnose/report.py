"""``korlora diagnose``: how a model starts its answers.

Two views of the same question. The **next-token distribution** right after ``<|im_start|>assistant\\n``
shows the collapse directly: how much probability goes to tokens that begin with a Hangul syllable, to
punctuation/symbols/whitespace/invisible characters, and to the openings of the disclaimer family (scored by
teacher forcing). **Generated answers** (greedy and sampled) show what users see: the share that starts with a
Hangul sentence, with punctuation, with a disclaimer, and whether the answers are Korean in one register (the
cleaning gates on model output).
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import yaml

from korlora.diagnose.config import DiagnoseConfig
from korlora.errors import KorloraError
from korlora.io import write_json

PROMPTS_PATH = Path(__file__).parent / "prompts.yaml"
NOISE_STARTS = ("punct", "invisible", "role_tag", "blank")
OPENING_WORDS = 2  # eojeol per disclaimer opening (see disclaimer_openings)
_BYTE_FALLBACK = re.compile(r"<0x([0-9A-Fa-f]{2})>")  # SentencePiece byte-fallback piece
_HANGUL_BLOCKS = ((0x1100, 0x11FF), (0x3130, 0x318F), (0xA960, 0xA97F), (0xAC00, 0xD7FF))
_MAX_LOGITS = 1 << 27  # float32 logits kept per forward pass (512 MiB)
_MAX_TOKENS = 16_384  # tokens per forward pass


def load_prompts(path: str | None = None) -> list[dict]:
    """``[{category, text}]`` from the shipped YAML, a user YAML, or a JSONL with ``text``/``prompt``."""
    path = Path(path) if path else PROMPTS_PATH
    if not path.is_file():
        raise KorloraError(f"prompts file not found: {path}")
    if path.suffix in (".yaml", ".yml"):
        prompts = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("prompts", [])
    else:
        prompts = []
        for line in path.read_text(encoding="utf-8-sig").splitlines():
            if line.strip():
                obj = json.loads(line)
                prompts.append({"category": obj.get("category", "?"), "text": obj.get("text") or obj["prompt"]})
    if not prompts:
        raise KorloraError(f"no prompts in {path}")
    return prompts


def _byte_decoder() -> dict[str, int]:
    """GPT-2's unicode→byte map, to see the raw bytes of byte-level BPE tokens."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return {char: byte for byte, char in bytes_to_unicode().items()}


def _utf8_prefix_range(raw: bytes) -> tuple[int, int] | None:
    """The lowest and highest code point that the incomplete UTF-8 sequence ``raw`` can begin; ``None`` for a
    stray continuation byte or a byte that never starts a character."""
    lead = raw[0]
    n = 2 if 0xC2 <= lead <= 0xDF else 3 if 0xE0 <= lead <= 0xEF else 4 if 0xF0 <= lead <= 0xF4 else 0
    head = raw[:n]
    if not n or any(not 0x80 <= b <= 0xBF for b in head[1:]):
        return None

    def code_point(seq: bytes) -> int:
        value = seq[0] & (0x7F >> n)
        for b in seq[1:]:
            value = (value << 6) | (b & 0x3F)
        return value

    pad = n - len(head)
    return code_point(head + b"\x80" * pad), code_point(head + b"\xbf" * pad)


def _partial_char_class(raw: bytes) -> str:
    """Class of a token that holds only the first bytes of its first character."""
    span = _utf8_prefix_range(raw)
    if span is None:
        return "punct"  # a stray continuation byte: never a clean start
    if len(raw) == 1 and 0xEA <= raw[0] <= 0xED:
        return "hangul"
    lo, hi = span
    return "hangul" if any(a <= lo and hi <= b for a, b in _HANGUL_BLOCKS) else "punct"


def token_start_class(token: str, decoder: dict[str, int] | None) -> str:
    """``hangul`` | ``punct`` (punctuation, symbols, whitespace, control, invisible) | ``other`` for one vocab token.

    ``decoder`` is :func:`_byte_decoder` for a byte-level BPE vocabulary (GPT-2 style: SmolLM2, Qwen, tiny-ko) and
    ``None`` for a SentencePiece one ("▁" for a space, ``<0xEC>`` byte-fallback pieces: Gemma). Byte tokens of
    either kind are read as raw UTF-8. A token holding only the first bytes of a character is classified by the
    code points it can begin: ``hangul`` when they all lie in a Hangul block. A lone lead byte 0xEA–0xED
    (U+A000–U+DFFF) counts as ``hangul``: 0xEB and 0xEC begin Hangul syllables only, 0xED Hangul up to the
    surrogates (never valid UTF-8), and 0xEA's range holds 가–깋 next to scripts (Yi, Vai, …) that a Korean
    answer does not start with. Any other incomplete character, or a stray continuation byte, is ``punct``.
    Invisible characters (U+200B, U+FEFF, the Hangul fillers, …) are ``punct``: noise, not Hangul.
    """
    from korlora.clean.korean import is_hangul
    from korlora.clean.noise import is_invisible_char

    byte = _BYTE_FALLBACK.fullmatch(token)
    if byte:
        raw = bytes([int(byte.group(1), 16)])
    elif decoder and token and all(ch in decoder for ch in token):
        raw = bytes(decoder[ch] for ch in token)
    else:
        raw = None
    if raw is not None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            text = raw[:err.start].decode("utf-8")
            if not text:
                return _partial_char_class(raw)
    else:
        text = token.replace("▁", " ")
    if not text:
        return "punct"
    ch = text[0]
    if is_invisible_char(ch):
        return "punct"
    if is_hangul(ch):
        return "hangul"
    if ch.isspace() or unicodedata.category(ch)[0] in "PSCZ":
        return "punct"
    return "other"


def _is_byte_level(tokenizer, vocab: list[str]) -> bool:
    """Whether the vocabulary is byte-level BPE (bytes as GPT-2 characters) rather than SentencePiece-style."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    decoder = repr(getattr(backend, "decoder", None))
    if "ByteLevel" in decoder:
        return True
    if "ByteFallback" in decoder or "Metaspace" in decoder:
        return False
    return sum(t.startswith("Ġ") for t in vocab if t) > sum(t.startswith("▁") for t in vocab if t)


def vocab_start_classes(tokenizer) -> list[str]:
    """:func:`token_start_class` of every token id, read as the first token of an answer.

    Where the tokenizer drops the space marker of an answer's first token when decoding (SentencePiece with a
    dummy prefix, Llama 2 style), a leading "▁"/"Ġ" is not a whitespace start and is ignored.
    """
    vocab = [t or "" for t in tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))]
    decoder = _byte_decoder() if _is_byte_level(tokenizer, vocab) else None
    marker = "Ġ" if decoder else "▁"
    try:
        drops_space = not tokenizer.convert_tokens_to_string([marker + "a"]).startswith(" ")
    except Exception:  # noqa: BLE001 - a tokenizer without a decoder for loose tokens
        drops_space = False
    return [token_start_class(t[1:] if drops_space and t.startswith(marker) else t, decoder) for t in vocab]


def disclaimer_openings(family: Sequence[str] | None = None, words: int = OPENING_WORDS) -> list[str]:
    """The distinct openings of the disclaimer family: each member's first ``words`` eojeol (space-separated
    words), trailing punctuation dropped, in family order.

    Two eojeol are the shortest opening that says what the sentence is about (a modifier or determiner and its
    noun with a particle: "정확한 판단은", "이 답변은", "투자 권유가"). One eojeol is a bare modifier or determiner
    ("정확한", "이", "본") that opens ordinary answers just as well ("정확한 측정을 위해 …"); more eojeol only
    split the mass over wordings a collapsed model varies.
    """
    from korlora.clean.disclaimer import DISCLAIMER_FAMILY

    openings: list[str] = []
    for text in DISCLAIMER_FAMILY if family is None else family:
        opening = " ".join(text.split()[:words]).rstrip(",.!?")
        if opening and opening not in openings:
            openings.append(opening)
    return openings


def _opening_token_ids(tokenizer, openings: Sequence[str]) -> dict[str, list[int]]:
    """Token ids of each opening, without the openings whose ids extend another's (their event is inside the
    shorter opening's, so summing both would count it twice) and without exact duplicates."""
    ids = {o: list(tokenizer(o, add_special_tokens=False)["input_ids"]) for o in openings}
    kept: dict[str, list[int]] = {}
    for opening, seq in sorted(ids.items(), key=lambda kv: len(kv[1])):
        if seq and not any(seq[:len(k)] == k for k in kept.values()):
            kept[opening] = seq
    return {o: kept[o] for o in openings if o in kept}


def _chat_prompt_ids(tokenizer, prompt: str) -> list[int]:
    ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                        tokenize=True, return_dict=True)["input_ids"]
    return list(ids[0] if ids and isinstance(ids[0], list) else ids)


def _answer_start_scores(model, prompts: list[list[int]], sequences: list[list[int]], pad_id: int):
    """Float32 next-token logits at the answer start (``[prompts, vocab]``) and the teacher-forced log-probability
    of every token sequence after every prompt (``[prompts, sequences]``, ``None`` without sequences).

    The prompts are left-padded to end together and run once; their key/value cache is repeated for each sequence,
    so only the sequences' own tokens are computed again (a model without a repeatable cache reruns the prompt).
    """
    import torch

    from korlora.train.inference import forward_last

    device = next(model.parameters()).device
    width = max(map(len, prompts))
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, prompt in enumerate(prompts):
        ids[i, width - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
        mask[i, width - len(prompt):] = 1
    longest = max(map(len, sequences), default=0)
    out = forward_last(model, 1, input_ids=ids.to(device), attention_mask=mask.to(device),
                   position_ids=(mask.cumsum(-1) - 1).clamp_min(0).to(device), use_cache=longest > 1)
    first = out.logits[:, -1].float()
    if not sequences:
        return first, None
    rows = len(sequences)
    targets = torch.full((rows, longest), pad_id, dtype=torch.long)
    target_mask = torch.zeros_like(targets)
    for j, seq in enumerate(sequences):
        targets[j, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        target_mask[j, :len(seq)] = 1
    targets, target_mask = targets.repeat(len(prompts), 1).to(device), target_mask.repeat(len(prompts), 1).to(device)
    token_logp = torch.log_softmax(first, -1).repeat_interleave(rows, 0).gather(-1, targets[:, :1])
    if longest > 1:
        full_mask = torch.cat([mask.to(device).repeat_interleave(rows, 0), target_mask[:, :-1]], -1)
        positions = (full_mask.cumsum(-1) - 1).clamp_min(0)
        cache = getattr(out, "cache", None)  # transformers 5 (``past_key_values`` before)
        if hasattr(cache, "batch_repeat_interleave"):
            cache.batch_repeat_interleave(rows)
            rest = forward_last(model, None, input_ids=targets[:, :-1], attention_mask=full_mask,
                            position_ids=positions[:, width:], cache=cache, use_cache=True).logits
        else:
            full_ids = torch.cat([ids.to(device).repeat_interleave(rows, 0), targets[:, :-1]], -1)
            rest = forward_last(model, longest - 1, input_ids=full_ids, attention_mask=full_mask,
                            position_ids=positions).logits
        rest = rest[:, -(longest - 1):].float()
        rest_logp = rest.gather(-1, targets[:, 1:, None]).squeeze(-1) - rest.logsumexp(-1)
        token_logp = torch.cat([token_logp, rest_logp], -1)
    return first, (token_logp * target_mask).sum(-1).view(len(prompts), rows)


def start_token_distribution(model, tokenizer, prompts: list[str], top_k: int = 20,
                             openings: Sequence[str] | None = None) -> dict:
    """How the model starts its answers, right after the assistant header.

    ``hangul_mass``/``punct_mass``/``other_mass``: the mean next-token distribution summed by
    :func:`vocab_start_classes`. ``disclaimer_mass``: the mean over prompts of the probability that the answer
    starts with one of the disclaimer openings (:func:`disclaimer_openings`), each scored by teacher forcing as
    the product of its tokens' conditional probabilities after the prompt (``disclaimer_openings`` in the result:
    the mean per opening). Summing the first tokens' probabilities instead would count every answer that starts
    with the same UTF-8 lead byte (정, 저, 예, 이 … all start with 0xEC in a byte-level vocabulary).
    The score is that of each opening's own tokenization; other segmentations of the same text are not counted.
    Runs on the model's device; softmaxes in float32, so a bfloat16 model works too.
    """
    import torch

    classes = vocab_start_classes(tokenizer)
    n_vocab = len(classes)
    opening_ids = _opening_token_ids(tokenizer, disclaimer_openings() if openings is None else openings)
    sequences = list(opening_ids.values())
    rows, longest = max(len(sequences), 1), max(map(len, sequences), default=1)
    prompt_ids = [_chat_prompt_ids(tokenizer, p) for p in prompts]
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    per_batch = max(1, min(_MAX_LOGITS // (rows * longest * n_vocab),
                           _MAX_TOKENS // (rows * (max(map(len, prompt_ids)) + longest))))
    mean = None
    entropies, opening_probs = [], []
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(prompt_ids), per_batch):
            first, logp = _answer_start_scores(model, prompt_ids[start:start + per_batch], sequences, pad_id)
            probs = torch.softmax(first, dim=-1)
            entropies += (-(probs * torch.log(probs.clamp_min(1e-12))).sum(-1)).tolist()
            probs = probs[:, :n_vocab].sum(0)
            mean = probs if mean is None else mean + probs
            if logp is not None:
                opening_probs.append(logp.exp().cpu())
    mean = (mean / len(prompts)).cpu()
    mass = Counter()
    for token_id, cls in enumerate(classes[:mean.numel()]):
        mass[cls] += float(mean[token_id])
    per_opening = torch.cat(opening_probs).mean(0).tolist() if opening_probs else []
    top = torch.topk(mean, min(top_k, n_vocab))
    return {
        "hangul_mass": mass["hangul"],
        "punct_mass": mass["punct"],
        "other_mass": mass["other"],
        "disclaimer_mass": float(sum(per_opening)),
        "disclaimer_openings": dict(zip(opening_ids, per_opening, strict=True)),
        "entropy": sum(entropies) / len(entropies),
        "top_tokens": [{"token": tokenizer.decode([int(i)]), "prob": float(p)}
                       for p, i in zip(top.values, top.indices, strict=False)],
    }


def answer_stats(answers: list[str]) -> dict:
    """Start categories, Korean purity and speech-level consistency of generated answers."""
    from korlora.clean.korean import hangul_ratio, is_mixed, speech_levels
    from korlora.clean.noise import start_category

    starts = Counter(start_category(a) for a in answers)
    n = max(len(answers), 1)
    korean = sum(hangul_ratio(a) >= 0.6 for a in answers if a.strip())
    consistent = sum(not is_mixed(speech_levels(a)) for a in answers if a.strip())
    return {
        "answers": len(answers),
        "starts": dict(starts),
        "hangul_start_share": starts["hangul"] / n,
        "punct_start_share": sum(starts[c] for c in NOISE_STARTS) / n,
        "disclaimer_start_share": starts["disclaimer"] / n,
        "korean_share": korean / n,
        "consistent_speech_level_share": consistent / n,
    }


def diagnose_here(cfg: DiagnoseConfig) -> dict:
    """The diagnosis in this process, on this machine's device (a GPU when it has one)."""
    from korlora.logs import quiet_libraries
    from korlora.models.check import check_chat_template
    from korlora.train.inference import generate_answers, load_for_inference

    quiet_libraries()
    prompts = load_prompts(cfg.prompts)
    texts = [p["text"] for p in prompts]
    model, tokenizer = load_for_inference(cfg.adapter, cfg.model_name_or_path if not cfg.adapter else None)
    template = check_chat_template(tokenizer, model.generation_config)
    distribution = start_token_distribution(model, tokenizer, texts, cfg.top_k)
    greedy = [a[0] for a in generate_answers(model, tokenizer, texts, max_new_tokens=cfg.max_new_tokens)]
    heldout = None
    if cfg.heldout != "none":
        from korlora.eval.heldout import load_eval_set, reference_loss

        heldout = reference_loss(model, tokenizer, load_eval_set(cfg.heldout))
    sampled = []
    if cfg.samples:
        sampled = [a for answers in generate_answers(model, tokenizer, texts, max_new_tokens=cfg.max_new_tokens,
                                                     temperature=cfg.temperature, seed=cfg.seed,
                                                     num_return_sequences=cfg.samples) for a in answers]
    device = next(model.parameters()).device
    return {
        "label": cfg.label or (cfg.adapter or cfg.model_name_or_path),
        "model": cfg.model_name_or_path, "adapter": cfg.adapter, "prompts": len(texts),
        "chat_template": template.family,
        "ran_on": {"device": str(device), "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
                   "gpu_ids": _ray_gpu_ids(), "pid": os.getpid()},
        "next_token": distribution,
        "heldout_answer_loss": heldout,
        "greedy": answer_stats(greedy),
        "sampled": answer_stats(sampled) if sampled else None,
        "examples": [{"category": p["category"], "prompt": p["text"], "answer": a}
                     for p, a in zip(prompts, greedy, strict=False)][:12],
    }


def _ray_gpu_ids() -> list:
    import ray

    return [str(i) for i in ray.get_gpu_ids()] if ray.is_initialized() else []


def diagnose(cfg: DiagnoseConfig) -> dict:
    """Run the diagnosis where the model should run: as a Ray task holding a GPU when the Ray cluster has GPU
    nodes or can launch them (the driver may be a CPU head), else in this process."""
    from korlora.train.cluster import run_where_the_model_runs

    return run_where_the_model_runs(diagnose_here, cfg, use_gpu=cfg.use_gpu)


def plot_diagnosis(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import koreanize_matplotlib  # noqa: F401
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.5))
    labels = ["한글 시작", "구두점·기호", "경고문"]
    nt = report["next_token"]
    groups = {"다음 토큰 확률": [nt["hangul_mass"], nt["punct_mass"], nt["disclaimer_mass"]]}
    for name in ("greedy", "sampled"):
        if report.get(name):
            s = report[name]
            groups[f"생성 ({name})"] = [s["hangul_start_share"], s["punct_start_share"], s["disclaimer_start_share"]]
    width = 0.8 / len(groups)
    for i, (name, values) in enumerate(groups.items()):
        left.bar([x + i * width for x in range(3)], values, width, label=name)
    left.set_xticks([x + width * (len(groups) - 1) / 2 for x in range(3)], labels)
    left.set_ylim(0, 1)
    left.set_title("답변 시작 유형")
    left.legend()
    top = nt["top_tokens"]
    right.barh([repr(t["token"]) for t in top], [t["prob"] for t in top], color="#4C72B0")
    right.invert_yaxis()
    right.set_title("첫 토큰 상위 20개 (평균 확률)")
    fig.suptitle(f"korlora diagnose: {report['label']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_table(report: dict) -> None:
    nt, g = report["next_token"], report["greedy"]
    print(f"{'':28}{'hangul':>10}{'punct':>10}{'disclaimer':>12}")
    print(f"{'next-token probability':28}{nt['hangul_mass']:>10.1%}{nt['punct_mass']:>10.1%}{nt['disclaimer_mass']:>12.1%}")
    for name in ("greedy", "sampled"):
        s = report.get(name)
        if s:
            print(f"{'answers (' + name + ')':28}{s['hangul_start_share']:>10.1%}{s['punct_start_share']:>10.1%}"
                  f"{s['disclaimer_start_share']:>12.1%}")
    print(f"entropy {nt['entropy']:.2f} nats · Korean answers {g['korean_share']:.0%} · "
          f"one register {g['consistent_speech_level_share']:.0%}")
    if report.get("heldout_answer_loss"):
        h = report["heldout_answer_loss"]
        print(f"held-out reference answers: loss {h['loss']:.3f} nats/token ({h['answers']} answers, {h['tokens']} tokens)")


def diagnose_command(cfg: DiagnoseConfig) -> int:
    report = diagnose(cfg)
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "diagnosis.json", report)
    plot_diagnosis(report, out / "diagnosis.png")
    print_table(report)
    print(f"report: {out / 'diagnosis.json'}  chart: {out / 'diagnosis.png'}")
    import mlflow

    if mlflow.active_run():
        flat = {"diag_next_hangul_mass": report["next_token"]["hangul_mass"],
                "diag_next_punct_mass": report["next_token"]["punct_mass"],
                "diag_next_disclaimer_mass": report["next_token"]["disclaimer_mass"],
                **{f"diag_greedy_{k}": v for k, v in report["greedy"].items() if isinstance(v, float)}}
        if report.get("heldout_answer_loss"):
            flat["diag_heldout_answer_loss"] = report["heldout_answer_loss"]["loss"]
        mlflow.log_metrics(flat)
        mlflow.log_artifacts(str(out), "diagnosis")
    return 0
