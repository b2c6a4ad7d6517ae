"""How these reports name periods: five-year plans, sessions of the National People's Congress, Chinese
numerals. Genre knowledge shared by the metadata reader (what a report covers) and query understanding
(what a question asks about)."""

from __future__ import annotations

import re

CN_DIGITS = {
    c: n for n, cs in enumerate(["〇零○Ｏ", "一", "二", "三", "四", "五", "六", "七", "八", "九"]) for c in cs
}
CN_NUM = "〇零一二三四五六七八九十两"

# (term, sitting) of the National People's Congress -> the year it met. Local congresses
# (郑州市第十六届人民代表大会) hold their sittings at dates no table can give.
NPC_SESSIONS: dict[tuple[int, int], int] = {
    (1, 1): 1954,
    (1, 2): 1955,
    (1, 3): 1956,
    (1, 4): 1957,
    (1, 5): 1958,
    (2, 1): 1959,
    (2, 2): 1960,
    (2, 3): 1962,
    (2, 4): 1963,
    (3, 1): 1964,
    (4, 1): 1975,
    (5, 1): 1978,
    (5, 2): 1979,
    (5, 3): 1980,
    (5, 4): 1981,
    (5, 5): 1982,
    # from the sixth congress on: five sittings, one each spring
    **{(term, s): 1983 + 5 * (term - 6) + s - 1 for term in range(6, 16) for s in range(1, 6)},
}

# Five-year plans: 第六个五年计划, “十四五”规划, 九五时期, 一五计划 …
PLAN_RE = re.compile(
    r"第(?P<n>[一二三四五六七八九十]{1,3})个五年(?:计划|规划)"
    # 十一五 … 十九五 cannot be anything else
    r"|(?<![一二三四五六七八九十百〇零])[“\"‘]?(?P<t>十[一二三四五六七八九])五"
    # 一五 … 九五 and 十五 are also numbers (十五个, 一九五八): only before a word that makes them a plan
    r"|(?<![一二三四五六七八九十百〇零])[“\"‘]?(?P<m>十|[一二三四五六七八九])五[”\"’]?"
    r"(?=计划|规划|时期|期间|末|以来|的|[，,。？?\s]|$)"
)
# A question that names a congress instead of a year: 第四届全国人大, 五届人大二次会议, 第六届全国人民代表大会第三次会议
NPC_NAMED_RE = re.compile(
    r"第?(?P<term>[一二三四五六七八九十]{1,3})届(?:全国)?人(?:民代表)?大(?:会)?"
    r"(?:第?(?P<sitting>[一二三四五六七八九十]{1,2})次(?:会议)?)?"
)


def cn_number(s: str) -> int | None:
    """一 -> 1, 十 -> 10, 十二 -> 12, 二十三 -> 23, '14' -> 14 (ordinals, months, days)."""
    if s.isdigit():
        return int(s)
    if "十" in s:
        tens, _, ones = s.partition("十")
        t = CN_DIGITS.get(tens, 1) if tens else 1
        o = CN_DIGITS.get(ones, 0) if ones else 0
        return t * 10 + o
    if len(s) == 1 and s in CN_DIGITS:
        return CN_DIGITS[s]
    return {"两": 2}.get(s)


def plan_period(n: int) -> list[int]:
    """The years of the n-th five-year plan: 1 -> 1953–1957, 6 -> 1981–1985, 14 -> 2021–2025."""
    start = {1: 1953, 2: 1958}.get(n, 1966 + 5 * (n - 3))
    return list(range(start, start + 5))


def plans_named(text: str) -> list[tuple[re.Match[str], list[int]]]:
    """The five-year plans a text names, each with its years."""
    out = []
    for m in PLAN_RE.finditer(text):
        n = cn_number(m.group("n") or m.group("t") or m.group("m"))
        if n and 1 <= n <= 20:
            out.append((m, plan_period(n)))
    return out


def npc_session_year(term: int, sitting: int | None) -> int | None:
    """The year a sitting of the National People's Congress met (its first sitting when none is named)."""
    return NPC_SESSIONS.get((term, sitting or 1))
