"""``korlora diagnose``: how a model starts its answers.

Two views of the same question. The **next-token distribution** right after ``<|im_start|>assistant\\n``
shows the collapse directly: how much probability goes to tokens that begin with a Hangul syllable, to
punctuation/symbols/whitespace, and to the first tokens of the disclaimer family. **Generated answers**
(greedy and sampled) show what users see: the share that starts with a Hangul sentence, with punctuation,
with a disclaimer, and whether the answers are Korean in one register (the cleaning gates on model output).
"""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from pathlib import Path

import yaml

from korlora.diagnose.config import DiagnoseConfig
from korlora.errors import KorloraError
from korlora.io import write_json

PROMPTS_PATH = Path(__file__).parent / "prompts.yaml"
NOISE_STARTS = ("punct", "role_tag", "blank")


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


def token_start_class(token: str, decoder: dict[str, int]) -> str:
    """``hangul`` | ``punct`` (punctuation, symbols, whitespace, control) | ``other`` for one vocab token."""
    if token and all(ch in decoder for ch in token):
        raw = bytes(decoder[ch] for ch in token)
        if raw and 0xEA <= raw[0] <= 0xED:  # lead byte of U+A000–U+DFFF: Hangul syllables live here
            return "hangul"
        text = raw.decode("utf-8", errors="ignore")
    else:
        text = token.replace("▁", " ")
    if not text:
        return "punct"  # a stray continuation byte: never a clean start
    ch = text[0]
    if "가" <= ch <= "힣":
        return "hangul"
    if ch.isspace() or unicodedata.category(ch)[0] in "PSCZ":
        return "punct"
    return "other"


def start_token_distribution(model, tokenizer, prompts: list[str], top_k: int = 20) -> dict:
    """Mean next-token distribution at the start of the answer, summarised by class."""
    import torch

    from korlora.clean.disclaimer import DISCLAIMER_FAMILY

    vocab = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    decoder = _byte_decoder()
    classes = [token_start_class(t or "", decoder) for t in vocab]
    disclaimer_ids = {tokenizer(text, add_special_tokens=False)["input_ids"][0] for text in DISCLAIMER_FAMILY}
    mean = None
    entropies = []
    model.eval()
    with torch.no_grad():
        for prompt in prompts:
            ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                                return_tensors="pt", return_dict=True)
            logits = model(**ids).logits[0, -1].float()
            probs = torch.softmax(logits, dim=-1)[: len(vocab)]
            entropies.append(float(-(probs * torch.log(probs.clamp_min(1e-12))).sum()))
            mean = probs if mean is None else mean + probs
    mean = mean / len(prompts)
    mass = Counter()
    for token_id, cls in enumerate(classes):
        mass[cls] += float(mean[token_id])
    top = torch.topk(mean, top_k)
    return {
        "hangul_mass": mass["hangul"],
        "punct_mass": mass["punct"],
        "other_mass": mass["other"],
        "disclaimer_mass": float(sum(mean[i] for i in disclaimer_ids)),
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


def diagnose(cfg: DiagnoseConfig) -> dict:
    from korlora.train.inference import generate_answers, load_for_inference

    prompts = load_prompts(cfg.prompts)
    texts = [p["text"] for p in prompts]
    model, tokenizer = load_for_inference(cfg.adapter, cfg.model if not cfg.adapter else None)
    distribution = start_token_distribution(model, tokenizer, texts, cfg.top_k)
    greedy = [a[0] for a in generate_answers(model, tokenizer, texts, max_new_tokens=cfg.max_new_tokens)]
    sampled = []
    if cfg.samples:
        sampled = [a for answers in generate_answers(model, tokenizer, texts, max_new_tokens=cfg.max_new_tokens,
                                                     temperature=cfg.temperature, seed=cfg.seed,
                                                     num_return_sequences=cfg.samples) for a in answers]
    return {
        "label": cfg.label or (cfg.adapter or cfg.model),
        "model": cfg.model, "adapter": cfg.adapter, "prompts": len(texts),
        "next_token": distribution,
        "greedy": answer_stats(greedy),
        "sampled": answer_stats(sampled) if sampled else None,
        "examples": [{"category": p["category"], "prompt": p["text"], "answer": a}
                     for p, a in zip(prompts, greedy, strict=False)][:12],
    }


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
        mlflow.log_metrics(flat)
        mlflow.log_artifacts(str(out), "diagnosis")
    return 0
