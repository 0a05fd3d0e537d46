"""The disclaimer family: the hedges a collapsed model opens (or closes) its answers with.

Not one string but a family: "정확한 판단은 …", "전문가와 상담하세요", "법률 자문이 아니며 …", "참고용이며 …",
"투자 판단의 책임은 본인에게 …", in any position of the answer. An ordinary mention of experts ("전문가들은
금리가 내릴 것으로 본다", "의사와 상담한 결과") is not a disclaimer: the expert patterns need a directive
(상담하세요, 조언을 구하시기 바랍니다, 맡기는 것이 좋습니다, …).
"""

from __future__ import annotations

import re

# Who the reader is sent to.
_EXPERT = (
    r"(?:전문가|전문의|변호사|법무사|세무사|회계사|노무사|변리사|의사|약사|상담사|설계사|정비사|주치의|의료진"
    r"|병원|관련\s*기관|관계\s*기관|담당\s*기관|해당\s*기관|전문\s*기관|고객\s*센터)"
)
_CONSULT = r"(?:상담|문의|조언|자문|확인|도움|검토|진단|진료|안내|방문)(?![서비료문증말])"  # not 진단서, 진료비, …
# Advice or request endings: the consult is recommended to the reader, not narrated.
_DIRECTIVE = (
    r"(?:하세요|하십시오|하시기\s*바랍|하시길|하시는\s*(?:것이|게)|하는\s*(?:것이|게)\s*(?:좋|안전|바람직|확실)"
    r"|해\s*(?:보세요|보십시오|보시기|보시길|보시는|보는\s*(?:것이|게)|주세요|주십시오)|하셔야|해야\s*(?:합니다|해요|해)"
    r"|받으세요|받으십시오|받으시기|받으시길|받아\s*(?:보세요|보시|보십시오|야)|받는\s*(?:것이|게)"
    r"|구하세요|구하십시오|구하시기|구하시길|구하는\s*(?:것이|게)|을\s*권|를\s*권|권(?:합니다|해요|장))"
)
_PATTERNS: tuple[tuple[str, str], ...] = (
    ("accurate_judgement",
     r"정확한\s*(?:판단|진단|답변|정보|내용|결정|법률\s*판단|상황\s*판단)\S{0,4}\s[^.!?\n]{0,40}?"
     r"(?:전문가|상담|문의|확인|맡기|구하|병원|받아\s*보|받으)"),
    ("consult_expert",
     _EXPERT + r"[^.!?\n]{0,14}?" + _CONSULT + r"[^.!?\n]{0,16}?" + _DIRECTIVE),
    ("leave_to_expert",
     _EXPERT + r"\S{0,3}\s*(?:꼭\s*|반드시\s*)?맡기(?:세요|십시오|시기|시길|는\s*(?:것이|게))"),
    ("not_advice",
     r"(?:법률|법적|의학적|의료|세무|투자|재무|금융|전문적인|전문|공식적인)\s*(?:자문|조언|상담|권유|진단|의견)"
     r"(?:이|가|을|를|은|는)?\s*(?:아니|대신하지|대체하지|대신할\s*수\s*없|대체할\s*수\s*없)"),
    ("for_reference_only",
     r"참고용(?:이며|으로|입니다|일\s*뿐|이에요|이니|이므로|으로만)|참고(?:로만|만)\s*(?:하|해)|참고\s*자료로만"),
    ("general_information_only",
     r"일반적인\s*정보(?:일\s*뿐|에\s*불과|이며|로만|를\s*제공하는\s*것)"),
    ("own_responsibility",
     r"(?:투자|판단|결정|이용|선택)(?:의|에\s*대한)?\s*책임은\s*(?:전적으로\s*)?(?:본인|투자자|사용자|이용자|귀하|각자)"),
    ("no_liability",
     r"(?:답변|내용|정보)[^.!?\n]{0,24}책임(?:을|도)?\s*지지\s*않"),
)
PATTERNS: dict[str, re.Pattern[str]] = {name: re.compile(rx) for name, rx in _PATTERNS}

# Members of the family (one per pattern at least); every one must be detected.
DISCLAIMER_FAMILY: tuple[str, ...] = (
    "정확한 판단은 전문가와 상담하세요.",
    "정확한 판단을 위해서는 반드시 전문가와 상담하시기 바랍니다.",
    "정확한 진단은 가까운 병원에서 받아 보시는 것이 좋습니다.",
    "이 답변은 참고용이며, 상황에 따라 달라질 수 있습니다.",
    "본 내용은 법률 자문이 아니며 참고용으로만 활용해 주세요.",
    "투자 권유가 아니며, 투자 판단의 책임은 본인에게 있습니다.",
    "개인의 상황에 따라 다를 수 있으니 전문가의 조언을 꼭 구하세요.",
    "아래 내용은 일반적인 정보일 뿐이므로 정확한 판단은 전문가에게 맡기세요.",
    "구체적인 사항은 반드시 관련 전문가와 상담하신 후 결정하시기 바랍니다.",
    "증상이 계속되면 의사와 상담해 보세요.",
    "세금 문제는 세무사에게 문의하시는 게 안전해요.",
    "이 답변은 의학적 조언을 대신하지 않습니다.",
    "위 정보로 인한 결과에 대해서는 책임을 지지 않습니다.",
    "복잡한 분쟁이라면 변호사에게 맡기는 것이 좋습니다.",
)
# Ordinary mentions of experts and advice; none of them is a disclaimer.
ORDINARY_MENTIONS: tuple[str, ...] = (
    "전문가들은 올해 하반기에 금리가 내려갈 것으로 내다봤어요.",
    "세무 전문가가 되려면 세무사 자격시험에 합격해야 합니다.",
    "지난주에 의사와 상담한 결과 큰 문제는 없다고 하더라고요.",
    "그는 그 분야에서 전문가 수준의 실력을 갖췄다.",
    "변호사는 의뢰인의 이익을 위해 일하는 사람이야.",
    "정확한 측정을 위해 온도계를 물에 3분 정도 담가 두세요.",
    "이 책은 요리 초보자를 위한 참고서로 많이 쓰입니다.",
    "상담 전화는 평일 오전 9시부터 받습니다.",
    "견주의 연락처를 받아 두고, 바로 병원에 가서 진단서를 받으세요.",
)


def disclaimer_spans(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, pattern_name)`` of every disclaimer phrase in ``text``, in order, overlaps merged."""
    found = sorted((m.start(), m.end(), name) for name, rx in PATTERNS.items() for m in rx.finditer(text))
    merged: list[tuple[int, int, str]] = []
    for start, end, name in found:
        if merged and start < merged[-1][1]:
            s, e, n = merged[-1]
            merged[-1] = (s, max(e, end), n)
        else:
            merged.append((start, end, name))
    return merged


def is_disclaimer(text: str) -> bool:
    """True if ``text`` contains any member of the disclaimer family."""
    return any(rx.search(text) for rx in PATTERNS.values())


def row_has_disclaimer(row: dict) -> bool:
    """True if any assistant message of a chat row contains a disclaimer."""
    return any(m.get("role") == "assistant" and is_disclaimer(m.get("content", "")) for m in row["messages"])
