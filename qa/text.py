"""Text normalisation and tokenisation shared by indexing and querying (so both sides match)."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import rjieba

_T2S = None


def _t2s():
    global _T2S
    if _T2S is None:
        import opencc

        _T2S = opencc.OpenCC("t2s")
    return _T2S


# NFKC folds full-width digits and letters but also turns Chinese full-width punctuation half-width;
# for matching that is what we want (both sides are normalised the same way).
def normalize(text: str) -> str:
    """NFKC, traditional to simplified, lower case: the form used for matching."""
    return simplified(unicodedata.normalize("NFKC", text)).lower()


def simplified(text: str) -> str:
    """Traditional characters turned simplified, everything else (punctuation, widths) unchanged."""
    return _t2s().convert(text)


_PUNCT_RE = re.compile(r"^[\W_]+$", re.UNICODE)

# Function words and report boilerplate that carry no retrieval signal. Kept short on purpose:
# BM25's idf already discounts frequent terms; these are the ones that also dilute coverage.
STOPWORDS = frozenset(
    [
        "的",
        "了",
        "和",
        "与",
        "及",
        "以及",
        "在",
        "是",
        "为",
        "对",
        "把",
        "被",
        "将",
        "从",
        "等",
        "有",
        "也",
        "就",
        "都",
        "而",
        "并",
        "或",
        "其",
        "之",
        "于",
        "上",
        "下",
        "中",
        "个",
        "这",
        "那",
        "哪",
        "吗",
        "呢",
        "吧",
        "啊",
        "么",
        "什么",
        "多少",
        "哪些",
        "哪个",
        "怎么",
        "怎样",
        "如何",
        "为什么",
        "是否",
        "有没有",
        "几",
        "请问",
        "一下",
        "情况",
        "方面",
        "进行",
    ]
)

# English function words, so an English question's search terms are its content words.
STOPWORDS = STOPWORDS | frozenset(
    [
        "what",
        "was",
        "is",
        "are",
        "were",
        "the",
        "a",
        "an",
        "of",
        "in",
        "on",
        "for",
        "to",
        "and",
        "or",
        "how",
        "much",
        "many",
        "which",
        "who",
        "when",
        "where",
        "why",
        "does",
        "do",
        "did",
        "s",
        "will",
        "be",
        "its",
        "it",
        "by",
        "with",
        "from",
        "about",
    ]
)

# Words that name which document a question is about rather than what it asks; routing uses
# them, but as search terms they only pull in the documents' own preambles.
DESIGNATORS = frozenset(
    [
        "郑州",
        "郑州市",
        "年",
        "十四",
        "四五",
        "十四五",
        "十三",
        "三五",
        "十三五",
        "规划",
        "纲要",
        "规划纲要",
        "政府",
        "工作",
        "报告",
        "政府工作报告",
        "工作报告",
        "期间",
        "时期",
    ]
)


@lru_cache(maxsize=4096)
def _cut(text: str) -> tuple[str, ...]:
    return tuple(rjieba.cut_for_search(text))


def tokenize(text: str, normalized: bool = False) -> list[str]:
    """Search tokens: jieba (search mode) over normalised text, without punctuation and stop words."""
    if not normalized:
        text = normalize(text)
    out = []
    for tok in _cut(text):
        tok = tok.strip()
        if not tok or tok in STOPWORDS or _PUNCT_RE.match(tok):
            continue
        out.append(tok)
    return out


_NUM_RE = re.compile(r"\d+(?:\.\d+)?%?")


def numbers(text: str) -> set[str]:
    """Numbers (with a trailing % kept) in normalised text."""
    return set(_NUM_RE.findall(text))


def char_bigrams(text: str) -> set[str]:
    """Set of CJK/alnum character bigrams: a tokenizer-free overlap signal."""
    chars = [c for c in text if c.isalnum()]
    return {chars[i] + chars[i + 1] for i in range(len(chars) - 1)}


# Abbreviations and everyday words people use for the indicators these reports name formally.
# Genre knowledge, not tuned to any question: each maps a colloquial term onto report wording.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "gdp": ("生产总值", "地区生产总值"),
    "zhengzhou": ("郑州",),
    "经济总量": ("生产总值",),
    "财政收入": ("一般公共预算收入",),
    "税收": ("税收收入",),
    "外贸": ("进出口",),
    "进出口额": ("进出口",),
    "cpi": ("居民消费价格",),
    "物价": ("居民消费价格",),
    "社零": ("社会消费品零售总额",),
    "消费品零售": ("社会消费品零售总额",),
    "固投": ("固定资产投资",),
    "规上": ("规模以上",),
    "研发": ("研发投入",),
    "r&d": ("研发投入", "研发"),
    "地铁": ("轨道交通", "地铁"),
    "高铁": ("高速铁路", "高铁"),
    "飞机场": ("机场",),
    "失业": ("失业率",),
    "就业岗位": ("就业",),
    "工资": ("收入",),
    "老百姓": ("居民",),
    "人均收入": ("居民人均可支配收入", "可支配收入"),
    "收入": ("可支配收入",),
    "空气": ("空气质量", "优良天数"),
    "雾霾": ("pm2.5", "大气"),
    "污水": ("污水处理",),
    "绿地": ("绿化", "公园"),
    "房子": ("住房",),
    "买房": ("住房",),
    "棚改": ("棚户区改造",),
    "旧改": ("老旧小区改造",),
    "学校": ("学校", "中小学", "学位"),
    "上学": ("学位", "学校"),
    "看病": ("医疗", "医院"),
    "医院": ("医院", "医疗"),
    "养老院": ("养老",),
    "老人": ("养老", "老年"),
    "孩子": ("儿童", "托育"),
    "农民": ("农村居民", "农民"),
    "粮食": ("粮食", "粮食产量"),
    "企业数量": ("市场主体",),
    "营商": ("营商环境",),
    "自贸区": ("自贸试验区", "自由贸易试验区"),
    "航空港": ("航空港区", "航空港实验区"),
    "人口": ("常住人口", "人口"),
    "科技企业": ("高新技术企业", "科技型中小企业"),
    "高企": ("高新技术企业",),
    "专利": ("发明专利",),
    "数字经济": ("数字经济",),
    "电商": ("电子商务", "跨境电商"),
}


def expand_terms(terms: list[str]) -> list[str]:
    """Report wording for colloquial terms in the question (extra lexical tokens)."""
    extra: list[str] = []
    for t in terms:
        for syn in SYNONYMS.get(t, ()):
            extra.extend(tokenize(syn, normalized=True) if syn != t else [])
    return [e for e in extra if e not in terms]


def term_present(term: str, text: str) -> bool:
    """The term, or one of its report-wording synonyms, occurs in (normalised) text."""
    return term in text or any(s in text for s in SYNONYMS.get(term, ()))


def term_weight(term: str, idf: dict[str, float]) -> float:
    """idf of a term; for a colloquial term absent from the corpus, the idf of its report wording."""
    if term in idf:
        return idf[term]
    alts = [idf[s] for s in SYNONYMS.get(term, ()) if s in idf]
    return max(alts) if alts else 1.0
