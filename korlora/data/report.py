"""Quality report of a built dataset: a JSON file and a PNG chart next to the output."""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

from korlora.data.bank import CATEGORIES, LEVEL_NAMES
from korlora.io import write_json
from korlora.schema import assistant_texts, row_text

NEAR_DUPLICATE_THRESHOLD = 0.8


def first_eojeol(text: str) -> str:
    words = text.split()
    return words[0] if words else ""


def distinct_bigram_ratio(texts: list[str]) -> float:
    """Distinct eojeol bigrams over all bigrams (distinct-2): low values mean templated text."""
    bigrams: Counter = Counter()
    for text in texts:
        words = text.split()
        bigrams.update(zip(words, words[1:], strict=False))
    total = sum(bigrams.values())
    return len(bigrams) / total if total else 0.0


def quality_report(rows: list[dict]) -> dict:
    from korlora.clean.dedup import exact_key, near_duplicate_pairs
    from korlora.clean.disclaimer import is_disclaimer

    answers = [a for row in rows for a in assistant_texts(row)]
    lengths = [len(a) for a in answers]
    openings = Counter(first_eojeol(a) for a in answers)
    top, top_count = openings.most_common(1)[0] if openings else ("", 0)
    keys = [exact_key(row_text(r)) for r in rows]
    near = near_duplicate_pairs([row_text(r) for r in rows], threshold=NEAR_DUPLICATE_THRESHOLD)
    disclaimer_rows = sum(any(is_disclaimer(a) for a in assistant_texts(r)) for r in rows)
    return {
        "rows": len(rows),
        "rows_per_category": dict(sorted(Counter(r.get("category", "?") for r in rows).items())),
        "rows_per_speech_level": dict(sorted(Counter(r.get("speech_level", "?") for r in rows).items())),
        "rows_per_dialect": dict(sorted(Counter(r["dialect"] for r in rows if r.get("dialect")).items())),
        "multi_turn_share": sum(len(assistant_texts(r)) > 1 for r in rows) / max(len(rows), 1),
        "answer_chars": {
            "mean": round(statistics.fmean(lengths), 1) if lengths else 0,
            "p50": statistics.median(lengths) if lengths else 0,
            "p90": statistics.quantiles(lengths, n=10)[-1] if len(lengths) > 1 else (lengths or [0])[0],
            "max": max(lengths, default=0),
        },
        "answer_lengths": lengths,
        "distinct_bigram_ratio": round(distinct_bigram_ratio(answers), 4),
        "top_opening": {"eojeol": top, "count": top_count, "share": top_count / max(len(answers), 1)},
        "top_openings": openings.most_common(10),
        "exact_duplicates": len(keys) - len(set(keys)),
        "near_duplicate_pairs": len(near),
        "near_duplicate_rows": len({j for _, j, _ in near}),
        "near_duplicate_threshold": NEAR_DUPLICATE_THRESHOLD,
        "disclaimer_rows": disclaimer_rows,
        "disclaimer_share": disclaimer_rows / max(len(rows), 1),
    }


def plot_report(stats: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import koreanize_matplotlib  # noqa: F401  (NanumGothic, so Hangul labels render)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(13, 9))
    cats = stats["rows_per_category"]
    axes[0, 0].barh([CATEGORIES.get(c, c) for c in cats], list(cats.values()), color="#4C72B0")
    axes[0, 0].set_title("카테고리별 행 수")
    axes[0, 0].invert_yaxis()
    levels = stats["rows_per_speech_level"]
    axes[0, 1].bar([LEVEL_NAMES.get(k, k) for k in levels], list(levels.values()), color="#55A868")
    axes[0, 1].set_title("말투(화계)별 행 수")
    axes[1, 0].hist(stats["answer_lengths"], bins=40, color="#8172B2")
    axes[1, 0].set_title("답변 길이 분포 (글자 수)")
    openings = stats["top_openings"]
    axes[1, 1].barh([w for w, _ in openings], [c for _, c in openings], color="#C44E52")
    axes[1, 1].invert_yaxis()
    axes[1, 1].set_title("가장 흔한 답변 첫 어절 (상위 10)")
    summary = (f"행 {stats['rows']:,} · 멀티턴 {stats['multi_turn_share']:.1%} · distinct-2 "
               f"{stats['distinct_bigram_ratio']:.3f} · 완전 중복 {stats['exact_duplicates']} · 유사 중복 쌍 "
               f"{stats['near_duplicate_pairs']} · 경고문 비율 {stats['disclaimer_share']:.1%}")
    fig.suptitle(f"{title}\n{summary}", fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(stats: dict, output: Path, title: str) -> tuple[Path, Path]:
    stem = output.with_suffix("") if output.suffix == ".jsonl" else output
    json_path, png_path = Path(f"{stem}.report.json"), Path(f"{stem}.report.png")
    write_json(json_path, {k: v for k, v in stats.items() if k != "answer_lengths"})
    plot_report(stats, png_path, title)
    return json_path, png_path
