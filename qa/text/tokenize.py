"""Search tokens shared by the lexical index and the query side (so both sides match)."""

from __future__ import annotations

import re
from functools import lru_cache

import rjieba

from qa.text.normalize import normalize_for_matching

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


@lru_cache(maxsize=4096)
def _cut(text: str) -> tuple[str, ...]:
    return tuple(rjieba.cut_for_search(text))


def tokenize(text: str, normalized: bool = False) -> list[str]:
    """Search tokens: jieba (search mode) over normalised text, without punctuation and stop words."""
    if not normalized:
        text = normalize_for_matching(text)
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
