"""Charts of a sweep: eval-loss curves, objective against learning rate, answer-start shares per trial."""

from __future__ import annotations

import math
from pathlib import Path

COLORS = {"finished": "#4C72B0", "stopped_early": "#DD8452", "failed": "#C44E52"}
LABELS = {"finished": "끝까지 학습", "stopped_early": "ASHA 조기 중단", "failed": "실패"}


def plot_sweep(trials: list[dict], out_dir: Path) -> list[Path]:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import koreanize_matplotlib  # noqa: F401
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []

    fig, ax = plt.subplots(figsize=(8, 5))
    palette = plt.get_cmap("tab10")
    for i, t in enumerate(trials):
        # evaluation reports carry the step; the final report repeats the last one without it
        points = {(h["step"], h["eval_loss"]) for h in t["history"] if _number(h.get("step"))
                  and _number(h.get("eval_loss"))}
        if points:
            xs, ys = zip(*sorted(points), strict=True)
            ax.plot(xs, ys, marker="o", color=palette(i % 10), linestyle="-" if t["outcome"] == "finished" else "--",
                    label=f"{t['trial_id']} ({LABELS[t['outcome']]})")
    ax.set_xlabel("학습 스텝")
    ax.set_ylabel("eval loss (깨끗한 검증 데이터)")
    ax.set_title("시도별 검증 손실")
    if ax.lines:
        ax.legend(fontsize=8)
    paths.append(_save(fig, out_dir / "loss_curves.png"))

    fig, ax = plt.subplots(figsize=(8, 5))
    for outcome in COLORS:
        pts = [(t["config"].get("learning_rate"), t["metrics"].get("objective")) for t in trials
               if t["outcome"] == outcome and isinstance(t["metrics"].get("objective"), (int, float))]
        if pts:
            ax.scatter(*zip(*pts, strict=True), color=COLORS[outcome], label=LABELS[outcome], s=50)
    failed = [t["config"].get("learning_rate") for t in trials if t["outcome"] == "failed"
              and isinstance(t["config"].get("learning_rate"), (int, float)) and t["config"]["learning_rate"] > 0]
    for lr in failed:
        ax.axvline(lr, color=COLORS["failed"], linestyle=":", alpha=0.7)
    ax.set_xscale("log")
    # plain labels: the log axis' default mathtext exponents need a glyph (U+2212) NanumGothic lacks
    ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:.0e}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("학습률")
    ax.set_ylabel("목적 함수 (낮을수록 좋음)")
    ax.set_title("학습률에 따른 목적 함수")
    if ax.collections:
        ax.legend()
    paths.append(_save(fig, out_dir / "objective_vs_lr.png"))

    fig, ax = plt.subplots(figsize=(max(6, len(trials) * 1.2), 5))
    names = [t["trial_id"] for t in trials]
    keys = [("start_hangul_share", "한글 시작", "#55A868"), ("start_punct_share", "구두점 시작", "#8172B3"),
            ("start_disclaimer_share", "경고문 시작", "#C44E52")]
    width = 0.8 / len(keys)
    for i, (key, label, color) in enumerate(keys):
        ax.bar([x + i * width for x in range(len(trials))], [t["metrics"].get(key, 0.0) for t in trials], width,
               label=label, color=color)
    ax.set_xticks([x + width for x in range(len(trials))], names, rotation=20)
    ax.set_ylim(0, 1)
    ax.set_ylabel("greedy 답변 비율")
    ax.set_title("시도별 답변 시작 유형 (마지막 평가)")
    ax.legend()
    paths.append(_save(fig, out_dir / "start_shares.png"))
    return paths


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not math.isnan(value)


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
