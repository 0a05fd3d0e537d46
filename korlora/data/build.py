"""``korlora data build``: Korean chat SFT dialogues in 12 categories, composed on Ray Data."""

from __future__ import annotations

from pathlib import Path

from korlora.data.bank import fresh_bank, load_bank
from korlora.data.compose import plan_dialogues
from korlora.data.config import BuildConfig
from korlora.data.parallel import render_specs
from korlora.io import write_jsonl

SOURCE = "korlora-bank"


def build_dialogues(cfg: BuildConfig) -> list[dict]:
    bank = None
    if cfg.as_of_date is not None:
        bank = fresh_bank(cfg.as_of_date, cfg.max_fact_age_days)
        left_out = sum(len(items) for items in load_bank().values()) - sum(len(items) for items in bank.values())
        print(f"as of {cfg.as_of_date}: left out {left_out} bank items with facts older than "
              f"{cfg.max_fact_age_days} days")
    specs = plan_dialogues(cfg.num_rows, cfg.seed, source=SOURCE, followup_share=cfg.followup_share, bank=bank)
    rows, _ = render_specs(specs, "korlora.data.compose:render_dialogue", cfg.num_blocks)
    return rows


def write_with_report(rows: list[dict], output: str, report: bool, title: str) -> None:
    n = write_jsonl(output, rows)
    print(f"wrote {n} rows to {output}")
    if report:
        from korlora.data.report import quality_report, write_report

        stats = quality_report(rows)
        json_path, png_path = write_report(stats, Path(output), title)
        print(f"report: {json_path}  chart: {png_path}")
        print(f"  categories: {len(stats['rows_per_category'])}  multi-turn: {stats['multi_turn_share']:.1%}  "
              f"exact duplicates: {stats['exact_duplicates']}  near-duplicate pairs: {stats['near_duplicate_pairs']}  "
              f"top answer opening: {stats['top_opening']['eojeol']!r} {stats['top_opening']['share']:.1%}  "
              f"disclaimer share: {stats['disclaimer_share']:.1%}")


def build_command(cfg: BuildConfig) -> int:
    rows = build_dialogues(cfg)
    write_with_report(rows, cfg.output, cfg.report, "korlora data build")
    return 0
