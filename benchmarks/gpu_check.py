"""``make gpu-check``: what only a CUDA GPU can check, in one command with no network, as a pass/fail table.

Checks, in order (each in its own process with a time limit, so one that fails, hangs or breaks the CUDA
context never stops the others; the peak GPU memory is read device-wide through NVML, Ray workers included):

- ``prepare``: the model (the largest of gemma3-270m > smollm2-135m > tiny-ko whose packages are installed, or
  ``--model``) and 400 chats from the content bank (plus a "legacy" copy with broken answer starts).
- ``train_bf16``: ``run_training`` on Ray Train with one GPU worker, bf16, flash_attention_2 when ``flash_attn``
  imports, else SDPA; passes when the worker reports cuda/bf16/that kernel and the logged loss went down.
- ``train_qlora``: the same with ``use_4bit`` (bitsandbytes NF4 base, bf16 compute).
- ``diagnose``: ``diagnose_here`` on the train_bf16 adapter; passes when the model ran on cuda in bfloat16.
- ``relearn``: ``run_relearn`` end to end (clean → rebalance → no-warning → correction → merge → train →
  diagnose) on the legacy copy, MLflow in ``<out>/mlflow.db``; passes when every stage ran and the diagnosis
  after training ran on the GPU.
- ``throughput``: ``benchmarks/train_throughput.py`` (a subprocess): "trl" defaults against the "korlora"
  profile on Qwen2.5-1.5B's shape (random weights, no download), seq 2048: tokens/s, MFU, peak memory.

Results: ``<out>/results.json`` and ``<out>/results.md`` (default ``runs/gpu-check/``), each check's log in
``<out>/<check>/log.txt``. Exit code: 0 when every check passed, 1 when one did not, 3 without a CUDA device
(every check is then reported "skip: no CUDA device": nothing was checked).

Run::

    make gpu-check                                   # = .venv/bin/python benchmarks/gpu_check.py
    python3 benchmarks/gpu_check.py --out runs/gpu-check --checks train_bf16 diagnose   # a subset
    python3 benchmarks/gpu_check.py --model tiny-ko --budget_s 300                       # smaller, faster

Without internet (a lent GPU machine) carry wheels: korlora's own dependencies (``pip download -d wheels
'ray[data,train,tune,default]==2.60.0' trl peft datasets mlflow kiwipiepy ...``), ``bitsandbytes`` (manylinux
x86_64), a prebuilt ``flash_attn`` wheel matching that machine's torch/CUDA/Python if one exists (else the
check reports SDPA), and the torch CUDA build of the machine (keep the one installed there); then
``pip install --no-index --find-links wheels ...``. See ``benchmarks/GPU_CHECK.md``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUTS = {"prepare": 240, "train_bf16": 180, "train_qlora": 180, "diagnose": 120, "relearn": 300,
            "throughput": 300}
CHECKS = [c for c in TIMEOUTS if c != "prepare"]
MODELS = ["gemma3-270m", "smollm2-135m", "tiny-ko"]  # largest first


class Skip(Exception):
    """A check that cannot run here (a package is missing): not a pass."""


def _first_line(e: BaseException) -> str:
    return f"{type(e).__name__}: {(str(e).strip().splitlines() or [''])[0]}"[:300]


# ── the checks (each runs in a child process: ``--one NAME``) ─────────────────────────────────────────────

def check_prepare(a: argparse.Namespace, work: Path) -> tuple[str, dict]:
    from korlora.data.build import build_dialogues
    from korlora.data.config import BuildConfig
    from korlora.io import write_jsonl
    from korlora.models import resolve_model_path
    from korlora.relearn.demo import make_legacy

    notes, model = [], None
    for name in MODELS if a.model == "auto" else [a.model]:
        try:
            if name != "tiny-ko" and a.model == "auto":
                from korlora.models.real import REAL_MODELS  # ImportError: not in this korlora yet

                missing = [m for m in (REAL_MODELS[name].module, "gguf") if importlib.util.find_spec(m) is None]
                if missing:
                    raise Skip(f"{', '.join(missing)} not installed")
            resolve_model_path(name)
            model = name
            break
        except Exception as e:  # noqa: BLE001 - fall back to the next model and say why
            notes.append(f"{name}: {_first_line(e)}")
    if model is None:
        raise RuntimeError("no model could be built: " + "; ".join(notes))
    rows = build_dialogues(BuildConfig(output=str(work / "sft.jsonl"), num_rows=a.rows, report=False))
    write_jsonl(work / "sft.jsonl", rows)
    write_jsonl(work / "legacy.jsonl", make_legacy(rows, 0.5, 0.15, 42))
    note = f" (fallback; {'; '.join(notes)})" if notes else ""
    return f"model {model}{note} · {len(rows)} chats", {"model": model}


def _learning_rate(model: str) -> float:
    return 3e-3 if model == "tiny-ko" else 2e-4  # tiny-ko is from scratch: the demo's rate


def _train(a: argparse.Namespace, work: Path, use_4bit: bool) -> tuple[str, dict]:
    from mlflow import MlflowClient

    from korlora.train.config import TrainConfig
    from korlora.train.driver import run_training

    if use_4bit and importlib.util.find_spec("bitsandbytes") is None:
        raise Skip("bitsandbytes is not installed")
    data = Path(a.out) / "prepare" / "sft.jsonl"
    result = run_training(TrainConfig(
        model_name_or_path=a.model, data_file=str(data), output_dir=str(work / "adapter"),
        storage_path=str(work / "ray_results"), max_steps=a.steps, save_steps=a.steps,
        logging_steps=max(1, a.steps // 5), per_device_train_batch_size=8, gradient_accumulation_steps=1,
        max_length=512, learning_rate=_learning_rate(a.model), use_4bit=use_4bit, bf16=True,
        attn_implementation="auto", mlflow=True, experiment_name="gpu-check", use_gpu=True))
    hw = result.hardware
    attn = "flash_attention_2" if importlib.util.find_spec("flash_attn") else "sdpa"
    losses = []
    if result.mlflow_run_id:
        history = MlflowClient().get_metric_history(result.mlflow_run_id, "loss")
        losses = [m.value for m in sorted(history, key=lambda m: m.step)]
    losses = losses or [result.metrics.get("train_loss_final", math.nan)]
    detail = (f"{'bf16' if hw.get('bf16') else 'float32'} · {hw.get('attn_implementation')}"
              f"{' · 4-bit NF4' if hw.get('use_4bit') else ''} · {a.model} · loss {losses[0]:.2f}→{losses[-1]:.2f}")
    wrong = [f"{k}={hw.get(k)!r} (expected {v!r})" for k, v in
             {"device": "cuda", "bf16": True, "attn_implementation": attn, "use_4bit": use_4bit}.items()
             if hw.get(k) != v]
    if wrong:
        raise RuntimeError(f"the worker chose {', '.join(wrong)}")
    if not all(math.isfinite(x) for x in losses) or (len(losses) > 1 and losses[-1] >= losses[0]):
        raise RuntimeError(f"loss did not go down: {detail}")
    if not (work / "adapter" / "adapter_config.json").is_file():
        raise RuntimeError("no adapter was written")
    return detail, {"hardware": hw, "losses": losses, "metrics": result.metrics}


def check_train_bf16(a: argparse.Namespace, work: Path) -> tuple[str, dict]:
    return _train(a, work, use_4bit=False)


def check_train_qlora(a: argparse.Namespace, work: Path) -> tuple[str, dict]:
    return _train(a, work, use_4bit=True)


def check_diagnose(a: argparse.Namespace, work: Path) -> tuple[str, dict]:
    import torch

    from korlora.diagnose.config import DiagnoseConfig
    from korlora.diagnose.report import diagnose_here

    adapter = Path(a.out) / "train_bf16" / "adapter"
    adapter = adapter if (adapter / "adapter_config.json").is_file() else None
    report = diagnose_here(DiagnoseConfig(model_name_or_path=a.model, adapter=str(adapter) if adapter else None,
                                          output_dir=str(work), samples=1, max_new_tokens=16))
    ran = report["ran_on"]
    detail = (f"{ran['device']} · {ran['dtype']} · {report['prompts']} prompts · "
              f"{'train_bf16 adapter' if adapter else 'base model'} · next-token Hangul mass "
              f"{report['next_token']['hangul_mass']:.0%} · greedy Hangul start "
              f"{report['greedy']['hangul_start_share']:.0%} · torch peak "
              f"{torch.cuda.max_memory_allocated() / 2**20:,.0f} MiB")
    if not ran["device"].startswith("cuda") or ran["dtype"] != "bfloat16":
        raise RuntimeError(f"the diagnosis ran on {ran['device']} in {ran['dtype']}, not cuda/bfloat16")
    return detail, {"ran_on": ran, "next_token_hangul_mass": report["next_token"]["hangul_mass"],
                    "greedy": report["greedy"]}


def check_relearn(a: argparse.Namespace, work: Path) -> tuple[str, dict]:
    from korlora.config import load_config
    from korlora.relearn.config import RelearnConfig
    from korlora.relearn.pipeline import run_relearn

    result = run_relearn(load_config(
        RelearnConfig, None, data_file=str(Path(a.out) / "prepare" / "legacy.jsonl"), run_dir=str(work / "run"),
        model_name_or_path=a.model, no_warning_rows=120, correction_rows=120, max_steps=a.steps,
        save_steps=a.steps, per_device_train_batch_size=8, max_length=256, diagnose_samples=0,
        diagnose_max_new_tokens=16, learning_rate=_learning_rate(a.model), experiment_name="gpu-check",
        use_gpu=True))
    stages = {s["stage"]: s["status"] for s in result["stages"]}
    expected = ["diagnose_before", "clean", "rebalance", "no_warning", "correction", "merge", "train",
                "diagnose_after"]
    missing = [s for s in expected if stages.get(s) != "ran"]
    after = json.loads((work / "run" / "diagnose_after" / "diagnosis.json").read_text(encoding="utf-8"))
    before, done = result["before"], result["after"]
    detail = (f"{len(stages)} stages · disclaimer start {before.get('disclaimer_start_share', math.nan):.0%}→"
              f"{done.get('disclaimer_start_share', math.nan):.0%} · diagnosed on {after['ran_on']['device']}"
              f" (Ray GPU ids {after['ran_on'].get('gpu_ids')})")
    if missing:
        raise RuntimeError(f"stages not run: {', '.join(missing)}")
    if not after["ran_on"]["device"].startswith("cuda"):
        raise RuntimeError(f"the diagnosis after training ran on {after['ran_on']['device']}")
    return detail, {"stages": stages, "before": before, "after": done}


def check_throughput(a: argparse.Namespace, work: Path) -> tuple[str, dict]:
    script = ROOT / "benchmarks" / "train_throughput.py"
    cmd = [sys.executable, str(script), "--shape", "qwen2.5-1.5b", "--seq_len", "2048",
           "--batch_size", str(a.throughput_batch), "--steps", str(a.throughput_steps), "--warmup_steps", "3",
           "--out", str(work / "results.json")]
    proc = subprocess.run(cmd, cwd=ROOT, timeout=TIMEOUTS["throughput"] - 20)
    if not (work / "results.json").is_file():
        raise RuntimeError(f"train_throughput.py exited {proc.returncode} without results (see log.txt)")
    results = json.loads((work / "results.json").read_text(encoding="utf-8"))["results"]
    parts = [f"{r['profile']}: " + (f"failed ({r['error'][:120]})" if "error" in r else
             f"{r['attn_implementation']} {r['tokens_per_s']:,.0f} tok/s · MFU "
             f"{'n/a' if r['mfu'] is None else format(r['mfu'], '.1%')} · peak {r['peak_memory_mb'] / 1024:.1f} GiB")
             for r in results]
    detail = " ; ".join(parts)
    if proc.returncode != 0 or any("error" in r for r in results):
        raise RuntimeError(detail)
    spec = importlib.util.spec_from_file_location("train_throughput", script)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return detail, {"results": results, "table": bench.markdown_table(results)}


def run_one(a: argparse.Namespace) -> int:
    """Child mode: run one check, write ``<out>/<name>/result.json``."""
    work = Path(a.out) / a.one
    record: dict = {"name": a.one}
    try:
        detail, extra = globals()[f"check_{a.one}"](a, work)
        record.update(status="pass", detail=detail, extra=extra)
    except Skip as e:
        record.update(status="skip", detail=str(e))
    except BaseException as e:  # noqa: BLE001 - every failure becomes a row of the table
        import traceback

        traceback.print_exc()
        record.update(status="fail", detail=_first_line(e))
    (work / "result.json").write_text(json.dumps(record, indent=2, default=str, ensure_ascii=False) + "\n")
    return 0


# ── the parent: one child per check, the memory sampler, the table ──────────────────────────────────────────

def gpu_query(field: str) -> str:
    """One field of GPU 0 from nvidia-smi (the parent never creates a CUDA context of its own)."""
    return subprocess.run(["nvidia-smi", f"--query-gpu={field}", "--format=csv,noheader,nounits", "-i", "0"],
                          capture_output=True, text=True, timeout=10).stdout.strip()


class PeakGpuMemory:
    """Device-wide used memory (every process), sampled through NVML (or nvidia-smi) while a check runs."""

    def __init__(self) -> None:
        self.peak, self._stop = None, threading.Event()
        self._read = lambda: float(gpu_query("memory.used"))
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            self._read = lambda: pynvml.nvmlDeviceGetMemoryInfo(handle).used / 2**20
        except Exception:  # noqa: BLE001 - no NVML bindings: nvidia-smi answers
            pass

    def _loop(self) -> None:
        while not self._stop.wait(0.25):
            try:
                self.peak = max(self.peak or 0.0, self._read())
            except Exception:  # noqa: BLE001 - no reading this time
                pass

    def __enter__(self) -> PeakGpuMemory:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_child(name: str, a: argparse.Namespace, model: str, timeout: float) -> dict:
    work = Path(a.out) / name
    shutil.rmtree(work, ignore_errors=True)  # a finished Ray run of the same settings would be reused
    work.mkdir(parents=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--one", name, "--out", a.out, "--model", model,
           "--steps", str(a.steps), "--rows", str(a.rows), "--throughput_steps", str(a.throughput_steps),
           "--throughput_batch", str(a.throughput_batch)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONUNBUFFERED": "1", "MLFLOW_TRACKING_URI": f"sqlite:///{Path(a.out).resolve() / 'mlflow.db'}"}
    started = time.perf_counter()
    with open(work / "log.txt", "w") as log, PeakGpuMemory() as memory:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)  # its own group: a timeout ends Ray's processes too
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    seconds = time.perf_counter() - started
    try:
        record = json.loads((work / "result.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        tail = [ln for ln in (work / "log.txt").read_text(errors="replace").splitlines() if ln.strip()][-1:]
        why = f"timed out after {timeout:.0f} s" if seconds >= timeout else f"exit {proc.returncode}"
        record = {"name": name, "status": "fail", "detail": f"{why}; {tail[0][:200] if tail else 'no output'}"}
    return {**record, "seconds": round(seconds, 1),
            "peak_gpu_mib": round(memory.peak) if memory.peak is not None else None}


def table(results: list[dict]) -> str:
    lines = ["| check | result | seconds | peak GPU memory (MiB, device-wide) | detail |", "|---|---|---:|---:|---|"]
    for r in results:
        peak = f"{r['peak_gpu_mib']:,}" if r.get("peak_gpu_mib") is not None else "-"
        detail = r["detail"].replace("|", "\\|")
        lines.append(f"| {r['name']} | {r['status']} | {r['seconds']:.1f} | {peak} | {detail} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/gpu-check", help="results directory")
    parser.add_argument("--checks", nargs="+", choices=CHECKS, default=CHECKS, help="which checks (default: all)")
    parser.add_argument("--model", default="auto", help="auto (gemma3-270m > smollm2-135m > tiny-ko) or a name")
    parser.add_argument("--steps", type=int, default=16, help="training steps of train_* and relearn")
    parser.add_argument("--rows", type=int, default=400, help="chats built for training")
    parser.add_argument("--throughput_steps", type=int, default=10, help="timed steps per throughput profile")
    parser.add_argument("--throughput_batch", type=int, default=4, help="rows of 2048 tokens per step")
    parser.add_argument("--budget_s", type=float, default=470, help="stop starting checks after this long")
    parser.add_argument("--one", choices=["prepare", *CHECKS], help=argparse.SUPPRESS)  # child mode
    a = parser.parse_args(argv)
    if a.one:
        return run_one(a)

    import torch

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    cuda = torch.cuda.is_available()
    device = None
    if cuda:
        try:
            device = gpu_query("name") or "CUDA device"
        except (OSError, subprocess.SubprocessError):
            device = "CUDA device"
    names = ["prepare", *[c for c in CHECKS if c in a.checks]]
    results: list[dict] = []
    started, model = time.perf_counter(), a.model
    for name in names:
        left = a.budget_s - (time.perf_counter() - started)
        if not cuda:
            record = {"name": name, "status": "skip", "seconds": 0.0, "detail": "no CUDA device"}
        elif name != "throughput" and results and results[0]["status"] != "pass":
            record = {"name": name, "status": "skip", "seconds": 0.0, "detail": "not run: prepare did not pass"}
        elif left < 15:
            record = {"name": name, "status": "fail", "seconds": 0.0, "detail": "not started: --budget_s used up"}
        else:
            record = run_child(name, a, model, min(TIMEOUTS[name], left))
            if name == "prepare" and record["status"] == "pass":
                model = record["extra"]["model"]
        results.append(record)
        print(f"{name:<12} {record['status']:<5} {record['seconds']:>6.1f} s  {record['detail']}", flush=True)

    passed = cuda and all(r["status"] == "pass" for r in results)
    summary = (f"GPU check on {device}: {'all passed' if passed else 'NOT all passed'}" if cuda else
               "GPU check: nothing was checked (no CUDA device); run it on a GPU machine (benchmarks/GPU_CHECK.md)")
    body = f"{summary}\n\n{table(results)}\n"
    for r in results:
        if r.get("extra", {}).get("table"):
            body += f"\nThroughput (benchmarks/train_throughput.py):\n\n{r['extra']['table']}\n"
    (out / "results.json").write_text(json.dumps(
        {"device": device, "torch": torch.__version__, "passed": passed, "model": model, "checks": results},
        indent=2, default=str, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "results.md").write_text(body, encoding="utf-8")
    print(f"\n{body}\nresults: {out / 'results.json'}, {out / 'results.md'}")
    return 3 if not cuda else (0 if passed else 1)


if __name__ == "__main__":
    sys.exit(main())
