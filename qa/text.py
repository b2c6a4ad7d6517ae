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
    text = unicodedata.normalize("NFKC", text)
    text = _t2s().convert(text)
    return text.lower()


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

QUESTION_WORDS = frozenset(
    [
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
        "吗",
        "呢",
        "哪里",
        "何时",
        "多大",
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
