"""BaseEncoder's shared behaviour: clean-up, prompts, batching, progress, order, normalisation, empty input.

The contract is checked with a small deterministic backend defined here (character bigrams hashed into 64
dimensions, on real report sentences), which records every batch the base class hands it; the last test
checks the same promises through the real default encoder.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest

from qa.config import Settings
from qa.encoders import BaseEncoder, Encoder, load_encoder
from qa.encoders.base import E5_PROMPTS, clean_texts, known_prompts, l2_normalise

REPORT = Path(__file__).resolve().parent.parent / "documents" / "2024-zhengzhou-government-work-report.txt"


class BigramEncoder(BaseEncoder):
    """Counts of character bigrams of prompt + text, hashed into 64 buckets, deliberately not unit length."""

    def __init__(self, batch_size: int = 4) -> None:
        super().__init__("bigram-test", 64, "bigram-v1", "Q: ", "P: ", batch_size=batch_size)
        self.batches: list[tuple[list[str], str]] = []

    def _forward(self, texts: list[str], prompt: str) -> np.ndarray:
        self.batches.append((list(texts), prompt))
        out = np.zeros((len(texts), self.dim))
        for row, text in enumerate(texts):
            s = prompt + text
            for a, b in zip(s, s[1:], strict=False):
                out[row, zlib.crc32((a + b).encode()) % self.dim] += 3.0
        return out


@pytest.fixture(scope="module")
def sentences() -> list[str]:
    """Real sentences of the 2024 report, of many lengths."""
    text = REPORT.read_text(encoding="utf-8").replace("。", "。\n")
    out = [s.strip() for s in text.splitlines() if len(s.strip()) > 5]
    return out[20:31]


@pytest.mark.unit
def test_vectors_are_unit_float32_rows_in_the_callers_order(sentences: list[str]) -> None:
    enc = BigramEncoder(batch_size=4)
    assert isinstance(enc, Encoder)
    docs = enc.encode_documents(sentences)
    assert docs.shape == (len(sentences), 64) and docs.dtype == np.float32 and docs.flags.c_contiguous
    assert np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-6)
    alone = np.stack([BigramEncoder().encode_documents([s])[0] for s in sentences])
    assert np.array_equal(docs, alone)  # sorted into batches by length, written back in order
    assert np.array_equal(enc.encode_documents(sentences[::-1])[::-1], docs)


@pytest.mark.unit
def test_batches_progress_and_the_backends_own_batch_size(sentences: list[str]) -> None:
    enc = BigramEncoder(batch_size=4)
    seen: list[int] = []
    enc.encode_documents(sentences, batch_size=3, progress=seen.append)
    assert seen == [3, 3, 3, 2] and [len(b) for b, _ in enc.batches] == seen
    lengths = [len(t) for batch, _ in enc.batches for t in batch]
    assert lengths == sorted(lengths)  # similar lengths share a batch
    enc.batches.clear()
    enc.encode_documents(sentences)  # no batch size given: the backend's (4), no progress needed
    assert [len(b) for b, _ in enc.batches] == [4, 4, 3]
    enc.batches.clear()
    enc.encode_queries(sentences[:6])
    assert [len(b) for b, _ in enc.batches] == [4, 2]


@pytest.mark.unit
def test_prompts_reach_the_forward_pass(sentences: list[str]) -> None:
    enc = BigramEncoder()
    q = enc.encode_queries(sentences[:2])
    p = enc.encode_documents(sentences[:2])
    assert [prompt for _, prompt in enc.batches] == ["Q: ", "P: "]
    assert not np.allclose(q, p)
    enc.passage_prompt = ""
    assert np.array_equal(enc.encode_documents(["Q: " + s for s in sentences[:2]]), q)


@pytest.mark.unit
def test_clean_up_and_empty_input(sentences: list[str]) -> None:
    enc = BigramEncoder()
    text = sentences[0]
    dirty = ["  " + text + " \n", text.replace("，", "\x00", 1), ""]
    v = enc.encode_queries(dirty)
    assert enc.batches[-1][0] == sorted([text, text.replace("，", " ", 1), ""], key=len)
    assert np.array_equal(v[0], enc.encode_queries([text])[0])
    assert np.isfinite(v).all()
    enc.batches.clear()
    calls: list[int] = []
    for out in (enc.encode_queries([]), enc.encode_documents([], progress=calls.append)):
        assert out.shape == (0, 64) and out.dtype == np.float32
    assert enc.batches == [] and calls == []
    with pytest.raises(TypeError, match="not one string"):
        enc.encode_queries(text)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not one string"):
        enc.encode_documents(text)  # type: ignore[arg-type]


@pytest.mark.unit
def test_helpers() -> None:
    assert clean_texts(["\x00a\x00 ", "  "]) == ["a", ""]
    v = l2_normalise(np.array([[3.0, 4.0], [0.0, 0.0]]))
    assert v.dtype == np.float32 and np.allclose(v, [[0.6, 0.8], [0.0, 0.0]])  # a zero row stays zero
    assert known_prompts("nomic-ai/nomic-embed-text-v1.5") == ("search_query: ", "search_document: ")
    assert known_prompts("intfloat/multilingual-e5-large-instruct")[1] == ""
    assert known_prompts("BAAI/bge-base-en-v1.5")[0].startswith("Represent this sentence")
    assert known_prompts("/models/multilingual-e5-base/") == E5_PROMPTS

    class NoForward(BaseEncoder):
        pass

    with pytest.raises(TypeError):
        NoForward("m", 4, "f")  # type: ignore[abstract]


@pytest.mark.integration
def test_the_real_default_encoder_keeps_the_base_promises(sentences: list[str], tmp_path: Path) -> None:
    enc = load_encoder(Settings(cache_dir=str(tmp_path)))
    assert isinstance(enc, BaseEncoder) and (enc.query_prompt, enc.passage_prompt) == E5_PROMPTS
    batch = enc.encode_documents(sentences, batch_size=3)
    assert batch.shape == (len(sentences), 384) and batch.dtype == np.float32
    assert np.allclose(np.linalg.norm(batch, axis=1), 1.0, atol=1e-5)
    alone = np.stack([enc.encode_documents([s])[0] for s in sentences])
    assert np.abs(alone - batch).max() < 1e-5  # a vector depends on its text only
    q = enc.encode_queries(sentences[:3])
    assert ((q * batch[:3]).sum(axis=1) < 0.99).all()  # the two prompts really differ
    assert np.array_equal(enc.encode_queries([" " + sentences[0] + "\n"])[0], q[0])
    enc.passage_prompt = (
        ""  # "query: " written into the text gives the query's vector: the prompt is a prefix
    )
    assert np.abs(enc.encode_documents(["query: " + s for s in sentences[:3]]) - q).max() < 1e-5
