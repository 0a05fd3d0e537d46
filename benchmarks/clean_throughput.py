"""Cleaning throughput: records/s of clean (with and without the Kiwi gate), near-dup and rebalance, on Ray
Data and in one process over the same functions; our numpy MinHash LSH against datasketch's MinHashLSH,
with recall on planted near duplicates (datasketch twice: as it configures itself, and on our terms — the same
bands × rows and the same exact-Jaccard verification of its candidates).

    python benchmarks/clean_throughput.py                    # 200k rows (about 25 minutes on 2 cores)
    python benchmarks/clean_throughput.py --rows 5000        # a quick run
    python benchmarks/clean_throughput.py --rows 200000 --kiwi_rows 50000 --out runs/bench/clean.json

The rows are synthetic but shaped like the SFT data: 해요체/합쇼체/반말/해라체 answers built from sentence pools
with slot fillers, IT answers with acronyms and code blocks, multi-turn rows, and planted damage: noisy
starts, English and Japanese answers, mixed speech levels, disclaimers, broken JSON, exact copies
(punctuation/spacing edits) and near copies (a one-word edit, with or without punctuation/spacing edits).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import time
from pathlib import Path

HAEYO = ["{place}은 {time}에 가장 붐비니 조금 일찍 나서는 게 좋아요.", "{item}은 {n}개 정도 미리 사 두면 든든해요.",
         "처음에는 {person}에게 부탁해서 같이 해 보는 것도 방법이에요.", "{item}을 고를 때는 가격보다 후기를 먼저 보세요.",
         "{time}에는 {place} 근처 주차장이 금방 차요.", "{n}분 정도만 투자하면 훨씬 편해질 거예요.",
         "{person}도 {item} 때문에 비슷한 고민을 자주 한다고 해요.", "{place}에서 {item}을 빌려주기도 하니 한번 물어보세요.",
         "비용은 보통 {n}만 원 안팎이에요.", "{item}은 햇빛이 들지 않는 곳에 보관하는 게 좋아요.",
         "{time}부터는 {place}에서 할인이 시작되니 그때를 노려 보세요.", "{person}와 미리 일정을 맞춰 두면 훨씬 수월해요.",
         "{food}을 좋아하신다면 {place} 앞 식당도 들러 보세요.", "{season}에는 {item}이 금방 품절되니 서두르세요.",
         "{city}에서 오신다면 {transport}를 타는 게 제일 빨라요.", "{transport}는 {time}에 배차 간격이 {n}분쯤이에요.",
         "{hobby}를 처음 시작할 때는 {item}부터 장만하면 돼요.", "{city} 쪽은 {season}에 특히 경치가 좋아요.",
         "{food}은 {n}인분씩 나눠 얼려 두면 오래 먹을 수 있어요.", "{person}에게 {food} 만드는 법을 배워 보는 건 어때요?",
         "{hobby} 모임은 {place}에서 매주 {time}에 열려요.", "{season}마다 {item}을 한 번씩 점검해 주세요.",
         "{transport}에서 내리면 {place}까지 걸어서 {n}분이면 도착해요.", "요즘 {city}에서는 {hobby}가 인기가 많아요."]
HAPSYO = ["{tech} 설정에서 {opt} 값을 먼저 확인하십시오.", "{tech}는 {n}GB 이상의 RAM에서 안정적으로 동작합니다.",
          "API 응답이 느리다면 {tech}의 캐시 설정을 점검하는 것이 좋습니다.", "로그에서 {err} 오류가 보이면 재시작 전에 원인을 찾아야 합니다.",
          "CPU 사용률이 {n}%를 넘으면 {tech} 작업을 나누어 실행하십시오.", "{tech} 버전을 올리기 전에 반드시 백업을 해 두시기 바랍니다.",
          "HTTP 요청마다 시간 제한을 {n}초로 두면 장애가 번지지 않습니다.", "{opt} 옵션을 끄면 {tech}의 메모리 사용량이 줄어듭니다.",
          "JSON 형식이 올바른지 먼저 검증한 뒤 {tech}에 저장하는 것을 권장합니다.", "SSD의 남은 용량이 {n}% 아래로 떨어지면 성능이 떨어집니다.",
          "{tech2}와 {tech}를 함께 쓸 때는 포트 {port}번이 겹치지 않는지 확인하십시오.", "{tech2}의 {opt} 기본값은 운영 환경에 맞지 않습니다.",
          "{err} 오류는 대개 {tech2} 연결 설정이 잘못되었을 때 발생합니다.", "배포 전에 {tech2}에서 {n}건 정도의 부하 시험을 해 보십시오.",
          "{tech}의 접속 로그는 {n}일이 지나면 자동으로 지워집니다.", "TLS 인증서는 만료 {n}일 전에 갱신하는 것이 안전합니다.",
          "{tech2} 클러스터는 노드를 {n}대 이상으로 구성하는 것이 좋습니다.", "포트 {port}번이 열려 있는지 방화벽 규칙부터 살펴보십시오.",
          "장애가 반복되면 {tech}와 {tech2}의 버전 호환표를 확인하시기 바랍니다.", "모니터링 지표 중 {opt} 항목이 급증하면 경보를 울리도록 설정하십시오."]
BANMAL = ["{place}은 {time}에 가면 사람이 별로 없어.", "{item}은 그냥 {n}개만 사도 충분해.", "{person}한테 한번 물어봐, 금방 알려 줄 거야.",
          "{hobby}는 너무 고민하지 말고 일단 해 봐.", "{time}쯤이면 {place}도 한가할걸.", "나라면 {item}부터 바꿔 볼 것 같아.",
          "{hobby}는 처음엔 다 어려워, 괜찮아.", "돈은 {n}만 원 정도면 될 거야.", "{city} 가면 {food}은 꼭 먹어 봐.",
          "{transport} 타면 {n}분이면 가.", "{season}엔 {city}가 제일 예뻐.", "{food}은 {person}이 진짜 잘 만들어.",
          "{item} 챙기는 거 잊지 마.", "{place} 앞에서 {time}에 보자.", "{hobby} 같이 할 사람 있으면 나도 불러 줘.",
          "{season}에 {transport} 표는 미리 끊어 둬야 해."]
HAERA = ["{place}의 이용객은 지난해보다 {n}% 늘었다.", "{person}는 {item} 가격이 계속 오를 것으로 내다봤다.",
         "{city}시는 {time}부터 새 운영 방식을 시행한다.", "주민들은 {place} 주변의 소음 문제를 꾸준히 제기해 왔다.",
         "업계는 {item} 수요가 {season}까지 이어질 것으로 본다.", "이번 조치로 대기 시간이 {n}분가량 줄어들 전망이다.",
         "{city}의 {hobby} 동호회 수는 {n}곳으로 집계됐다.", "{transport} 요금은 {season}부터 {n}% 오른다.",
         "{food} 판매량은 한 달 만에 {n}% 증가했다.", "시민 단체는 {place} 이전 계획에 반대 의견을 냈다.",
         "{city}는 {season} 축제에 {n}만 명이 찾을 것으로 예상했다.", "정부는 {item} 안전 기준을 새로 마련하기로 했다."]
SLOTS = {
    "place": ["도서관", "수영장", "전통시장", "구청", "기차역", "박물관", "동네 공원", "주민센터", "체육관", "대형 마트", "우체국",
              "버스 터미널", "미술관", "보건소", "한강 공원", "캠핑장", "식물원", "영화관"],
    "time": ["평일 오전", "주말 오후", "퇴근 시간", "점심시간", "월요일 아침", "연휴 첫날", "금요일 저녁", "새벽", "일요일 밤",
             "출근 시간"],
    "item": ["우산", "보조 배터리", "텀블러", "수건", "물티슈", "운동화", "전기 주전자", "노트", "선크림", "장바구니", "등산 스틱",
             "무선 이어폰", "가습기", "공기청정기", "캠핑 의자", "손전등"],
    "person": ["동료", "선배", "이웃", "담임 선생님", "관리소장", "사촌 형", "단골 가게 사장님", "팀장님", "룸메이트", "동아리 후배"],
    "food": ["김치찌개", "된장국", "떡볶이", "잡채", "불고기", "비빔밥", "순두부찌개", "갈비찜", "김밥", "칼국수", "파전", "냉면"],
    "city": ["부산", "대구", "광주", "대전", "전주", "강릉", "여수", "경주", "춘천", "제주", "인천", "수원"],
    "season": ["봄", "여름", "가을", "겨울", "장마철", "연말", "명절 연휴", "방학"],
    "transport": ["지하철", "시내버스", "KTX", "고속버스", "광역버스", "공항철도", "마을버스", "따릉이"],
    "hobby": ["등산", "뜨개질", "수영", "요가", "사진", "캠핑", "클라이밍", "보드게임", "독서 모임", "달리기"],
    "tech": ["Docker", "Nginx", "PostgreSQL", "Kubernetes", "Redis", "Jenkins", "Kafka", "Elasticsearch", "MySQL", "Grafana"],
    "tech2": ["Prometheus", "RabbitMQ", "MongoDB", "Airflow", "Spark", "Terraform", "Ansible", "Vault"],
    "opt": ["max_connections", "worker_processes", "timeout", "replicas", "cache_size", "log_level", "heap_size",
            "retry_limit"],
    "err": ["OOMKilled", "connection refused", "timeout", "permission denied", "too many open files", "disk full"],
}
QUESTIONS = {"haeyo": ["{item} 관련해서 고민이 있어요. 어떻게 하면 좋을까요?", "{place} 갈 때 뭘 챙겨야 해요?",
                       "{person}랑 같이 {place}에 가려는데 팁 있어요?"],
             "hapsyo": ["{tech}에서 {err} 오류가 납니다. 어떻게 해결해야 합니까?", "{tech} 성능을 높이는 방법을 알려 주십시오."],
             "banmal": ["{item} 뭐 사야 할지 모르겠어. 추천해 줘.", "{place} 가려는데 언제가 좋아?"],
             "haera": ["다음 기사를 요약해 주세요.\n\n({place} 관련 기사 {n}번)", "아래 보도자료를 세 문장으로 요약해 주세요."]}
SYSTEM = {"banmal": "너는 사용자의 오랜 친구야. 반말로 편하게 대답해.", "hapsyo": "당신은 정중한 IT 기술 상담원입니다.",
          "haeyo": "당신은 친절한 한국어 도우미예요.", "haera": "당신은 신문 기사를 요약하는 편집자입니다."}
CODE = "\n\n```python\nimport {mod}\n\ndef load_{name}(path):\n    with open(path) as f:\n        return {mod}.load(f)\n```"
SWAPS = {"가장": "제일", "먼저": "우선", "정도": "가량", "보통": "대개", "금방": "곧", "훨씬": "한결", "반드시": "꼭",
         "미리": "사전에", "자주": "종종", "그냥": "일단", "계속": "꾸준히", "새": "새로운", "좋아요": "괜찮아요"}
BROKEN_STARTS = [". ", "assistant: ", "\n\n", "… ", "** ", "답변: "]
FOREIGN = ["Sure! Here is how you can fix it. Restart the service and check the logs again.",
           "こんにちは。この問題は設定を確認すれば解決できます。"]


_PAIRS = {"은": "는", "는": "은", "이": "가", "가": "이", "을": "를", "를": "을", "과": "와", "와": "과"}
_WITH_CODA = {"은", "이", "을", "과"}
_HANGUL_VALUES = sorted({v for vs in SLOTS.values() for v in vs if "가" <= v[-1] <= "힣"}, key=len, reverse=True)
_JOSA = re.compile("(" + "|".join(map(re.escape, _HANGUL_VALUES)) + ")(은|는|이|가|을|를|과|와)(?=[\\s.,!?])")


def _josa(m: re.Match) -> str:
    word, particle = m.group(1), m.group(2)
    has_coda = (ord(word[-1]) - 0xAC00) % 28 != 0
    return word + (particle if (particle in _WITH_CODA) == has_coda else _PAIRS[particle])


def _fill(template: str, rng: random.Random) -> str:
    return _JOSA.sub(_josa, _fill_slots(template, rng))


def _fill_slots(template: str, rng: random.Random) -> str:
    return template.format(n=rng.randint(2, 99), port=rng.choice([80, 443, 5432, 6379, 8080, 9092, 9200]), mod=rng.choice(["json", "yaml", "pickle"]),
                           name=rng.choice(["config", "items", "users"]),
                           **{k: rng.choice(v) for k, v in SLOTS.items()})


def make_row(i: int, rng: random.Random) -> dict:
    level = rng.choices(["haeyo", "hapsyo", "banmal", "haera"], weights=[5, 2, 2, 1])[0]
    pool = {"haeyo": HAEYO, "hapsyo": HAPSYO, "banmal": BANMAL, "haera": HAERA}[level]
    answer = " ".join(_fill(s, rng) for s in rng.sample(pool, rng.randint(3, 5)))
    if level == "hapsyo" and rng.random() < 0.3:
        answer += _fill(CODE, rng) + "\n\n위 함수는 파일을 읽어 객체로 돌려줍니다."
    messages = [{"role": "system", "content": SYSTEM[level]}] if rng.random() < 0.8 else []
    messages += [{"role": "user", "content": _fill(rng.choice(QUESTIONS[level]), rng)},
                 {"role": "assistant", "content": answer}]
    if level != "haera" and rng.random() < 0.15:
        messages += [{"role": "user", "content": _fill(rng.choice(QUESTIONS[level]), rng)},
                     {"role": "assistant", "content": " ".join(_fill(s, rng) for s in rng.sample(pool, 2))}]
    return {"messages": messages, "id": f"r{i}", "category": "summary" if level == "haera" else "daily",
            "speech_level": level}


def near_copy(row: dict, rng: random.Random, kind: str) -> dict:
    row = json.loads(json.dumps(row))
    msg = max((m for m in row["messages"] if m["role"] == "assistant"), key=lambda m: len(m["content"]))
    text = msg["content"]
    if kind == "word":
        words = [w for w in SWAPS if w in text]
        if words:
            w = rng.choice(words)
            text = text.replace(w, SWAPS[w], 1)
        else:
            text = text.replace(" ", " 정말 ", 1)
    if kind in ("punct", "word") and rng.random() < 0.5:
        text = text.replace(". ", "! ", 1) if ". " in text else text + "!"
    if kind in ("spacing", "word") and rng.random() < 0.5:
        text = text.replace(" ", "  ", 2).replace("을 ", "을", 1)
    msg["content"] = text
    return row


def make_dataset(n: int, seed: int = 0) -> tuple[list[str], dict[int, tuple[int, str]]]:
    """JSONL lines and the planted copies ``{copy_line: (source_line, kind)}`` (lines are 1-based)."""
    rng = random.Random(seed)
    lines: list[str] = []
    good: list[tuple[int, dict]] = []
    planted: dict[int, tuple[int, str]] = {}
    for i in range(n):
        r = rng.random()
        if good and r < 0.05:
            src_line, src = rng.choice(good)
            kind = rng.choice(["punct", "spacing", "word", "word", "word"])
            lines.append(json.dumps({**near_copy(src, rng, kind), "id": f"c{i}"}, ensure_ascii=False))
            planted[len(lines)] = (src_line, kind)
            continue
        row = make_row(i, rng)
        answer = row["messages"][-1]
        if r < 0.07:
            answer["content"] = rng.choice(BROKEN_STARTS) + answer["content"]
        elif r < 0.075:
            answer["content"] = "... !!! ???"
        elif r < 0.085:
            answer["content"] = rng.choice(FOREIGN)
        elif r < 0.095 and row["speech_level"] != "haera":
            polite = row["speech_level"] in ("haeyo", "hapsyo")
            answer["content"] += " 그건 걱정하지 마. 내가 알려 줄게." if polite else " 도움이 되었으면 좋겠습니다."
        elif r < 0.20:
            from korlora.clean.disclaimer import DISCLAIMER_FAMILY

            d = rng.choice(DISCLAIMER_FAMILY)
            answer["content"] = f"{d} {answer['content']}" if rng.random() < 0.5 else f"{answer['content']} {d}"
        elif r < 0.201:
            lines.append(json.dumps(row, ensure_ascii=False)[:-7])
            continue
        else:
            good.append((len(lines) + 1, row))
        lines.append(json.dumps(row, ensure_ascii=False))
    return lines, planted


# --- measurements ------------------------------------------------------------------------------------

def bench_clean(path: Path, engine: str, speech_level: bool, workdir: Path, **kw) -> dict:
    from korlora.clean.config import CleanConfig
    from korlora.clean.pipeline import clean_dataset

    out = workdir / f"clean_{engine}_{int(speech_level)}.jsonl"
    cfg = CleanConfig(input=str(path), output=str(out), engine=engine, speech_level=speech_level, **kw)
    t0 = time.perf_counter()
    summary = clean_dataset(cfg)
    elapsed = time.perf_counter() - t0
    return {"engine": engine, "kiwi": speech_level, "rows": summary["lines"], "seconds": elapsed,
            "rows_per_s": summary["lines"] / elapsed, "summary": summary, "output": str(out)}


def planted_recall(rejects_path: Path, planted: dict[int, tuple[int, str]]) -> dict:
    from korlora.io import load_jsonl_plain

    caught = {r["line"] for r in load_jsonl_plain(rejects_path) if r["reason"] in ("duplicate", "near_duplicate")}
    by_kind: dict[str, list[bool]] = {}
    for line, (_, kind) in planted.items():
        by_kind.setdefault(kind, []).append(line in caught)
    out = {k: sum(v) / len(v) for k, v in sorted(by_kind.items())}
    out["all"] = sum(line in caught for line in planted) / max(1, len(planted))
    return out


def dedup_forms(lines: list[str]) -> tuple[list[str], list[int]]:
    from korlora.clean.dedup import dedup_form, dedup_text

    forms, line_numbers = [], []
    for number, line in enumerate(lines, start=1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        forms.append(dedup_form(dedup_text(row)))
        line_numbers.append(number)
    return forms, line_numbers


def _recall(dropped_lines: set[int], planted: dict[int, tuple[int, str]], kinds=("word",),
            lines: list[int] | None = None) -> float:
    """Share of the planted copies (of ``kinds``, among ``lines`` when given) that were dropped."""
    present = set(lines) if lines is not None else None
    chosen = [line for line, (src, kind) in planted.items()
              if kind in kinds and (present is None or (line in present and src in present))]
    return sum(line in dropped_lines for line in chosen) / max(1, len(chosen))


def bench_ours(forms, line_numbers, planted, threshold=0.8, ngram=None, num_perm=None, bands=None) -> dict:
    from korlora.clean.dedup import (
        DEFAULT_BANDS,
        DEFAULT_NGRAM,
        DEFAULT_NUM_PERM,
        MinHasher,
        candidate_pairs,
        estimate_margin,
        first_kept,
        verify_pairs,
    )

    num_perm, bands, ngram = num_perm or DEFAULT_NUM_PERM, bands or DEFAULT_BANDS, ngram or DEFAULT_NGRAM
    t0 = time.perf_counter()
    hasher = MinHasher(num_perm=num_perm, bands=bands, ngram=ngram)
    signatures = hasher.signatures(forms)
    t1 = time.perf_counter()
    pairs = candidate_pairs(hasher.band_keys(signatures), signatures=signatures,
                            min_estimate=threshold - estimate_margin(threshold, num_perm))
    verified = sorted(verify_pairs(forms, pairs, threshold, ngram), key=lambda p: (p[1], p[0]))
    dropped = first_kept(len(forms), verified)
    t2 = time.perf_counter()
    lines = {line_numbers[j] for j in dropped}
    return {"method": f"korlora numpy MinHash ({num_perm} perm, {bands}×{num_perm // bands}, {ngram}-gram)",
            "rows": len(forms), "seconds": t2 - t0, "signature_s": t1 - t0, "lsh_verify_s": t2 - t1,
            "rows_per_s": len(forms) / (t2 - t0), "candidates": len(pairs), "dropped": len(dropped),
            "recall_word_edit": _recall(lines, planted, lines=line_numbers),
            "recall_all": _recall(lines, planted, ("word", "punct", "spacing"), lines=line_numbers)}


def bench_datasketch(forms, line_numbers, planted, threshold=0.8, ngram=None, num_perm=None) -> dict:
    from datasketch import MinHash, MinHashLSH

    from korlora.clean.dedup import DEFAULT_NGRAM, DEFAULT_NUM_PERM

    num_perm, ngram = num_perm or DEFAULT_NUM_PERM, ngram or DEFAULT_NGRAM
    t0 = time.perf_counter()
    shingles = ([f[i:i + ngram].encode() for i in range(max(1, len(f) - ngram + 1))] for f in forms)
    hashes = MinHash.bulk(shingles, num_perm=num_perm, seed=1)
    t1 = time.perf_counter()
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    dropped = set()
    for k, m in enumerate(hashes):
        if lsh.query(m):
            dropped.add(line_numbers[k])
        else:
            lsh.insert(k, m)
    t2 = time.perf_counter()
    return {"method": f"datasketch MinHashLSH ({num_perm} perm, {lsh.b}×{lsh.r}, {ngram}-gram)", "rows": len(forms),
            "seconds": t2 - t0, "signature_s": t1 - t0, "lsh_verify_s": t2 - t1, "rows_per_s": len(forms) / (t2 - t0),
            "candidates": None, "dropped": len(dropped), "recall_word_edit": _recall(dropped, planted, lines=line_numbers),
            "recall_all": _recall(dropped, planted, ("word", "punct", "spacing"), lines=line_numbers)}


def bench_datasketch_verified(forms, line_numbers, planted, threshold=0.8, ngram=None, num_perm=None,
                              bands=None) -> dict:
    """datasketch on the same terms as ours: the same bands × rows (instead of the ones it derives from the
    threshold), every LSH candidate verified by the same exact n-gram Jaccard, keep-first."""
    from datasketch import MinHash, MinHashLSH

    from korlora.clean.dedup import DEFAULT_BANDS, DEFAULT_NGRAM, DEFAULT_NUM_PERM, jaccard, shingle_set

    num_perm, bands, ngram = num_perm or DEFAULT_NUM_PERM, bands or DEFAULT_BANDS, ngram or DEFAULT_NGRAM
    t0 = time.perf_counter()
    shingles = ([f[i:i + ngram].encode() for i in range(max(1, len(f) - ngram + 1))] for f in forms)
    hashes = MinHash.bulk(shingles, num_perm=num_perm, seed=1)
    t1 = time.perf_counter()
    lsh = MinHashLSH(num_perm=num_perm, params=(bands, num_perm // bands))
    sets: dict = {}

    def shingles_of(k: int):
        if k not in sets:
            sets[k] = shingle_set(forms[k], ngram)
        return sets[k]

    dropped, candidates = set(), 0
    for k, m in enumerate(hashes):
        found = lsh.query(m)
        candidates += len(found)
        if any(jaccard(shingles_of(k), shingles_of(j)) >= threshold for j in found):
            dropped.add(line_numbers[k])
        else:
            lsh.insert(k, m)
    t2 = time.perf_counter()
    return {"method": f"datasketch MinHashLSH, verified ({num_perm} perm, {bands}×{num_perm // bands}, {ngram}-gram)",
            "rows": len(forms), "seconds": t2 - t0, "signature_s": t1 - t0, "lsh_verify_s": t2 - t1,
            "rows_per_s": len(forms) / (t2 - t0), "candidates": candidates, "dropped": len(dropped),
            "recall_word_edit": _recall(dropped, planted, lines=line_numbers),
            "recall_all": _recall(dropped, planted, ("word", "punct", "spacing"), lines=line_numbers)}


def bench_rebalance(path: Path, engine: str, workdir: Path) -> dict:
    from korlora.clean.config import RebalanceConfig
    from korlora.clean.rebalance import rebalance_dataset

    cfg = RebalanceConfig(input=str(path), output=str(workdir / f"rebalanced_{engine}.jsonl"), engine=engine)
    t0 = time.perf_counter()
    stats = rebalance_dataset(cfg)
    elapsed = time.perf_counter() - t0
    return {"engine": engine, "rows": stats["lines"], "seconds": elapsed, "rows_per_s": stats["lines"] / elapsed,
            "before": stats["before"]["share"], "after": stats["after"]["share"]}


def markdown(res: dict) -> str:
    out = [f"Machine: {res['machine']} (1-minute load average {res['load_before']:.1f} before, "
           f"{res['load_after']:.1f} after). Rows: {res['rows']:,} synthetic (seed {res['seed']}); "
           f"planted copies: {res['planted']:,}."]
    if res["clean"] or res["rebalance"]:
        out += ["", "| step | engine | rows | seconds | records/s |", "|---|---|---:|---:|---:|"]
    for r in res["clean"]:
        step = "clean, Kiwi gate on" if r["kiwi"] else "clean, Kiwi gate off"
        out.append(f"| {step} | {r['engine']} | {r['rows']:,} | {r['seconds']:.1f} | {r['rows_per_s']:,.0f} |")
    for r in res["rebalance"]:
        out.append(f"| rebalance | {r['engine']} | {r['rows']:,} | {r['seconds']:.1f} | {r['rows_per_s']:,.0f} |")
    if res["near_dup"]:
        out += ["", "| near-dup method | rows | seconds | records/s | recall (one-word edits) | recall (all planted) |",
                "|---|---:|---:|---:|---:|---:|"]
    for r in res["near_dup"]:
        out.append(f"| {r['method']} | {r['rows']:,} | {r['seconds']:.1f} | {r['rows_per_s']:,.0f} | "
                   f"{r['recall_word_edit']:.3f} | {r['recall_all']:.3f} |")
    if res.get("grid"):
        out += ["", f"| parameters (first {res['grid'][0]['rows']:,} rows) | candidates | seconds | "
                "recall (one-word edits) |", "|---|---:|---:|---:|"]
        for r in res["grid"]:
            out.append(f"| {r['method']} | {r['candidates']:,} | {r['seconds']:.2f} | {r['recall_word_edit']:.3f} |")
    if res.get("end_to_end_recall"):
        rec = res["end_to_end_recall"]
        out += ["", "End to end (clean, exact + near dedup), planted copies caught: "
                + ", ".join(f"{k} {v:.3f}" for k, v in rec.items())]
    return "\n".join(out)


STEPS = ("clean", "rebalance", "near_dup", "grid")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=200_000)
    p.add_argument("--kiwi_rows", type=int, default=None, help="rows for the Kiwi-gate runs (default: --rows)")
    p.add_argument("--datasketch_rows", type=int, default=None, help="rows for datasketch (default: --rows)")
    p.add_argument("--grid_rows", type=int, default=50_000, help="rows for the MinHash parameter grid")
    p.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated subset of {','.join(STEPS)}")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip_ray", action="store_true", help="only the single-process runs")
    p.add_argument("--workdir", default=None, help="where the synthetic data and outputs go (default: a temp dir)")
    p.add_argument("--out", default=None, help="write the results JSON here")
    args = p.parse_args(argv)
    steps = set(args.steps.split(","))
    if steps - set(STEPS):
        p.error(f"unknown steps: {', '.join(sorted(steps - set(STEPS)))}")

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="korlora-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    lines, planted = make_dataset(args.rows, args.seed)
    path = workdir / "synthetic.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"generated {len(lines):,} rows ({path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s",
          file=sys.stderr)
    kiwi_path = path
    if args.kiwi_rows and args.kiwi_rows < args.rows:
        kiwi_path = workdir / "synthetic_kiwi.jsonl"
        kiwi_path.write_text("\n".join(lines[: args.kiwi_rows]) + "\n", encoding="utf-8")

    engines = ["local"] if args.skip_ray else ["local", "ray"]
    if not args.skip_ray and steps & {"clean", "rebalance"}:
        from korlora.raycompat import init_local_ray

        init_local_ray()
    res: dict = {"machine": f"{os.cpu_count()} CPU cores, {sys.platform}", "load_before": os.getloadavg()[0],
                 "rows": args.rows, "seed": args.seed, "planted": len(planted), "clean": [], "rebalance": [],
                 "near_dup": [], "grid": []}
    for engine in engines:
        if "clean" in steps:
            res["clean"].append(bench_clean(path, engine, False, workdir))
            res["clean"].append(bench_clean(kiwi_path, engine, True, workdir))
            print(json.dumps({k: v for k, v in res["clean"][-1].items() if k != "summary"}), file=sys.stderr)
        if "rebalance" in steps:
            res["rebalance"].append(bench_rebalance(path, engine, workdir))
    if res["clean"]:
        res["end_to_end_recall"] = planted_recall(Path(res["clean"][0]["output"] + ".rejects.jsonl"), planted)

    forms, line_numbers = dedup_forms(lines)
    if "near_dup" in steps:
        n_ds = min(args.datasketch_rows or len(forms), len(forms))
        res["near_dup"].append(bench_ours(forms, line_numbers, planted))
        if n_ds < len(forms):
            res["near_dup"].append(bench_ours(forms[:n_ds], line_numbers[:n_ds], planted))
            res["near_dup"][-1]["method"] += " (datasketch's subset)"
        res["near_dup"].append(bench_datasketch(forms[:n_ds], line_numbers[:n_ds], planted))
        res["near_dup"].append(bench_datasketch_verified(forms[:n_ds], line_numbers[:n_ds], planted))
    if "grid" in steps:
        sub = min(args.grid_rows, len(forms))
        for ngram, num_perm, bands in [(4, 80, 16), (4, 64, 16), (4, 120, 20), (4, 112, 28), (5, 80, 16),
                                       (3, 80, 16), (7, 80, 16)]:
            res["grid"].append(bench_ours(forms[:sub], line_numbers[:sub], planted, ngram=ngram, num_perm=num_perm,
                                          bands=bands))
    res["load_after"] = os.getloadavg()[0]
    for r in res["clean"]:
        r.pop("summary", None)
    print(markdown(res))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(res, ensure_ascii=False, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
