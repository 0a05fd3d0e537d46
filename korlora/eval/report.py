"""``korlora eval``: an adapter (or several, side by side) on korlora's held-out Korean prompts."""

from __future__ import annotations

import time
from pathlib import Path

from korlora.eval.config import EvalConfig
from korlora.eval.heldout import chat_messages, load_eval_set, reference_loss
from korlora.eval.metrics import answer_measures, shares
from korlora.io import write_json

BASE = "base"
# (label, key, format) of the printed table, in order
ROWS = [("Korean answers", "korean_share", "%"), ("code-switching", "code_switch_share", "%"),
        ("Hanja runs", "hanja_share", "%"), ("Hangul start", "hangul_start_share", "%"),
        ("punctuation start", "punct_start_share", "%"), ("invisible start", "invisible_start_share", "%"),
        ("role-tag start", "role_tag_start_share", "%"), ("disclaimer start", "disclaimer_start_share", "%"),
        ("disclaimer anywhere", "disclaimer_anywhere_share", "%"), ("stops on its own", "stop_share", "%"),
        ("repetition loop", "repetition_share", "%"), ("register as asked", "register_match_share", "%"),
        ("mixed register", "mixed_register_share", "%"), ("reference loss", "heldout_answer_loss", "f")]


def evaluate_here(base: str | None, adapter: str | None, cfg: EvalConfig) -> dict:
    """Generate and measure in this process, on this machine's device."""
    from korlora.logs import quiet_libraries
    from korlora.models.check import check_chat_template
    from korlora.train.inference import generate_with_stops, load_for_inference

    quiet_libraries()
    items = load_eval_set(cfg.prompts)
    started = time.perf_counter()
    model, tokenizer = load_for_inference(adapter, base)
    check_chat_template(tokenizer, model.generation_config)
    generated = generate_with_stops(model, tokenizer, [chat_messages(i) for i in items],
                                    max_new_tokens=cfg.max_new_tokens, batch_size=cfg.batch_size)
    answers, stopped = [g[0][0] for g in generated], [g[0][1] for g in generated]
    records = answer_measures(answers, [i["messages"][-1]["content"] for i in items],
                              [i["register"] for i in items], stopped)
    overall = shares(records)
    if cfg.reference_loss:
        overall["heldout_answer_loss"] = reference_loss(model, tokenizer, items)["loss"]
    categories = sorted({i["category"] for i in items})
    return {
        "label": adapter or base, "model": base, "adapter": adapter, "device": str(next(model.parameters()).device),
        "max_new_tokens": cfg.max_new_tokens, "seconds": round(time.perf_counter() - started, 1),
        "overall": overall,
        "categories": {c: shares([r for r, i in zip(records, items, strict=True) if i["category"] == c])
                       for c in categories},
        "answers": [{"id": i["id"], "category": i["category"], "register": i["register"], "answer": a,
                     **{("register_verdict" if k == "register" else k): v for k, v in r.items()}}
                    for i, a, r in zip(items, answers, records, strict=True)],
    }


def evaluate(base: str | None, adapter: str | None, cfg: EvalConfig) -> dict:
    """:func:`evaluate_here` where the model should run (a Ray GPU task on a cluster with GPUs)."""
    from korlora.train.cluster import run_where_the_model_runs

    return run_where_the_model_runs(evaluate_here, base, adapter, cfg)


def targets(cfg: EvalConfig) -> list[tuple[str | None, str | None]]:
    """``(base, adapter)`` of each model to evaluate."""
    from korlora.train.inference import adapter_base

    adapters = cfg.compare or [cfg.adapter or BASE]
    real = [a for a in adapters if a != BASE]
    base = cfg.model_name_or_path or (adapter_base(real[0]) if real else "tiny-ko")
    return [(base, None) if a == BASE else (cfg.model_name_or_path, a) for a in adapters]


def _cell(value, fmt: str) -> str:
    if value is None:
        return "-"
    return f"{value:.1%}" if fmt == "%" else f"{value:.3f}"


def short_name(result: dict) -> str:
    """``base`` for the base model, else the adapter's last two path parts (``relearn/adapter``)."""
    if not result["adapter"]:
        return "base"
    return "/".join(Path(result["adapter"]).parts[-2:])


def print_results(results: list[dict]) -> None:
    names = [short_name(r) for r in results]
    width = max(14, *(len(n) + 2 for n in names))
    print(f"{'':24}" + "".join(f"{n:>{width}}" for n in names))
    for label, key, fmt in ROWS:
        print(f"{label:24}" + "".join(f"{_cell(r['overall'].get(key), fmt):>{width}}" for r in results))
    print(f"{'answers':24}" + "".join(f"{r['overall']['answers']:>{width}}" for r in results))


def plot_results(results: list[dict], path: Path) -> None:
    import koreanize_matplotlib  # noqa: F401
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [("한국어 답변", "korean_share"), ("한글로 시작", "hangul_start_share"), ("경고문 시작", "disclaimer_start_share"),
            ("구두점·기호 시작", "punct_start_share"), ("스스로 끝맺음", "stop_share"), ("요청한 말투", "register_match_share"),
            ("반복 루프", "repetition_share")]
    categories = sorted(results[0]["categories"])
    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 5.5), gridspec_kw={"width_ratios": [1.1, 1]})
    width = 0.8 / len(results)
    for k, r in enumerate(results):
        left.bar([x + k * width for x in range(len(keys))], [r["overall"].get(key) or 0 for _, key in keys], width,
                 label=short_name(r))
        right.bar([x + k * width for x in range(len(categories))],
                  [r["categories"][c]["hangul_start_share"] for c in categories], width)
    left.set_xticks([x + width * (len(results) - 1) / 2 for x in range(len(keys))], [k for k, _ in keys], rotation=20)
    left.set_ylim(0, 1)
    left.set_title("전체")
    left.legend()
    from korlora.data.bank import CATEGORIES

    right.set_xticks([x + width * (len(results) - 1) / 2 for x in range(len(categories))],
                     [CATEGORIES.get(c, c) for c in categories], rotation=45)
    right.set_ylim(0, 1)
    right.set_title("범주별: 한글로 시작하는 답변")
    fig.suptitle("korlora eval")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def log_to_mlflow(result: dict, experiment: str) -> str:
    """One MLflow run per evaluated model (nested under an active run); returns its id."""
    import mlflow

    from korlora.track.runs import tracked_run

    with tracked_run(None if mlflow.active_run() else experiment, run_name=f"eval-{short_name(result)}",
                     params={"model": result["model"], "adapter": result["adapter"],
                             "max_new_tokens": result["max_new_tokens"]}) as run:
        mlflow.log_metrics({f"eval_{k}": v for k, v in result["overall"].items() if isinstance(v, float)})
        for category, values in result["categories"].items():
            mlflow.log_metrics({f"eval_{category}_{k}": v for k, v in values.items()
                                if k in ("korean_share", "hangul_start_share", "disclaimer_start_share")
                                and isinstance(v, float)})
        return run.info.run_id


def eval_command(cfg: EvalConfig) -> int:
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for base, adapter in targets(cfg):
        print(f"── eval {adapter or base}")
        results.append(evaluate(base, adapter, cfg))
    write_json(out / "eval.json", {"config": {k: v for k, v in vars(cfg).items()}, "results": results})
    plot_results(results, out / "eval.png")
    print_results(results)
    if cfg.mlflow:
        from korlora.track.mlflow_utils import tracking_uri

        for result in results:
            log_to_mlflow(result, cfg.experiment_name)
        print(f"MLflow: {tracking_uri()} (experiment {cfg.experiment_name})")
    print(f"report: {out / 'eval.json'}  chart: {out / 'eval.png'}")
    return 0
