"""``data clean`` / ``data check`` end to end: damaged files, accounting, and the same result at any block count."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from korlora.clean.config import CheckConfig, CleanConfig
from korlora.clean.pipeline import check_dataset, clean_dataset
from korlora.io import load_jsonl_plain

PLACES = ["도서관", "수영장", "우체국", "구청", "전통시장", "박물관", "체육관", "기차역", "공원", "주민센터"]
TIMES = ["평일 오전 9시", "주말 오후 2시", "매일 저녁 7시", "화요일 아침", "공휴일 정오", "토요일 오전 10시"]
EXTRAS = ["주차는 두 시간까지 무료예요", "입구는 건물 뒤편에 있어요", "신분증을 꼭 챙겨 오세요", "반려동물은 들어갈 수 없어요",
          "사람이 많으니 조금 일찍 가는 게 좋아요", "근처에 버스 정류장이 있어요", "휴관일은 월요일이에요",
          "엘리베이터는 동쪽 끝에 있어요"]
FEES = ["어른 삼천 원", "어린이 천 원", "무료", "한 달 이만 원", "한 번에 오천 원", "회원은 반값"]
TIPS = ["처음 가신다면 안내 데스크에 먼저 들러 보세요.", "점심시간에는 창구가 한 곳만 열려요.",
        "비 오는 날에는 실내 통로로 다니면 편해요.", "사진 촬영은 미리 허락을 받아야 해요.",
        "물은 가져가도 되지만 음식은 안 돼요.", "예약은 홈페이지에서 일주일 전부터 할 수 있어요.",
        "분실물은 1층 관리실에 맡겨져 있어요.", "와이파이 비밀번호는 입구 게시판에 적혀 있어요."]


def answer(rng: random.Random) -> str:
    e1, e2 = rng.sample(EXTRAS, 2)
    return (f"{rng.choice(PLACES)}은 {rng.choice(TIMES)}에 문을 열어요. {e1}. {e2}. "
            f"이용료는 {rng.choice(FEES)}이에요. {rng.choice(TIPS)}")


def chat(user: str, text: str, **meta) -> str:
    row = {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": text}], **meta}
    return json.dumps(row, ensure_ascii=False)


def damaged_file(path, n_good: int = 60, seed: int = 0) -> int:
    """A file with every kind of damage; returns the number of non-blank lines."""
    rng = random.Random(seed)
    lines: list[bytes] = []
    goods = [chat(f"{i}번 시설 운영 시간 알려 주세요.", answer(rng), id=f"g{i}") for i in range(n_good)]
    for i, good in enumerate(goods):
        lines.append(good.encode())
        if i % 10 == 3:
            lines.append(good.replace("문을 열어요.", "문을  열어요!").encode())  # exact duplicate after normalising
        if i % 10 == 6:
            lines.append(good.replace("이용료는", "요금은").replace(f'"g{i}"', f'"n{i}"').encode())  # near duplicate
    lines += [
        b"",
        b'{"messages": [{"role": "user", "content": "\xed\x95\x9c\xff"}]}',  # invalid UTF-8
        b"{'messages': 'single quotes'}",  # invalid JSON
        b"[1, 2, 3]",  # not an object
        b"   ",
        chat("요약해 줘", "... !!! ???", id="noise").encode(),
        chat("hi", "Sure! I can help you with that, just restart the router.", id="english").encode(),
        chat("약은 어떻게 먹어요?", "하루 세 번 식후에 드십시오. 물은 충분히 마셔. 알겠지?", id="mixed").encode(),
        chat("날씨 어때?", "assistant: 오늘은 맑고 따뜻해요. 산책하기 좋아요.", id="repair").encode(),
        '{"messages": [{"role": "user", "content": "잘린 줄'.encode(),  # truncated, no newline at the end
    ]
    data = b"\xef\xbb\xbf" + b"\r\n".join(lines)
    path.write_bytes(data)
    return sum(1 for line in lines if line.strip())


def test_clean_accounts_for_every_line(tmp_path):
    src = tmp_path / "in.jsonl"
    n_lines = damaged_file(src)
    cfg = CleanConfig(input=str(src), output=str(tmp_path / "out.jsonl"), engine="local")
    summary = clean_dataset(cfg)
    kept = load_jsonl_plain(cfg.output)
    rejects = load_jsonl_plain(cfg.rejects)
    assert summary["lines"] == n_lines
    assert len(kept) + len(rejects) == n_lines == summary["kept"] + summary["dropped_total"]
    assert summary["dropped"] == {"invalid_json": 2, "invalid_utf8": 1, "invalid_schema": 1, "noise_start": 1,
                                  "non_korean": 1, "mixed_speech_level": 1, "duplicate": 6, "near_duplicate": 6}
    assert summary["repaired"] == 1
    assert {r["id"] for r in kept} == {f"g{i}" for i in range(60)} | {"repair"}
    near = [r for r in rejects if r["reason"] == "near_duplicate"]
    assert all(r["id"].startswith("n") and "Jaccard" in r["detail"] for r in near)
    assert all(set(r) >= {"line", "reason", "detail", "raw"} for r in rejects)
    assert json.loads((tmp_path / "out.jsonl.summary.json").read_text())["kept"] == len(kept)


def test_check_gives_one_verdict_per_line_and_agrees_with_clean(tmp_path):
    src = tmp_path / "in.jsonl"
    n_lines = damaged_file(src)
    clean = CleanConfig(input=str(src), output=str(tmp_path / "out.jsonl"), engine="local")
    clean_dataset(clean)
    check = CheckConfig(input=str(src), report=str(tmp_path / "report.jsonl"), engine="local")
    check_dataset(check)
    verdicts = load_jsonl_plain(check.report)
    assert len(verdicts) == n_lines
    assert all(set(v) >= {"line", "id", "verdict", "reasons", "tags"} for v in verdicts)
    kept_lines = {v["line"] for v in verdicts if v["verdict"] == "keep"}
    rejected_lines = {r["line"] for r in load_jsonl_plain(clean.rejects)}
    assert len(kept_lines) == len(load_jsonl_plain(clean.output))
    assert not kept_lines & rejected_lines
    repaired = next(v for v in verdicts if v["id"] == "repair")
    assert repaired["verdict"] == "keep" and repaired["tags"] == ["repaired"]


def test_clean_cli(tmp_path, capsys):
    from korlora.cli import main

    src = tmp_path / "in.jsonl"
    damaged_file(src, n_good=12)
    out = tmp_path / "clean.jsonl"
    assert main(["data", "clean", str(src), "-o", str(out), "--engine", "local", "--near_dup_threshold", "0.99"]) == 0
    printed = capsys.readouterr().out
    assert "kept 14" in printed and "near_duplicate" not in printed  # the near copy stays at 0.99
    assert main(["data", "clean", str(tmp_path / "missing.jsonl")]) == 2


@pytest.mark.slow
def test_ray_gives_the_same_bytes_with_1_and_8_blocks(tmp_path, ray_local):
    src = tmp_path / "in.jsonl"
    damaged_file(src, n_good=300, seed=3)
    outputs = []
    for blocks in (1, 8):
        cfg = CleanConfig(input=str(src), output=str(tmp_path / f"out{blocks}.jsonl"), num_blocks=blocks)
        clean_dataset(cfg)
        check = CheckConfig(input=str(src), report=str(tmp_path / f"check{blocks}.jsonl"), num_blocks=blocks)
        check_dataset(check)
        outputs.append([(tmp_path / name).read_bytes()
                        for name in (f"out{blocks}.jsonl", f"out{blocks}.jsonl.rejects.jsonl", f"check{blocks}.jsonl")])
    assert outputs[0] == outputs[1]
    local = CleanConfig(input=str(src), output=str(tmp_path / "local.jsonl"), engine="local")
    clean_dataset(local)
    assert (tmp_path / "local.jsonl").read_bytes() == outputs[0][0]


@pytest.mark.slow
def test_pipeline_entrypoint(tmp_path, ray_local, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[1]))  # pipelines/ is not installed
    from pipelines.clean import main

    src = tmp_path / "in.jsonl"
    damaged_file(src, n_good=20)
    out, rebalanced = tmp_path / "clean.jsonl", tmp_path / "rebalanced.jsonl"
    assert main([str(src), "-o", str(out), "--rebalance_output", str(rebalanced), "--max_ratio", "0.05"]) == 0
    assert len(load_jsonl_plain(out)) == 21
    assert json.loads((tmp_path / "rebalanced.jsonl.rebalance.json").read_text())["after"]["share"] == 0.0
