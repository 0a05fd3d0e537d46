"""Using a trained adapter: ``korlora chat`` (answers with the chat template) and ``korlora export``
(the adapter merged into its base as one safetensors model).

:func:`generate_answers` is the one batched generation path of the package; the diagnosis stage reuses it,
so what ``chat`` prints is exactly what a diagnosis measures.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

from korlora.errors import KorloraError
from korlora.models import TINY_KO, resolve_model_path
from korlora.train.config import ChatConfig, ExportConfig

log = logging.getLogger(__name__)

Conversation = list[dict[str, str]]
DTYPES = ("auto", "float32", "bfloat16", "float16")


def _torch_dtype(name: str | None):
    """None: bf16 on a bf16 GPU, float32 elsewhere; ``auto``: the checkpoint's own dtype; else that dtype."""
    import torch

    if name is None:
        return torch.bfloat16 if torch.cuda.is_available() and torch.cuda.is_bf16_supported() else torch.float32
    if name not in DTYPES:
        raise KorloraError(f"unknown dtype {name!r}; choose from {', '.join(DTYPES)}")
    return name if name == "auto" else getattr(torch, name)


def adapter_base(adapter: str | os.PathLike) -> str:
    """The base model an adapter was trained on, as ``from_pretrained`` needs it.

    Adapters trained on ``tiny-ko`` record its cache directory; when that directory is gone (another cache,
    a cleaned home), the embedded model is rebuilt instead of failing.
    """
    config_file = Path(adapter) / "adapter_config.json"
    if not config_file.is_file():
        raise KorloraError(f"{adapter} is not a LoRA adapter directory (no adapter_config.json)")
    base = json.loads(config_file.read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not base:
        raise KorloraError(f"{config_file} names no base model; pass --model_name_or_path")
    if Path(base).expanduser().exists() or not base.startswith(("/", ".", "~")):
        return base  # a local directory, or a hub name
    if Path(base).name.startswith(f"{TINY_KO}-"):
        log.warning("the adapter's base %s is gone; using the embedded tiny-ko", base)
        return TINY_KO
    raise KorloraError(f"the adapter's base model {base} does not exist here; pass --model_name_or_path")


def load_for_inference(adapter: str | None, model_name_or_path: str | None, *, dtype: str | None = None,
                       device: str | None = None, trust_remote_code: bool = False):
    """Return ``(model, tokenizer)`` in eval mode: a base model, or a base with a LoRA adapter on top.

    ``model_name_or_path`` overrides the base recorded in the adapter. The tokenizer comes from the adapter
    directory when training saved one there (it may carry a patched chat template), else from the base.
    ``dtype``: None picks bf16 on a bf16 GPU and float32 elsewhere; ``auto`` keeps the checkpoint's dtype.
    """
    import torch
    from transformers import AutoModelForCausalLM

    from korlora.train.model import load_tokenizer

    if not adapter and not model_name_or_path:
        raise KorloraError("give an adapter or a model")
    base = model_name_or_path or adapter_base(adapter)
    base_path = resolve_model_path(base)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        model = AutoModelForCausalLM.from_pretrained(base_path, dtype=_torch_dtype(dtype),
                                                     trust_remote_code=trust_remote_code)
    except OSError as e:  # not on disk and not downloadable (offline, a typo, a gated repo)
        raise KorloraError(f"cannot load the base model {base}: {e}") from None
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter, is_trainable=False)
    model.to(device).eval()
    has_tokenizer = adapter and (Path(adapter) / "tokenizer_config.json").is_file()
    tokenizer = load_tokenizer(adapter if has_tokenizer else base_path, trust_remote_code)
    if not tokenizer.chat_template:
        raise KorloraError(f"the tokenizer of {adapter or base} has no chat template")
    return model, tokenizer


def forward_last(model, keep: int | None, **inputs):
    """The model's output, projecting only the last ``keep`` positions onto the vocabulary where the model supports
    ``logits_to_keep`` (a 262k vocabulary times every position of a batch would not fit)."""
    if keep is None:
        return model(**inputs)
    try:
        return model(**inputs, logits_to_keep=keep)
    except TypeError:
        return model(**inputs)


def _stop_ids(model, tokenizer) -> list[int]:
    """End-of-turn ids: the chat template's end of turn, the tokenizer's eos and the generation config's
    (Qwen2.5 base ends turns with <|im_end|> but its eos is <|endoftext|>)."""
    from korlora.models.check import inspect_chat_template

    found = inspect_chat_template(tokenizer, model.generation_config).stop_ids
    if found:
        return found
    ids = model.generation_config.eos_token_id
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def generate_answers(model, tokenizer, prompts: list[str | Conversation], system: str | None = None,
                     max_new_tokens: int = 256, temperature: float = 0.0, top_p: float = 0.9, seed: int = 0,
                     num_return_sequences: int = 1, batch_size: int = 16) -> list[list[str]]:
    """Answer each prompt with the chat template; ``result[i]`` holds ``num_return_sequences`` answers
    (see :func:`generate_with_stops`)."""
    return [[text for text, _ in answers] for answers in generate_with_stops(
        model, tokenizer, prompts, system, max_new_tokens, temperature, top_p, seed, num_return_sequences, batch_size)]


def generate_with_stops(model, tokenizer, prompts: list[str | Conversation], system: str | None = None,
                        max_new_tokens: int = 256, temperature: float = 0.0, top_p: float = 0.9, seed: int = 0,
                        num_return_sequences: int = 1, batch_size: int = 16) -> list[list[tuple[str, bool]]]:
    """Answer each prompt with the chat template; ``result[i]`` holds ``num_return_sequences`` pairs
    ``(answer, stopped)``: ``stopped`` when the model ended its turn itself, before ``max_new_tokens``.

    A prompt is a user message or a whole conversation (list of ``{"role", "content"}``). Batches are
    left-padded so every row's answer starts at the same column; greedy when ``temperature == 0``. Only the
    new tokens are decoded, without special tokens and not stripped: how an answer starts (a newline, a
    space, punctuation) is what the diagnosis measures.
    """
    import torch

    if temperature < 0:
        raise KorloraError("temperature must be >= 0")
    sample = temperature > 0
    if num_return_sequences > 1 and not sample:
        raise KorloraError("several answers per prompt need temperature > 0 (greedy answers are all the same)")
    conversations = []
    for prompt in prompts:
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        if system and messages[0]["role"] != "system":
            messages = [{"role": "system", "content": system}, *messages]
        conversations.append(messages)
    texts = [tokenizer.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in conversations]
    gen_kwargs = {"max_new_tokens": max_new_tokens, "do_sample": sample,
                  "num_return_sequences": num_return_sequences, "eos_token_id": _stop_ids(model, tokenizer),
                  "pad_token_id": tokenizer.pad_token_id}
    if sample:
        gen_kwargs.update(temperature=temperature, top_p=top_p)
    else:  # keep a checkpoint's sampling defaults from leaking into greedy decoding (and its warnings)
        gen_kwargs.update(temperature=None, top_p=None, top_k=None)
    answers: list[list[tuple[str, bool]]] = []
    stop_ids = gen_kwargs["eos_token_id"]
    device = next(model.parameters()).device
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.inference_mode():
        torch.manual_seed(seed)
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], return_tensors="pt", padding=True,
                              padding_side="left", add_special_tokens=False).to(device)
            out = model.generate(**batch, **gen_kwargs)
            new = out[:, batch["input_ids"].shape[1]:]
            decoded = tokenizer.batch_decode(new, skip_special_tokens=True)
            stopped = torch.isin(new, torch.tensor(stop_ids, device=new.device)).any(-1).tolist()
            pairs = list(zip(decoded, stopped, strict=True))
            answers += [pairs[i:i + num_return_sequences] for i in range(0, len(pairs), num_return_sequences)]
    return answers


def chat_command(cfg: ChatConfig) -> int:
    """One answer per ``--prompt``; without prompts, a conversation on the terminal (empty line ends it)."""
    model, tokenizer = load_for_inference(cfg.adapter, cfg.model_name_or_path)
    settings = {"system": cfg.system, "max_new_tokens": cfg.max_new_tokens, "temperature": cfg.temperature,
                "top_p": cfg.top_p, "seed": cfg.seed}
    if cfg.prompt:
        answers = generate_answers(model, tokenizer, list(cfg.prompt), **settings)
        for prompt, (answer,) in zip(cfg.prompt, answers, strict=True):
            if len(cfg.prompt) > 1:
                print(f"> {prompt}")
            print(answer)
        return 0
    print("대화를 시작합니다. 빈 줄이나 Ctrl-D로 끝내고, /reset으로 대화를 비웁니다.")
    history: Conversation = []
    while True:
        try:
            line = input("> ").strip()
        except EOFError:
            print()
            break
        if not line:
            break
        if line == "/reset":
            history = []
            continue
        history.append({"role": "user", "content": line})
        (answer,), = generate_answers(model, tokenizer, [history], **settings)
        history.append({"role": "assistant", "content": answer})
        print(answer)
    return 0


def _replace_dir(tmp: Path, out: Path) -> None:
    """Move ``tmp`` to ``out``; an existing ``out`` is replaced only if it is empty or a saved model."""
    if out.exists():
        if out.is_file() or (any(out.iterdir()) and not (out / "config.json").is_file()):
            raise KorloraError(f"{out} exists and is not a model directory; choose another --out")
        shutil.rmtree(out)
    os.replace(tmp, out)


def export_command(cfg: ExportConfig) -> int:
    """Merge the adapter into its base (``merge_and_unload``) and save model and tokenizer as safetensors."""
    model, tokenizer = load_for_inference(cfg.adapter, None, dtype=cfg.dtype, device="cpu")
    merged = model.merge_and_unload()
    out = Path(cfg.out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))
    tmp.chmod(0o755)  # mkdtemp makes it private; the export is an ordinary model directory
    try:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        _replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(out)
    return 0
