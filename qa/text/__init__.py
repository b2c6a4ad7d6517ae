"""Text utilities shared by indexing and querying, so both sides see text the same way.

- `normalize`: the normalisers, each named for its use (matching, embedding, evaluation);
- `sentences`: the one Chinese sentence splitter (chunking, features and the answer line use it);
- `tokenize`: jieba search tokens without stop words, numbers, character bigrams;
- `lexicon`: synonyms, designators and place names, loaded from data files a corpus can extend.
"""

from __future__ import annotations

from qa.text.normalize import normalize_for_embedding, normalize_for_eval, normalize_for_matching
from qa.text.sentences import sentence_spans, split_sentences
from qa.text.tokenize import char_bigrams, numbers, tokenize

__all__ = [
    "char_bigrams",
    "normalize_for_embedding",
    "normalize_for_eval",
    "normalize_for_matching",
    "numbers",
    "sentence_spans",
    "split_sentences",
    "tokenize",
]
