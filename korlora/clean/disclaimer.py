"""The disclaimer family: the hedges a collapsed model opens (or closes) its answers with.

Not one string but a family: "정확한 판단은 …", "전문가와 상담하세요", "법률 자문이 아니며 …", "참고용이며 …",
"투자 판단의 책임은 본인에게 …", "저는 의사가 아니지만 …", "AI 언어 모델로서 …", "정확하지 않을 수 있습니다",
in any position of the answer. A concrete referral ("자살예방 상담전화 109", "정신건강의학과 진료를 받아 보세요")
is advice, not a hedge, and is never counted. An ordinary mention of experts ("전문가들은
금리가 내릴 것으로 본다", "의사와 상담한 결과") is not a disclaimer: the expert patterns need a directive
(상담하세요, 조언을 구하시기 바랍니다, 맡기는 것이 좋습니다, …).
"""

from __future__ import annotations

import re

# Who the reader is sent to.
_EXPERT = (
    r"(?:전문가|전문의|변호사|법무사|세무사|회계사|노무사|변리사|의사|약사|상담사|설계사|정비사|주치의|의료진|공인중개사"
    r"|병원|관련\s*기관|관계\s*기관|담당\s*기관|해당\s*기관|전문\s*기관|고객\s*센터|법률\s*전문가|세무\s*전문가|재무\s*전문가)"
)
_CONSULT = (r"(?:상담|문의|조언|자문|확인|도움|검토|진단|진료|안내|방문|상의|의견|판단|여쭤|여쭈|물어|찾아가|찾아)"
            r"(?![서비료문증말])")  # not 진단서, 진료비, …
# Advice or request endings: the consult is recommended to the reader, not narrated.
_DIRECTIVE = (
    r"(?:하세요|하십시오|하시기\s*바랍|하시길|하시는\s*(?:것이|게|걸)|하는\s*(?:것이|게)\s*(?:좋|안전|바람직|확실|맞)"
    r"|해\s*(?:보세요|보십시오|보시기|보시길|보시는|보는\s*(?:것이|게)|주세요|주십시오|봐)|하셔야|해야\s*(?:합니다|해요|해)"
    r"|받으세요|받으십시오|받으시기|받으시길|받아\s*(?:보세요|보시|보십시오|야|봐)|받는\s*(?:것이|게)"
    r"|구하세요|구하십시오|구하시기|구하시길|구하는\s*(?:것이|게)|을\s*권|를\s*권|권(?:합니다|해요|장)"
    r"|보세요|보십시오|보시는\s*(?:것이|게|걸)|보는\s*게\s*(?:맞|좋|확실)|봐(?:요)?(?=[.!?]|$)|가\s*봐(?=[.!?]|$)"
    r"|추천|권장|바람직|확실해|확실합|맞습니다|맞아요|따르시기|따르세요|따르십시오)"
)
_ME = r"(?:저는|제가|나는|내가|저도|나도|전|난)"
_PRO = (r"(?:(?:의료|법률|세무|금융|재무|투자|상담)\s*)?(?:전문가|의사|변호사|세무사|회계사|노무사|약사|전문의|자문가"
        r"|상담사|법률가|재무\s*설계사|투자\s*전문가)")
_PATTERNS: tuple[tuple[str, str], ...] = (
    ("accurate_judgement",
     r"정확한\s*(?:판단|진단|답변|정보|내용|결정|법률\s*판단|상황\s*판단|세액|금액)\S{0,4}\s[^.!?\n]{0,40}?"
     r"(?:전문가|상담|문의|확인|맡기|구하|병원|받아\s*보|받으)"),
    ("consult_expert",
     # not a specific question put to them ("병원에 와야 하는지 여쭤보십시오"): that is advice
     _EXPERT + r"(?:(?!\S*지\s)[^.!?\n]){0,20}?" + _CONSULT + r"[^.!?\n]{0,16}?" + _DIRECTIVE),
    ("leave_to_expert",
     _EXPERT + r"\S{0,3}\s*(?:꼭\s*|반드시\s*)?맡기(?:세요|십시오|시기|시길|는\s*(?:것이|게))"),
    ("follow_expert",  # 의료진의 판단을 따르시기 바랍니다, 전문가만 판단할 수 있습니다
     _EXPERT + r"(?:의|만)\s*(?:판단|지시|소견|해석|안내)\S{0,2}\s*(?:을|를)?\s*(?:따르|내릴\s*수|할\s*수)"),
    ("not_advice",
     r"(?:법률|법적|의학적|의료|세무|투자|재무|금융|전문적인|전문|공식적인|법적\s*효력이\s*있는)\s*"
     r"(?:자문|조언|상담|권유|진단|의견|소견|판단|추천)"
     r"(?:이|가|을|를|은|는|으로)?\s*(?:아니|아닙|아냐|대신하지|대체하지|대신할\s*수\s*없|대체할\s*수\s*없|드릴\s*수\s*없|받아들이지)"),
    ("not_a_recommendation",
     r"(?:투자|매수|매도|특정\s*상품|상품|종목)\S{0,3}\s*(?:을|를)?\s*(?:권유|추천|권)(?:하는\s*것이|이|가)?\s*아(?:니|닙)"
     r"|투자를\s*권하는\s*것이\s*아니"),
    ("not_a_professional",
     _ME + r"\s*(?:\S+\s*){0,2}?" + _PRO + r"(?:가|이|는)\s*아(?:니|닙|냐)"
     r"|(?:^|(?<=[.!?] ))\s*" + _PRO + r"(?:가|이|는)\s*아니(?:라서|어서|지만|므로|니까|기\s*때문)"
     r"|비전문가의\s*(?:의견|생각|견해)"),
    ("ai_self_reference",
     r"(?:AI|인공지능|언어\s*모델|챗봇|어시스턴트)\s*(?:로서|으로서|이므로|이기\s*때문에|이라서|인\s*저는|인\s*제가)"
     r"|(?:AI|인공지능|언어\s*모델)(?:이|가)\s*(?:생성한|만든|작성한)\s*(?:답변|글|내용)"),
    ("may_be_wrong",
     r"(?:답변|설명|내용|정보|말|말씀|제\s*답|이\s*답)[^.!?\n]{0,12}?"
     r"(?:틀릴\s*수(?:도)?\s*있|정확하지\s*않을\s*수(?:도)?\s*있|정확하진\s*않을\s*수|사실과\s*다를\s*수|정확성을\s*보장하지\s*않"
     r"|보장하지\s*않습|보장할\s*수\s*없)"
     r"|정확하(?:지|진)\s*않을\s*수(?:도)?\s*있(?:습니다|어요|어)"
     r"|반영되지\s*않았을\s*수(?:도)?\s*있|확실한\s*답은\s*드릴\s*수\s*없|단정할\s*수\s*없(?:으니|으므로|어서)"),
    ("do_not_rely",
     r"(?:근거로|판단\s*근거로)\s*(?:삼지|행동하지|결정하지)\s*마|맹신하지\s*마|그대로\s*믿지\s*마"
     r"|법적\s*(?:효력|구속력)(?:이|은)\s*없|가볍게\s*들어\s*주"),
    ("for_reference_only",
     r"참고용(?:이며|으로|입니다|일\s*뿐|이에요|이니|이므로|으로만)|참고(?:로만|만)\s*(?:하|해)|참고\s*자료로만"
     r"|참고\s*(?:사항|용도)(?:에\s*불과|일\s*뿐|로만)|참고\s*삼아|어디까지나\s*참고"),
    ("general_information_only",
     r"일반적인\s*(?:정보|안내|내용|설명)(?:일\s*뿐|에\s*불과|이며|로만|를\s*제공하는\s*것)|일반론(?:일\s*뿐|에\s*불과)"
     r"|정보\s*제공\s*(?:목적|차원)|교육\s*목적으로만"),
    ("own_responsibility",
     r"(?:투자|판단|결정|이용|선택)(?:의|에\s*대한)?\s*책임은\s*(?:전적으로\s*)?(?:본인|투자자|사용자|이용자|귀하|각자)"
     r"|(?:본인|이용자|사용자|투자자|귀하)(?:의|에게)?\s*(?:판단과\s*)?책임(?:이\s*있|하에|\s*아래)"
     r"|(?:본인의|스스로의)\s*판단과\s*책임"),
    ("no_liability",
     r"(?:답변|내용|정보|결과|손해)[^.!?\n]{0,24}책임(?:을|도)?\s*(?:지지\s*않|질\s*수\s*없|지기\s*어렵)"
     r"|어떠한\s*책임도\s*지지\s*않|책임질\s*수\s*없"),
    ("loss_risk",
     r"원금\s*손실(?:의)?\s*(?:위험|가능성)이\s*있|과거\s*(?:의\s*)?수익률이\s*미래"),
    ("disclaimer_label", r"면책\s*(?:조항|고지|공고)"),
)
PATTERNS: dict[str, re.Pattern[str]] = {name: re.compile(rx, re.M) for name, rx in _PATTERNS}

# A concrete referral — a named crisis or health service, or a number to call — is advice, not a hedge:
# "정신건강위기 상담전화 1577-0199로 전화하세요", "정신건강의학과 진료를 받아 보세요", "바로 112에 신고하세요".
_SERVICE = (
    r"(?:자살예방\s*상담전화|정신건강위기\s*상담전화|정신건강복지센터|정신건강의학과|청소년\s*상담(?:전화|복지센터)"
    r"|생명의\s*전화|여성긴급전화|해바라기센터|응급실|수면\s*클리닉|대한법률구조공단|법률홈닥터)"
)
_NUMBER_CALL = (r"(?<![\d.,-])(?:1\d{2}|1\d{3}(?:-\d{4})?|0\d{1,2}-\d{3,4}-\d{4})(?![\d.,%])\)?\s*"
                r"(?:번\S*|에|으로|로|를|을|나|이나|\s)\S{0,3}\s*(?:전화|신고|연락|부르|문의|상담|운영)")
REFERRAL = re.compile(rf"{_SERVICE}|{_NUMBER_CALL}")
_SENTENCE = re.compile(r"[^.!?\n]*(?:[.!?]+|\n|$)")


def referral_sentences(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` of the sentences of ``text`` that make a concrete referral."""
    return [(m.start(), m.end()) for m in _SENTENCE.finditer(text) if m.group().strip() and REFERRAL.search(m.group())]


# Members of the family (one per pattern at least), openers and closers in several registers; every one
# must be detected. templates.yaml `disclaimers` (what the generators put in broken answers) is drawn from
# the same family; benchmarks/disclaimers_heldout.yaml holds sentences the generators never see.
DISCLAIMER_FAMILY: tuple[str, ...] = (
    "정확한 판단은 전문가와 상담하세요.",
    "정확한 판단을 위해서는 반드시 전문가와 상담하시기 바랍니다.",
    "정확한 진단은 가까운 병원에서 받아 보시는 것이 좋습니다.",
    "정확한 진단은 병원에서 받으세요.",
    "이 답변은 참고용이며, 상황에 따라 달라질 수 있습니다.",
    "본 내용은 법률 자문이 아니며 참고용으로만 활용해 주세요.",
    "법률 자문이 아닙니다.",
    "투자 권유가 아니며, 투자 판단의 책임은 본인에게 있습니다.",
    "이 글은 특정 종목의 매수 추천이 아닙니다.",
    "투자에는 원금 손실의 위험이 있으니 신중하게 결정하세요.",
    "개인의 상황에 따라 다를 수 있으니 전문가의 조언을 꼭 구하세요.",
    "아래 내용은 일반적인 정보일 뿐이므로 정확한 판단은 전문가에게 맡기세요.",
    "구체적인 사항은 반드시 관련 전문가와 상담하신 후 결정하시기 바랍니다.",
    "증상이 계속되면 의사와 상담해 보세요.",
    "세금 문제는 세무사에게 문의하시는 게 안전해요.",
    "이 답변은 의학적 조언을 대신하지 않습니다.",
    "위 정보로 인한 결과에 대해서는 책임을 지지 않습니다.",
    "복잡한 분쟁이라면 변호사에게 맡기는 것이 좋습니다.",
    "저는 의사가 아니지만, 일반적으로 알려진 내용을 말씀드리겠습니다.",
    "저는 법률 전문가가 아니라서 정확하지 않을 수 있어요.",
    "나는 의사가 아니라서 정확하진 않을 수 있어.",
    "AI 언어 모델로서 저는 전문적인 조언을 드릴 수 없습니다.",
    "AI로서 개인적인 의견은 없지만, 일반적으로는 이렇습니다.",
    "제 답변이 틀릴 수도 있으니 꼭 다시 확인해 보세요.",
    "최종 결정은 본인의 판단과 책임 아래 내리시기 바랍니다.",
    "이 내용을 근거로 결정하지 마시고 참고만 하세요.",
    "자세한 건 전문가한테 물어봐.",
    "정확한 건 병원 가서 진료를 받아 봐.",
    "법적인 문제는 반드시 변호사의 도움을 받으십시오.",
    "면책 고지: 이 글은 정보 제공 목적으로만 작성되었습니다.",
)
# Ordinary mentions of experts, advice, responsibility and AI, and concrete referrals; none is a disclaimer.
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
    "지금 바로 이야기할 사람이 필요하면 자살예방 상담전화 109에 전화하세요.",
    "마음이 크게 무너지는 날에는 정신건강위기 상담전화 1577-0199로 24시간 상담을 받으실 수 있습니다.",
    "이런 상태가 2주 넘게 이어지면 정신건강의학과 진료를 받아 보세요.",
    "AI 반도체 수요가 늘면서 메모리 가격이 올랐습니다.",
    "투자 권유를 받을 때는 상품 설명서를 꼭 받아 두세요.",
)


def disclaimer_spans(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, pattern_name)`` of every disclaimer phrase in ``text``, in order, overlaps merged.
    Phrases inside a sentence that makes a concrete referral (:data:`REFERRAL`) are not disclaimers."""
    referrals = referral_sentences(text)
    found = sorted((m.start(), m.end(), name) for name, rx in PATTERNS.items() for m in rx.finditer(text)
                   if not any(s <= m.start() < e for s, e in referrals))
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
    return bool(disclaimer_spans(text))


def row_has_disclaimer(row: dict) -> bool:
    """True if any assistant message of a chat row contains a disclaimer."""
    return any(m.get("role") == "assistant" and is_disclaimer(m.get("content", "")) for m in row["messages"])
