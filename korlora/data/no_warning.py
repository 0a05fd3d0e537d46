"""``korlora data no-warning``: answers that open with a Hangul sentence and never hedge.

The seed's build_no_warning_sft.py: clean bank answers, spread evenly over the 12 categories, in the three
shapes the builder uses (single exchange, with follow-up, two topics), so the model sees many ways a
conversation goes on while every answer starts with content.
"""

from __future__ import annotations

from korlora.data.build import write_with_report
from korlora.data.compose import plan_dialogues
from korlora.data.config import NoWarningConfig
from korlora.data.parallel import render_specs

SOURCE = "korlora-no-warning"


def build_no_warning(cfg: NoWarningConfig) -> list[dict]:
    specs = plan_dialogues(cfg.num_rows, cfg.seed, source=SOURCE, id_prefix="nw:", use_every_item_twice=True)
    rows, _ = render_specs(specs, "korlora.data.compose:render_dialogue", cfg.num_blocks)
    for row in rows:
        row["tags"] = [*row["tags"], "no_warning"]
    return rows


def no_warning_command(cfg: NoWarningConfig) -> int:
    write_with_report(build_no_warning(cfg), cfg.output, cfg.report, "korlora data no-warning")
    return 0
