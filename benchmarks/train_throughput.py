"""LoRA SFT training throughput: tokens/s, MFU and peak memory, TRL's defaults against korlora's profile.

Both profiles train the same model (random or embedded weights, LoRA on every linear projection, r=16,
alpha=32, dropout 0.05, AdamW on the adapter) on the same synthetic Korean chats, with the same loop
(forward with labels, backward, optimizer step). Each runs in its own process, so the peak memory of one
never shows in the other. What differs is what TRL's ``SFTConfig`` switches change:

- ``trl``: TRL's defaults for the data: no packing, rows padded to the longest in the batch by TRL's
  ``DataCollatorForLanguageModeling``, SDPA attention.
- ``korlora``: korlora's profile (``--packing`` with ``--profile h100``/``cpu``). GPU: bf16 weights,
  flash_attention_2 when ``flash_attn`` imports (else SDPA), TRL's best-fit-decreasing packing into
  ``seq_len`` rows and the padding-free collator (one flattened row with ``position_ids`` and
  ``cu_seq_lens``). CPU: the same packing and collator with SDPA and float32 (no bf16 on CPU); transformers
  builds a block-diagonal mask from the position ids, so packed sequences never attend to each other.

Precision is the same in both profiles on one device (GPU: bf16 weights, as transformers loads Qwen2.5 and
TRL trains it by default; CPU: float32). TRL's own default turns gradient checkpointing on; it is off in
both profiles here (``--gradient_checkpointing`` turns it on in both) so the comparison isolates data layout
and attention kernel.

FLOPs (model FLOPs of the real tokens only; padding, recomputation and attention across packed neighbours
are work but not counted). For each sequence of ``l`` real tokens in a step::

    flops(l) = (4 * N_base + 6 * N_lora) * l  +  6 * n_layers * d_attn * l * (l + 1)

- ``N_base``: weights of every frozen linear layer including the LM head (embeddings are lookups, not
  matmuls). Frozen weights cost 2 FLOPs per weight and token forward plus 2 for the activation gradients;
  they get no weight gradients.
- ``N_lora``: adapter weights (A and B); 2 forward + 2 activation gradients + 2 weight gradients.
- attention: causal, query ``i`` (1-based) scores ``i`` keys: QK^T and PV cost ``4 * i * d_attn`` forward
  and twice that backward; summed over ``i = 1..l`` that is ``6 * d_attn * l * (l + 1)`` per layer, with
  ``d_attn = n_heads * head_dim`` (query heads; grouped KV heads do not reduce it).

``MFU = achieved FLOP/s / (--peak_tflops * 1e12)``; ``--peak_tflops`` defaults to 989 (H100 SXM bf16
dense) on CUDA. On CPU MFU is reported as n/a unless ``--peak_tflops`` is given.

Data: chats from the content bank (``korlora.models.tiny_ko.bank_dialogues``) chained into
conversations and cut at lengths drawn log-uniformly from ``[seq_len/16, seq_len]``, tokenised with the
tiny-ko tokenizer through its chat template (its ids are valid in the Qwen2.5 shape's larger vocabulary).

Run (CPU, the embedded model; then GPU, Qwen2.5-1.5B's shape with random weights, no download)::

    python benchmarks/train_throughput.py --shape tiny-ko --seq_len 256 --batch_size 8 --steps 20 \\
        --warmup_steps 3 --out benchmarks/results_cpu_tiny_ko.json --results_md benchmarks/RESULTS.md
    python benchmarks/train_throughput.py --shape qwen2.5-1.5b --seq_len 2048 --batch_size 8 --steps 30 \\
        --warmup_steps 5 --out benchmarks/results_h100_qwen1.5b.json --results_md benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import platform
import random
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

SHAPES = {
    # Qwen2.5-1.5B: tied embeddings, GQA with 2 KV heads, q/k/v biases (Qwen2Config's defaults)
    "qwen2.5-1.5b": {"hidden_size": 1536, "intermediate_size": 8960, "num_hidden_layers": 28,
                     "num_attention_heads": 12, "num_key_value_heads": 2, "vocab_size": 151936,
                     "tie_word_embeddings": True, "max_position_embeddings": 32768},
}
LORA = {"r": 16, "alpha": 32, "dropout": 0.05}
FLOPS_FORMULA = "(4*N_base + 6*N_lora)*l + 6*n_layers*d_attn*l*(l+1) per sequence of l real tokens"


def synthetic_rows(tokenizer, seq_len: int, count: int, seed: int) -> list[list[int]]:
    """Token ids of ``count`` chats with log-uniform lengths in [seq_len/16, seq_len]."""
    from korlora.models.tiny_ko import bank_dialogues

    rng = random.Random(seed)
    chats = bank_dialogues()
    low = max(8, seq_len // 16)
    rows = []
    for _ in range(count):
        target = int(math.exp(rng.uniform(math.log(low), math.log(seq_len))))
        messages: list[dict] = []
        ids: list[int] = []
        while len(ids) < target:
            messages += rng.choice(chats)
            ids = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False)
        rows.append(list(ids[:target]))
    return rows


def build_model(shape: str, dtype, attn: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from korlora.models.tiny_ko import build_tiny_ko

    tiny = build_tiny_ko()
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    if shape == "tiny-ko":
        model = AutoModelForCausalLM.from_pretrained(tiny, dtype=dtype, attn_implementation=attn)
    else:
        config = Qwen2Config(**SHAPES[shape], attn_implementation=attn, dtype=dtype)
        torch.manual_seed(0)
        default = torch.get_default_dtype()
        torch.set_default_dtype(dtype)  # build in the target dtype on the target device: no fp32 copy first
        try:
            with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
                model = Qwen2ForCausalLM(config)
        finally:
            torch.set_default_dtype(default)
    return model, tokenizer


def model_flops_counts(model) -> dict[str, int]:
    """N_base (frozen linear weights incl. the LM head) and attention shape, before LoRA wraps the model."""
    import torch

    cfg = model.config
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    n_base = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    return {"n_base": n_base, "n_layers": cfg.num_hidden_layers, "d_attn": cfg.num_attention_heads * head_dim}


def sequence_flops(lengths: list[int], counts: dict[str, int]) -> float:
    per_token = 4 * counts["n_base"] + 6 * counts["n_lora"]
    attn = 6 * counts["n_layers"] * counts["d_attn"]
    return float(sum(per_token * n + attn * n * (n + 1) for n in lengths))


def make_batches(profile: str, rows: list[list[int]], batch_size: int, seq_len: int, steps: int,
                 pad_id: int, seed: int) -> list[tuple[dict, list[int], int]]:
    """``steps`` batches as TRL would build them: (collated tensors, real sequence lengths, positions).

    Packed rows are shuffled as the Trainer's sampler does: best-fit decreasing puts the longest
    sequences first, and taking packed rows in that order would skew the length mix.
    """
    import datasets
    from trl.data_utils import pack_dataset
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    datasets.disable_progress_bars()
    rows = [r[:seq_len] for r in rows]
    if profile == "korlora":
        packed = pack_dataset(datasets.Dataset.from_dict({"input_ids": rows}), seq_len, strategy="bfd")
        examples = [{"input_ids": r["input_ids"], "seq_lengths": r["seq_lengths"]} for r in packed]
        random.Random(seed).shuffle(examples)
        collator = DataCollatorForLanguageModeling(pad_token_id=pad_id, padding_free=True)
    else:
        examples = [{"input_ids": r, "seq_lengths": [len(r)]} for r in rows]
        collator = DataCollatorForLanguageModeling(pad_token_id=pad_id)
    needed = steps * batch_size
    if len(examples) < needed:
        raise SystemExit(f"{profile}: only {len(examples)} rows for {needed}; raise the synthetic row count")
    batches = []
    for start in range(0, needed, batch_size):
        group = examples[start:start + batch_size]
        lengths = [n for e in group for n in e["seq_lengths"]]
        feed = [{"input_ids": e["input_ids"]} if profile == "trl" else e for e in group]
        batch = collator(feed)
        batches.append((batch, lengths, batch["input_ids"].numel()))
    return batches


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def run_profile(profile: str, args: dict[str, Any], rows: list[list[int]]) -> dict[str, Any]:
    """Train ``warmup_steps + steps`` steps of one profile and measure the timed ones."""
    import importlib.util
    import resource

    import torch
    from peft import get_peft_model

    from korlora.train.model import lora_config

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    dtype = torch.bfloat16 if cuda else torch.float32
    flash = cuda and importlib.util.find_spec("flash_attn") is not None
    attn = "flash_attention_2" if profile == "korlora" and flash else "sdpa"
    torch.manual_seed(args["seed"])
    if args["threads"]:
        torch.set_num_threads(args["threads"])

    model, tokenizer = build_model(args["shape"], dtype, attn)
    counts = model_flops_counts(model)
    model = get_peft_model(model, lora_config(model, LORA["r"], LORA["alpha"], LORA["dropout"], None))
    counts["n_lora"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    model.to(device).train()
    if args["gradient_checkpointing"]:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    total = args["warmup_steps"] + args["steps"]
    batches = make_batches(profile, rows, args["batch_size"], args["seq_len"], total, tokenizer.pad_token_id,
                           args["seed"])

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    times, tokens, positions, flops = [], 0, 0, 0.0
    rss_before = rss_mb()
    for step, (batch, lengths, n_positions) in enumerate(batches):
        if step == args["warmup_steps"]:
            sync()
            if cuda:
                torch.cuda.reset_peak_memory_stats()
        feed = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
        sync()
        started = time.perf_counter()
        loss = model(**feed).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        sync()
        if step >= args["warmup_steps"]:
            times.append(time.perf_counter() - started)
            tokens += sum(lengths)
            positions += n_positions
            flops += sequence_flops(lengths, counts)
    elapsed = sum(times)
    achieved = flops / elapsed
    peak = args["peak_tflops"]
    result = {
        "profile": profile,
        "device": torch.cuda.get_device_name() if cuda else f"CPU ({torch.get_num_threads()} threads)",
        "dtype": str(dtype).removeprefix("torch."),
        "attn_implementation": attn,
        "packing": profile == "korlora",
        "padding_free": profile == "korlora",
        "steps_timed": len(times),
        "seconds_per_step": elapsed / len(times),
        "real_tokens_per_step": tokens / len(times),
        "pad_share": 1 - tokens / positions,
        "tokens_per_s": tokens / elapsed,
        "achieved_tflops": achieved / 1e12,
        "mfu": achieved / (peak * 1e12) if peak else None,
        "final_loss": float(loss.detach()),
        **{k: counts[k] for k in ("n_base", "n_lora", "n_layers", "d_attn")},
    }
    if cuda:
        result["peak_memory_mb"] = torch.cuda.max_memory_allocated() / 2**20
    else:  # the child's peak resident set; its size after setup shows the share of model and runtime
        result["peak_memory_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        result["rss_after_setup_mb"] = rss_before
    return result


def _child(profile: str, args: dict[str, Any], rows: list[list[int]], queue) -> None:
    try:
        queue.put(run_profile(profile, args, rows))
    except BaseException as e:  # noqa: BLE001 - report any failure to the parent instead of hanging it
        queue.put({"profile": profile, "error": f"{type(e).__name__}: {e}"})


def markdown_table(results: list[dict[str, Any]]) -> str:
    lines = ["| profile | run | dtype | attention | packing | real tokens/step | pad share | s/step | tokens/s "
             "| TFLOP/s | MFU | peak memory (MB) |",
             "|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['profile']} | {r['run']} | failed: {r['error']} |" + " |" * 9)
            continue
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "n/a"
        lines.append(f"| {r['profile']} | {r['run']} | {r['dtype']} | {r['attn_implementation']} | "
                     f"{'padding-free BFD' if r['packing'] else 'no (padded)'} | {r['real_tokens_per_step']:.0f} | "
                     f"{r['pad_share']:.1%} | {r['seconds_per_step']:.3f} | {r['tokens_per_s']:,.0f} | "
                     f"{r['achieved_tflops']:.4f} | {mfu} | {r['peak_memory_mb']:,.0f} |")
    median = {p: statistics.median(r["tokens_per_s"] for r in results if r["profile"] == p and "error" not in r)
              for p in ("trl", "korlora") if any(r["profile"] == p and "error" not in r for r in results)}
    if len(median) == 2:
        lines.append(f"\nkorlora / trl tokens/s (medians over runs): {median['korlora'] / median['trl']:.2f}×")
    return "\n".join(lines)


def update_results_md(path: Path, title: str, body: str) -> None:
    """Replace the ``## title`` section of ``path`` (or append it), keeping every other section."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    path.write_text(text.rstrip("\n") + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--shape", choices=["tiny-ko", *SHAPES], default="tiny-ko")
    parser.add_argument("--seq_len", type=int, default=256, help="longest row; packed rows hold this many tokens")
    parser.add_argument("--batch_size", type=int, default=8, help="rows (padded or packed) per step")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per profile")
    parser.add_argument("--warmup_steps", type=int, default=3, help="untimed steps first")
    parser.add_argument("--peak_tflops", type=float, default=None,
                        help="peak of the device for MFU (default: 989 on CUDA, H100 bf16 dense; none on CPU)")
    parser.add_argument("--profiles", nargs="+", choices=["trl", "korlora"], default=["trl", "korlora"])
    parser.add_argument("--repeats", type=int, default=1,
                        help="run the profiles this many times, alternating (a shared machine's load drifts)")
    parser.add_argument("--gradient_checkpointing", action="store_true", help="in both profiles")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="results.json", help="JSON with every figure and the settings")
    parser.add_argument("--results_md", default=None, help="also write the table into this markdown file")
    args = parser.parse_args(argv)

    import torch
    import transformers
    import trl
    from transformers import AutoTokenizer

    from korlora.models.tiny_ko import build_tiny_ko

    cuda = torch.cuda.is_available()
    if args.peak_tflops is None and cuda:
        args.peak_tflops = 989.0
    settings = vars(args).copy()
    tokenizer = AutoTokenizer.from_pretrained(build_tiny_ko())  # built here once, not in each child
    # enough rows for the packed profile: every packed row holds several sequences
    n_rows = (args.warmup_steps + args.steps) * args.batch_size * 16
    rows = synthetic_rows(tokenizer, args.seq_len, n_rows, args.seed)

    load_before = os.getloadavg()
    results = []
    ctx = mp.get_context("spawn")
    for repeat in range(args.repeats):
        for profile in args.profiles:
            queue = ctx.Queue()
            proc = ctx.Process(target=_child, args=(profile, settings, rows, queue))
            proc.start()
            results.append({**queue.get(), "run": repeat + 1})
            proc.join()
            print(json.dumps(results[-1], indent=2), flush=True)

    machine = {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
               "torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
               "cuda": torch.cuda.get_device_name() if cuda else None,
               # other work on the machine slows a CPU run: the 1-minute load average before and after
               "load_average_1m": [round(load_before[0], 2), round(os.getloadavg()[0], 2)]}
    command = "python " + " ".join([Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])])
    report = {"command": command, "machine": machine, "settings": settings, "lora": LORA,
              "flops_formula": FLOPS_FORMULA, "flops_counted": "real (non-pad) tokens only", "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    table = markdown_table(results)
    print(table)
    if args.results_md:
        where = "GPU" if cuda else "CPU"
        load = machine["load_average_1m"]
        body = (f"Machine: {machine['cuda'] or f'{os.cpu_count()} CPU cores'}, torch {machine['torch']}, "
                f"transformers {machine['transformers']}, trl {machine['trl']}; 1-minute load average "
                f"{load[0]} before, {load[1]} after the run.\n\n"
                f"Command:\n\n```\n{command}\n```\n\n{table}\n\n"
                f"FLOPs: {FLOPS_FORMULA} (see the script's docstring); only real tokens counted. "
                f"A packed step holds more real tokens than a padded one, so an epoch takes fewer optimizer "
                f"steps: compare tokens/s, not s/step. "
                + ("Peak memory: the largest resident set of the profile's own process (Python, torch and the "
                   "model included: about 0.5 GB right after setup). " if not cuda else
                   "Peak memory: torch.cuda.max_memory_allocated over the timed steps. ")
                + f"Figures: `{args.out}`.\n")
        if not cuda:
            body += ("\nThe GPU table (H100, Qwen2.5-1.5B shape, seq 2048: bf16 + flash-attention-2 + padding-free "
                     "packing against TRL's defaults) is not measured here: no GPU was available. On an H100:\n\n"
                     "```\npython benchmarks/train_throughput.py --shape qwen2.5-1.5b --seq_len 2048 --batch_size 8 "
                     "--steps 30 --warmup_steps 5 --out benchmarks/results_h100_qwen1.5b.json "
                     "--results_md benchmarks/RESULTS.md\n```\n")
        update_results_md(Path(args.results_md), f"Training throughput ({where}, {args.shape})", body)
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
