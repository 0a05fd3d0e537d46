"""The 12-category builder, the no-warning and correction generators, and the content bank itself."""

import json
import unicodedata
from collections import Counter

import pytest

from korlora.data.bank import CATEGORIES, DIALECTS, load_bank
from korlora.data.compose import items_by_id, plan_dialogues, render_dialogue
from korlora.data.config import BuildConfig, CorrectionConfig, NoWarningConfig
from korlora.schema import assistant_texts, validate_row


def hangul_start(text: str) -> bool:
    return "가" <= text[0] <= "힣"


def test_bank_has_every_category_with_real_content():
    bank = load_bank()
    assert set(bank) == set(CATEGORIES)
    for category, items in bank.items():
        assert len(items) >= 50, category
        assert len({i.question for i in items}) == len(items)
        for item in items:
            for answer in (item.answer, item.followup_answer):
                assert hangul_start(answer), item.id
                assert unicodedata.is_normalized("NFC", answer)
    assert {i.dialect for i in bank["dialect"]} >= set(DIALECTS[:3])
    passages = [i.question for i in bank["summary"]]
    assert min(p.count("\n\n") for p in passages) >= 2  # several paragraphs per passage


def test_plan_meets_the_shape_of_the_default_build():
    specs = plan_dialogues(1500, seed=42, source="korlora-bank")
    assert len(specs) == 1500 and len({s["id"] for s in specs}) == 1500
    per_category = Counter(s["category"] for s in specs)
    bank = load_bank()
    assert len(per_category) == 12
    # counselling is never paired, so it gives one dialogue per item; law pairs little (most of its questions
    # are about the user's own case) and gives what its answers serve at most three times each; the other
    # categories share the rest
    assert per_category["counselling"] == len(bank["counselling"])
    assert per_category["law"] / 1500 >= 0.06
    assert min(v for c, v in per_category.items() if c not in ("counselling", "law")) / 1500 >= 0.08
    assert sum(s["kind"] != "single" for s in specs) / 1500 >= 0.2
    items = items_by_id()
    for spec in specs[:: 37]:
        levels = {items[i].level for i in spec["items"]}
        assert len(levels) == 1  # pairs keep one register
    assert plan_dialogues(1500, seed=42, source="x") == plan_dialogues(1500, seed=42, source="x")
    assert plan_dialogues(1500, seed=1, source="x") != plan_dialogues(1500, seed=42, source="x")


def test_rendered_rows_are_valid_and_keep_the_register():
    items = items_by_id()
    from korlora.data.bank import load_templates

    templates = load_templates()
    for spec in plan_dialogues(240, seed=3, source="korlora-bank"):
        row = render_dialogue(spec, items)
        validate_row(row)
        assert row["speech_level"] == items[spec["items"][0]].level
        system = [m["content"] for m in row["messages"] if m["role"] == "system"]
        if system:
            assert system[0] in templates["system"][row["category"]][row["speech_level"]]
        assert row["messages"][-1]["role"] == "assistant"


@pytest.fixture(scope="module")
def default_build(tmp_path_factory, ray_local):
    from korlora.data.build import build_dialogues

    return build_dialogues(BuildConfig(output="unused", report=False))


@pytest.mark.slow
def test_default_build_quality(default_build):
    from korlora.data.report import quality_report

    rows = default_build
    stats = quality_report(rows)
    assert stats["rows"] >= 1200
    assert len(stats["rows_per_category"]) == 12
    shares = {c: v / stats["rows"] for c, v in stats["rows_per_category"].items()}
    # as planned (test_plan_meets_the_shape_of_the_default_build): law gives what its answers allow
    assert shares["law"] >= 0.06
    assert min(v for c, v in shares.items() if c not in ("counselling", "law")) >= 0.08
    assert stats["rows_per_category"]["counselling"] >= 70
    assert stats["multi_turn_share"] >= 0.2
    assert stats["exact_duplicates"] == 0
    assert stats["near_duplicate_rows"] / stats["rows"] < 0.02
    assert stats["top_opening"]["share"] < 0.05
    assert len(stats["rows_per_dialect"]) >= 3
    assert stats["disclaimer_share"] == 0
    assert {"category", "speech_level", "source", "id"} <= set(rows[0])


@pytest.mark.slow
def test_default_build_passes_the_cleaning_gates(default_build, tmp_path):
    from korlora.clean.config import CleanConfig
    from korlora.clean.pipeline import clean_dataset
    from korlora.io import write_jsonl

    src = tmp_path / "build.jsonl"
    write_jsonl(src, default_build)
    summary = clean_dataset(CleanConfig(input=str(src), output=str(tmp_path / "clean.jsonl")))
    assert summary["dropped_total"] == 0, summary["dropped"]
    assert summary["kept"] == len(default_build)


@pytest.mark.slow
def test_blocks_do_not_change_the_output_and_seeds_do(ray_local, tmp_path):
    from korlora.data.build import build_command

    paths = {}
    for name, blocks, seed in (("one", 1, 5), ("eight", 8, 5), ("other", 8, 6)):
        paths[name] = tmp_path / f"{name}.jsonl"
        build_command(BuildConfig(output=str(paths[name]), num_rows=240, seed=seed, num_blocks=blocks,
                                  report=False))
    assert paths["one"].read_bytes() == paths["eight"].read_bytes()
    assert paths["one"].read_bytes() != paths["other"].read_bytes()


@pytest.mark.slow
def test_no_warning_and_correction_counts(ray_local, tmp_path):
    from korlora.clean.disclaimer import is_disclaimer
    from korlora.data.correction import correction_command
    from korlora.data.no_warning import no_warning_command

    nw, fix = tmp_path / "nw.jsonl", tmp_path / "fix.jsonl"
    no_warning_command(NoWarningConfig(output=str(nw), report=False))
    correction_command(CorrectionConfig(output=str(fix), report=False))
    nw_rows = [json.loads(line) for line in nw.read_text(encoding="utf-8").splitlines()]
    fix_rows = [json.loads(line) for line in fix.read_text(encoding="utf-8").splitlines()]
    pairs = [json.loads(line) for line in (tmp_path / "fix_dpo.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(nw_rows) == 3000 and len(fix_rows) == 3500 and len(pairs) == 3500
    for rows in (nw_rows, fix_rows):
        texts = [json.dumps(r["messages"], ensure_ascii=False) for r in rows]
        assert len(set(texts)) == len(texts)
    assert len(Counter(r["category"] for r in nw_rows)) == 12
    from korlora.clean.noise import start_category

    for row in nw_rows:
        for answer in assistant_texts(row):
            # a Korean sentence first; it may open with a figure or a term ("5분이면 …", "DNS는 …")
            assert start_category(answer) == "hangul" and not is_disclaimer(answer), answer[:40]
    patterns = Counter(r["tags"][1] for r in fix_rows)
    assert set(patterns) == {"prefix", "trailing_tag", "rewrite"}
    kinds = Counter(r["tags"][2] for r in fix_rows)
    assert {"punct", "role_tag", "blank", "disclaimer"} <= set(kinds)
    for row in fix_rows:
        assert start_category(row["messages"][-1]["content"]) == "hangul"
    for pair in pairs:
        assert start_category(pair["chosen"][0]["content"]) == "hangul"
        assert start_category(pair["rejected"][0]["content"]) != "hangul"  # punctuation, tag or disclaimer first
        assert pair["prompt"][-1]["role"] == "user"


@pytest.mark.slow
def test_sample_of_each_category_is_korean_and_keeps_one_register(default_build):
    from korlora.clean.korean import hangul_ratio, is_mixed, speech_levels

    by_category: dict[str, list] = {}
    for row in default_build:
        by_category.setdefault(row["category"], []).append(row)
    for category, rows in by_category.items():
        written = category in ("summary", "style")
        for row in rows[:15]:
            for answer in assistant_texts(row):
                assert hangul_ratio(answer) > 0.9 or category in ("code", "it"), (row["id"], answer[:80])
                levels = speech_levels(answer, dialects=category == "dialect")
                assert not is_mixed(levels, written=written), (row["id"], dict(levels), answer[:120])


def test_as_of_leaves_stale_items_out_of_the_build(monkeypatch, capsys):
    import datetime as dt

    import korlora.data.build as build
    from korlora.data.compose import items_by_id, render_dialogue

    def render_here(specs, renderer, num_blocks=None):
        items = items_by_id()
        return [render_dialogue(s, items) for s in specs], []

    monkeypatch.setattr(build, "render_specs", render_here)
    dated = {i.id: i.as_of for items in load_bank().values() for i in items if i.as_of is not None}
    assert len(dated) >= 10 and {i.split("-")[0] for i in dated} >= {"finance", "law"}
    newest = max(dated.values())

    def used(cfg):
        return {item for row in build.build_dialogues(cfg) for item in row["id"].removesuffix("~f").split("+")}

    fresh = used(BuildConfig(output="unused", num_rows=1500, report=False, as_of=str(newest)))
    assert set(dated) <= fresh  # checked within the last year: all kept
    later = newest + dt.timedelta(days=366)
    stale = used(BuildConfig(output="unused", num_rows=1500, report=False, as_of=later.isoformat()))
    assert not stale & set(dated)
    assert "left out" in capsys.readouterr().out
    short = used(BuildConfig(output="unused", num_rows=1500, report=False, as_of=str(newest), max_fact_age_days=0))
    assert not short & {i for i, d in dated.items() if d < newest}
    assert used(BuildConfig(output="unused", num_rows=1500, report=False)) >= set(dated)  # no --as_of: every item
    with pytest.raises(ValueError):
        BuildConfig(as_of="next tuesday")


def test_as_of_flag_on_the_command_line(tmp_path):
    from korlora.config import parse_config

    cfg = parse_config(BuildConfig, ["--as_of", "2027-01-31", "--max_fact_age_days", "90"], prog="korlora data build",
                       description="", positional=())
    assert str(cfg.as_of_date) == "2027-01-31" and cfg.max_fact_age_days == 90
