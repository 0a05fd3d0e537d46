"""Loading the base model for LoRA: device, dtype, attention kernel, 4-bit, target modules."""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass

from korlora.errors import KorloraError

log = logging.getLogger(__name__)


@dataclass
class Hardware:
    """What the process that runs the model chose: device, bf16, attention kernel, 4-bit loading."""

    device: str
    bf16: bool
    attn_implementation: str
    use_4bit: bool

    def describe(self) -> str:
        return (f"{self.device} · {'bf16' if self.bf16 else 'float32'} · {self.attn_implementation}"
                f"{' · 4-bit NF4' if self.use_4bit else ''}")


def choose_attention(requested: str, cuda: bool) -> str:
    """flash_attention_2 when asked for (or on ``auto``) and importable on a GPU, else SDPA."""
    flash = cuda and importlib.util.find_spec("flash_attn") is not None
    if requested == "flash_attention_2" and not flash:
        log.warning("flash_attention_2 is not available here (needs CUDA and flash-attn); using sdpa")
        return "sdpa"
    if requested == "auto":
        return "flash_attention_2" if flash else "sdpa"
    return requested


def resolve_hardware(attn_implementation: str = "auto", bf16: bool | None = None, use_4bit: bool = False) -> Hardware:
    """Decide device, dtype, attention and 4-bit from what *this* process sees. Call it where the model is
    loaded (a Ray Train worker, a diagnosis task), never on a driver that may have no GPU."""
    import torch

    cuda = torch.cuda.is_available()
    if use_4bit:
        if not cuda:
            raise KorloraError("--use_4bit (QLoRA) needs a CUDA GPU; none is visible to this worker")
        if importlib.util.find_spec("bitsandbytes") is None:
            raise KorloraError("--use_4bit needs bitsandbytes: pip install 'korlora[gpu]'")
    supported = cuda and torch.cuda.is_bf16_supported()
    if bf16 is None:
        bf16 = supported
    elif bf16 and not supported:
        raise KorloraError("--bf16 was asked for but this worker has no GPU with bf16"
                           + ("" if cuda else " (no CUDA device is visible)"))
    return Hardware("cuda" if cuda else "cpu", bool(bf16), choose_attention(attn_implementation, cuda), use_4bit)


def load_base_model(path: str, hardware: Hardware, trust_remote_code: bool = False):
    import torch
    from transformers import AutoModelForCausalLM

    kwargs = {"attn_implementation": hardware.attn_implementation, "trust_remote_code": trust_remote_code,
              "dtype": torch.bfloat16 if hardware.bf16 else torch.float32}
    if hardware.use_4bit:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16 if hardware.bf16 else torch.float16)
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if hardware.use_4bit:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model)
    return model


def load_tokenizer(path: str, trust_remote_code: bool = False):
    """The tokenizer, with a pad token that is not the end-of-turn token (else padding would mask the very
    token that teaches the model to stop): the family's own pad token where it has one, else eos."""
    from transformers import AutoTokenizer

    from korlora.models.check import inspect_chat_template

    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.chat_template:
        suggested = inspect_chat_template(tokenizer).suggested_pad_token
        if suggested:
            tokenizer.pad_token = suggested
    return tokenizer


def linear_target_modules(model) -> list[str]:
    """Names of every linear projection except the LM head (and other output heads), for LoRA."""
    import torch

    output_layer = model.get_output_embeddings()
    names = set()
    for name, module in model.named_modules():
        if module is output_layer or name.split(".")[-1] in ("lm_head", "score", "classifier"):
            continue
        if isinstance(module, torch.nn.Linear) or type(module).__name__ in ("Linear4bit", "Linear8bitLt"):
            names.add(name.split(".")[-1])
    if not names:
        raise KorloraError("found no linear layers to adapt; pass --target_modules")
    return sorted(names)


def lora_config(model, r: int, alpha: int, dropout: float, target_modules: list[str] | None):
    from peft import LoraConfig

    return LoraConfig(r=r, lora_alpha=alpha, lora_dropout=dropout, bias="none", task_type="CAUSAL_LM",
                      target_modules=target_modules or linear_target_modules(model))
