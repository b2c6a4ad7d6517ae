"""The one Chinese sentence splitter: chunking, the reranker's sentence features and the answer line use it.

Sentences end at 。！？；… (runs such as ？！ or …… stay together), keep their punctuation and any
closing quotes/brackets that follow, and also end at a paragraph break ("\\n", which stays with the
sentence). A sentence end inside a quoted or bracketed span of reasonable length (「」“”《》（）【】) is
not a split point. Text that went through `normalize_for_matching` has half-width !?; — pass
`ends=MATCHING_ENDS` for it.
"""

from __future__ import annotations

SENTENCE_ENDS = "。！？；…"
# after NFKC the full-width ！？； are half-width
MATCHING_ENDS = SENTENCE_ENDS + "!?;"
_OPEN_TO_CLOSE = {
    "“": "”",
    "「": "」",
    "『": "』",
    "《": "》",
    "（": "）",
    "(": ")",
    "【": "】",
    "‘": "’",
    "〔": "〕",
}
_CLOSE_TO_OPEN = {v: k for k, v in _OPEN_TO_CLOSE.items()}
CLOSERS = "".join(_CLOSE_TO_OPEN)
# A quote/bracket longer than this protects nothing: it is unbalanced or a whole quoted speech.
MAX_PROTECTED_SPAN = 80


def _protected_mask(text: str) -> bytearray:
    """1 for characters inside a closed quote/bracket span of at most MAX_PROTECTED_SPAN chars."""
    mask = bytearray(len(text))
    stack: list[tuple[str, int]] = []
    for i, ch in enumerate(text):
        if ch in _OPEN_TO_CLOSE:
            stack.append((ch, i))
        elif ch in _CLOSE_TO_OPEN:
            opener = _CLOSE_TO_OPEN[ch]
            for k in range(len(stack) - 1, -1, -1):
                if stack[k][0] == opener:
                    j = stack[k][1]
                    if i - j <= MAX_PROTECTED_SPAN:
                        mask[j + 1 : i] = b"\x01" * (i - j - 1)
                    del stack[k:]
                    break
        elif ch == "\n":
            stack.clear()  # quotes and brackets do not span paragraphs
    return mask


def sentence_spans(text: str, ends: str = SENTENCE_ENDS) -> list[tuple[int, int]]:
    """[(start, end)] of the sentences of `text`; together they cover it exactly."""
    n = len(text)
    mask = _protected_mask(text)
    spans: list[tuple[int, int]] = []
    start = 0
    i = 0
    while i < n:
        ch = text[i]
        if ch == "\n" or (ch in ends and not mask[i]):
            j = i + 1
            if ch != "\n":
                while j < n and text[j] in ends:
                    j += 1
                while j < n and text[j] in CLOSERS:
                    j += 1
            while j < n and text[j] in " \t\u3000":
                j += 1
            if ch != "\n" and j < n and text[j] == "\n":
                j += 1
            spans.append((start, j))
            start = i = j
            continue
        i += 1
    if start < n:
        spans.append((start, n))
    return spans


def split_sentences(text: str, ends: str = SENTENCE_ENDS) -> list[str]:
    """Split Chinese text into sentences; "".join(result) == text."""
    return [text[a:b] for a, b in sentence_spans(text, ends)]


def ends_with_sentence_end(text: str, ends: str = SENTENCE_ENDS) -> bool:
    """True when the text (closing quotes and spaces aside) ends with sentence-final punctuation."""
    s = text.rstrip(CLOSERS + " \t\u3000\n")
    return bool(s) and s[-1] in ends
