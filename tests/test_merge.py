"""Weighted merge: the relearn default (every row once), shares by weight, oversampling, manifests."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import pytest

from korlora.clean.config import MergeConfig
from korlora.clean.merge import apportion, merge_command, merge_sources, parse_input_spec
from korlora.errors import KorloraError
from korlora.io import load_jsonl_plain


def make_source(path, name: str, n: int, with_source: bool = False) -> str:
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            row = {"messages": [{"role": "user", "content": f"{name} 질문 {i}번"},
                                {"role": "assistant", "content": f"{name} 답변 {i}번입니다."}], "id": f"{name}-{i}"}
            if with_source:
                row["source"] = "builder"
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return str(path)


@pytest.fixture
def sources(tmp_path):
    return {"rebalanced": make_source(tmp_path / "a.jsonl", "rebalanced", 50),
            "no_warning": make_source(tmp_path / "b.jsonl", "no_warning", 30, with_source=True),
            "correction": make_source(tmp_path / "c.jsonl", "correction", 20)}


def test_parse_input_spec():
    assert parse_input_spec("data/x.jsonl") == ("x", "data/x.jsonl", None)
    assert parse_input_spec("data/x.jsonl:0.5") == ("x", "data/x.jsonl", 0.5)
    assert parse_input_spec("fix=data/x.jsonl:2") == ("fix", "data/x.jsonl", 2.0)


def test_apportion_sums_to_total():
    assert apportion(10, {"a": 1, "b": 1, "c": 1}) == {"a": 4, "b": 3, "c": 3}
    assert sum(apportion(1001, {"a": 0.2, "b": 0.5, "c": 0.3}).values()) == 1001


def test_default_uses_every_row_once(sources):
    rows, manifest = merge_sources(sources)
    assert len(rows) == 100
    assert Counter(r["id"].split("-")[0] for r in rows) == {"rebalanced": 50, "no_warning": 30, "correction": 20}
    assert len({r["id"] for r in rows}) == 100
    assert all(r["source"] for r in rows)
    assert {r["source"] for r in rows} == {"rebalanced", "builder", "correction"}  # an existing source is kept
    assert manifest["sources"]["rebalanced"]["sha256"] == hashlib.sha256(open(sources["rebalanced"], "rb").read()).hexdigest()


def test_weights_set_shares_of_a_target_size(sources):
    rows, manifest = merge_sources(sources, weights={"rebalanced": 0.5, "no_warning": 0.25, "correction": 0.25},
                                   target_size=40, seed=1)
    assert manifest["counts"] == {"rebalanced": 20, "no_warning": 10, "correction": 10}
    assert len({r["id"] for r in rows}) == 40  # no repeats needed


def test_without_target_the_largest_mix_without_repeats(sources):
    rows, manifest = merge_sources(sources, weights={"rebalanced": 1, "no_warning": 1, "correction": 2})
    assert manifest["counts"] == {"rebalanced": 10, "no_warning": 10, "correction": 20}


def test_oversampling(sources):
    weights = {"rebalanced": 1, "no_warning": 1, "correction": 2}
    rows, manifest = merge_sources(sources, weights=weights, target_size=120, oversample=True)
    assert manifest["counts"]["correction"] == 60 and len(rows) == 120
    assert Counter(r["id"] for r in rows if r["id"].startswith("correction")).most_common(1)[0][1] == 3
    capped, manifest = merge_sources(sources, weights=weights, target_size=120, oversample=False)
    assert manifest["sources"]["correction"]["short_by"] == 40 and len(capped) == 80


def test_same_seed_same_rows_other_seed_other_order(sources):
    weights = {"rebalanced": 2, "no_warning": 1, "correction": 1}
    a, _ = merge_sources(sources, weights=weights, target_size=60, seed=7)
    b, _ = merge_sources(dict(reversed(list(sources.items()))), weights=weights, target_size=60, seed=7)
    c, _ = merge_sources(sources, weights=weights, target_size=60, seed=8)
    assert a == b
    assert [r["id"] for r in a] != [r["id"] for r in c]


def test_unknown_weight_name(sources):
    with pytest.raises(KorloraError, match="unknown sources"):
        merge_sources(sources, weights={"typo": 1.0})


def test_merge_command_writes_manifest(tmp_path, sources, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"broken\n{"instruction": "인사해 줘", "output": "안녕하세요!"}\n', encoding="utf-8")
    cfg = MergeConfig(input=[f"{sources['rebalanced']}:2", f"fix={sources['correction']}", str(bad)],
                      output=str(tmp_path / "final.jsonl"), weights="fix=1,bad=1", target_size=8)
    assert merge_command(cfg) == 0
    manifest = json.loads((tmp_path / "final.jsonl.manifest.json").read_text())
    assert manifest["counts"] == {"a": 4, "fix": 2, "bad": 1}  # bad has one valid row: short by one
    assert manifest["output"]["sha256"] == hashlib.sha256((tmp_path / "final.jsonl").read_bytes()).hexdigest()
    assert manifest["sources"]["bad"]["rejected"] == 1
    assert len(load_jsonl_plain(tmp_path / "final.jsonl.rejects.jsonl")) == 1
    assert "short by 1" in capsys.readouterr().out


def test_merge_config_defaults_reproduce_the_relearn_merge():
    cfg = MergeConfig()
    assert cfg.input == ["data/korean_sft_rebalanced.jsonl", "data/korean_sft_no_warning.jsonl",
                         "data/korean_sft_correction.jsonl"]
    assert cfg.output == "data/korean_sft_final.jsonl" and cfg.weights is None and cfg.target_size is None


LONG_ANSWER = ("엔진오일은 보통 1만 km마다 갈지만, 짧은 거리를 자주 달리거나 막히는 길이 많으면 5천 km쯤에 가는 게 좋아요. "
               "오일 필터도 함께 바꾸고, 1년이 지나면 거리가 짧아도 교체하세요.")


def _chat(question: str, answer: str, **extra) -> dict:
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}], **extra}


def test_merge_drops_rows_that_repeat_an_earlier_source(tmp_path):
    from korlora.io import write_jsonl

    first = [_chat("엔진오일은 언제 갈아요?", LONG_ANSWER, id="a-1"), _chat("타이어 공기압은요?", "한 달에 한 번 확인해요.", id="a-2")]
    second = [
        _chat("엔진오일은  언제 갈아요", LONG_ANSWER.replace(", ", " ").replace(".", ""), id="b-1"),  # exact (normalised)
        _chat("엔진오일은 언제 갈아요?", LONG_ANSWER.replace("오일 필터도", "에어 필터도"), id="b-2"),  # near
        _chat("브레이크 패드는 언제 바꿔요?", "패드 두께가 3mm 아래로 내려가면 바꿔요.", id="b-3"),
        _chat("브레이크 패드는 언제 바꿔요?", "패드 두께가 3mm 아래로 내려가면 바꿔요.", id="b-4"),  # same source: kept
    ]
    write_jsonl(tmp_path / "first.jsonl", first)
    write_jsonl(tmp_path / "second.jsonl", second)
    out = tmp_path / "merged.jsonl"
    assert merge_command(MergeConfig(input=[f"first={tmp_path / 'first.jsonl'}", f"second={tmp_path / 'second.jsonl'}"],
                                     output=str(out), shuffle=False)) == 0
    kept = [r["id"] for r in load_jsonl_plain(out)]
    assert kept == ["a-1", "a-2", "b-3", "b-4"]
    rejects = {r["line"]: r for r in load_jsonl_plain(tmp_path / "merged.jsonl.rejects.jsonl")}
    assert rejects[1]["reason"] == "cross_source_duplicate" and rejects[1]["source"] == "second"
    assert rejects[1]["detail"].startswith("first line 1")
    assert rejects[2]["reason"] == "cross_source_near_duplicate" and "Jaccard" in rejects[2]["detail"]
    assert json.loads(rejects[2]["raw"])["id"] == "b-2"
    manifest = json.loads((tmp_path / "merged.jsonl.manifest.json").read_text(encoding="utf-8"))
    assert manifest["sources"]["second"]["cross_source_duplicates"] == 1
    assert manifest["sources"]["second"]["cross_source_near_duplicates"] == 1
    assert manifest["sources"]["first"]["cross_source_duplicates"] == 0
    # nothing lost: every input line is in the output or in the rejects
    assert len(kept) + len(rejects) == len(first) + len(second)

    assert merge_command(MergeConfig(input=[f"first={tmp_path / 'first.jsonl'}", f"second={tmp_path / 'second.jsonl'}"],
                                     output=str(out), shuffle=False, near_dup=False)) == 0
    assert [r["id"] for r in load_jsonl_plain(out)] == ["a-1", "a-2", "b-2", "b-3", "b-4"]
    assert merge_command(MergeConfig(input=[f"first={tmp_path / 'first.jsonl'}", f"second={tmp_path / 'second.jsonl'}"],
                                     output=str(out), shuffle=False, dedup=False)) == 0
    assert len(load_jsonl_plain(out)) == 6
