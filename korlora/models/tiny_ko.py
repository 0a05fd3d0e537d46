"""``tiny-ko``: the embedded default model, built offline from the Korean text in this package.

A Qwen2-architecture causal LM of a few million parameters, a byte-level BPE tokenizer trained with
``tokenizers`` on the package's own Korean text, and a ChatML chat template in Qwen2.5's format with
``{% generation %}`` markers. The weights are initialised from a seed and then briefly trained on the
content bank rendered through the chat template, so the model already writes Korean-looking ChatML
answers. Built directories are cached under ``~/.cache/korlora/tiny-ko-<hash>``, keyed by the corpus,
the config and the build recipe, and written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

from korlora.models.config import ModelBuildConfig

RECIPE_VERSION = "1"
PACKAGE_DIR = Path(__file__).resolve().parent.parent
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (Path(__file__).parent / "templates" / "chatml.jinja").read_text(encoding="utf-8")


def cache_root(cache_dir: str | os.PathLike | None = None) -> Path:
    if cache_dir:
        return Path(cache_dir)
    return Path(os.environ.get("KORLORA_CACHE") or Path.home() / ".cache" / "korlora")


def corpus_files() -> list[Path]:
    """The package's Korean text: the content bank and the other shipped YAML data, in a fixed order."""
    return sorted(p for p in PACKAGE_DIR.rglob("*.yaml") if "bank" in p.parts or p.parent.name in ("data", "diagnose"))


def _strings(node) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def corpus_texts() -> list[str]:
    import yaml

    texts = []
    for path in corpus_files():
        with open(path, encoding="utf-8") as f:
            texts.extend(t for t in _strings(yaml.safe_load(f)) if t.strip())
    return texts


def bank_dialogues() -> list[list[dict]]:
    """Every bank item as a short chat (question, answer, follow-up) for the warm-up training."""
    import yaml

    chats = []
    for path in sorted((PACKAGE_DIR / "data" / "bank").glob("*.yaml")):
        with open(path, encoding="utf-8") as f:
            bank = yaml.safe_load(f) or {}
        for item in bank.get("items", []):
            chat = [{"role": "user", "content": item["question"]}, {"role": "assistant", "content": item["answer"]}]
            if item.get("followup"):
                chat += [{"role": "user", "content": item["followup"]["question"]},
                         {"role": "assistant", "content": item["followup"]["answer"]}]
            chats.append(chat)
    return chats


def build_key(cfg: ModelBuildConfig) -> str:
    h = hashlib.sha256()
    h.update(RECIPE_VERSION.encode())
    shape = {k: v for k, v in asdict(cfg).items() if k not in ("cache_dir", "force")}
    h.update(json.dumps(shape, sort_keys=True).encode())
    h.update(CHAT_TEMPLATE.encode())
    for path in corpus_files():
        h.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def train_tokenizer(texts: list[str], vocab_size: int):
    """Byte-level BPE (GPT-2/Qwen style: no normaliser, no prefix space), so any text round-trips."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def wrap_tokenizer(tok):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
        chat_template=CHAT_TEMPLATE,
        clean_up_tokenization_spaces=False,
        model_max_length=2048,
        padding_side="right",
    )


def _warmup(model, tokenizer, steps: int, seed: int, seq_len: int = 128, batch_size: int = 8) -> float:
    """A short causal-LM pass over the bank rendered as chats; returns the final loss."""
    import torch

    chats = bank_dialogues()
    if not chats or steps <= 0:
        return float("nan")
    ids: list[int] = []
    for chat in chats:
        ids.extend(tokenizer.apply_chat_template(chat, tokenize=True, return_dict=False))
    data = torch.tensor(ids[: len(ids) // seq_len * seq_len]).view(-1, seq_len)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=5e-3, total_steps=steps, pct_start=0.1)
    model.train()
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        batch = data[torch.randint(len(data), (batch_size,), generator=generator)]
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
    model.eval()
    return float(loss.detach())


def build_tiny_ko(cfg: ModelBuildConfig | None = None) -> Path:
    """Build (or find in the cache) the ``tiny-ko`` directory and return its path."""
    cfg = cfg or ModelBuildConfig()
    root = cache_root(cfg.cache_dir)
    target = root / f"tiny-ko-{build_key(cfg)}"
    if (target / "config.json").exists() and not cfg.force:
        return target

    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    started = time.perf_counter()
    tokenizer = wrap_tokenizer(train_tokenizer(corpus_texts(), cfg.vocab_size))
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_hidden_layers,
        num_attention_heads=cfg.num_attention_heads,
        num_key_value_heads=cfg.num_key_value_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        torch_dtype="float32",
    )
    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed)
        model = Qwen2ForCausalLM(config)
        # Wider embeddings than the default 0.02: with tied weights they bound how sharp the next-token
        # distribution can get, and a LoRA (which never touches them) must be able to make one start likely.
        torch.nn.init.normal_(model.model.embed_tokens.weight, std=cfg.embedding_std)
        threads = torch.get_num_threads()
        torch.set_num_threads(2)  # a fixed thread count keeps the float sums, and so the weights, reproducible
        try:
            loss = _warmup(model, tokenizer, cfg.warmup_steps, cfg.seed)
        finally:
            torch.set_num_threads(threads)
    model.generation_config.eos_token_id = config.eos_token_id
    model.generation_config.pad_token_id = config.pad_token_id

    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".tiny-ko-"))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        info = {"name": "tiny-ko", "key": target.name, "parameters": count_parameters(model),
                "warmup_loss": None if loss != loss else round(loss, 4), "build_seconds": round(time.perf_counter() - started, 2),
                "config": {k: v for k, v in asdict(cfg).items() if k not in ("cache_dir", "force")}}
        (tmp / "korlora.json").write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target



def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def build_command(cfg: ModelBuildConfig) -> int:
    """``korlora model build NAME``: build tiny-ko or a real model into the cache and print its directory."""
    if cfg.name == "tiny-ko":
        path = build_tiny_ko(cfg)
    else:
        from korlora.models.real import build_real_model

        path = build_real_model(cfg.name, cfg.cache_dir, cfg.force)
    info = json.loads((path / "korlora.json").read_text(encoding="utf-8"))
    print(path)
    if "parameters" in info:
        print(f"parameters: {info['parameters']:,}")
    if "license" in info:
        print(f"license: {info['license']}")
    return 0
