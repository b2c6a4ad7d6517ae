"""The normalisers, each named for what it is for.

- `normalize_for_matching`: NFKC, traditional to simplified, lower case. Questions, passages and
  index tokens are all compared in this form, so a question typed in simplified characters finds a
  1950s report written in traditional ones.
- `normalize_for_embedding`: NFKC and traditional to simplified, case kept (the encoder is cased).
- `normalize_for_eval`: NFKC with every whitespace removed: the eval suite's rule for "a passage
  contains a gold answer", robust to the hard line breaks and stray spaces of PDF extractions.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache
from typing import Any

_T2S: Any = None
_T2S_LOCK = threading.Lock()
_WS = re.compile(r"\s+")


def to_simplified(text: str) -> str:
    """Traditional to simplified Chinese (OpenCC t2s); other text passes unchanged."""
    global _T2S
    if _T2S is None:
        with _T2S_LOCK:
            if _T2S is None:
                import opencc

                _T2S = opencc.OpenCC("t2s")
    return str(_T2S.convert(text))


# NFKC folds full-width digits and letters but also turns Chinese full-width punctuation half-width;
# for matching that is what we want (both sides are normalised the same way).
def normalize_for_matching(text: str) -> str:
    """NFKC, traditional to simplified, lower case: the form used for matching."""
    return to_simplified(unicodedata.normalize("NFKC", text)).lower()


@lru_cache(maxsize=1024)
def normalize_for_embedding(text: str) -> str:
    """NFKC and traditional to simplified, case kept: the form a question is embedded in."""
    return to_simplified(unicodedata.normalize("NFKC", text))


def normalize_for_eval(text: str) -> str:
    """NFKC, then remove all whitespace: the form gold answers and passages are compared in."""
    return _WS.sub("", unicodedata.normalize("NFKC", text))
