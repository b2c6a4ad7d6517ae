"""Fuzzing: hypothesis on the cleaner (offset map), the chunker and the question parser, and schemathesis
against the HTTP API's own OpenAPI spec (no 500s, whatever the generated request)."""

from __future__ import annotations

import contextlib
import re
import string
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import BuiltIndex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

from qa.errors import QAError
from qa.ingest.chunking import ChunkerSettings, chunk_text
from qa.ingest.clean import clean_text
from qa.ingest.structure import find_sections
from qa.search.understand import clean_question, extract_years, resolve_followup, understand
from qa.text.sentences import split_sentences

DOCS = Path(__file__).resolve().parent.parent / "documents"
REPORT_LINES = [
    ln for p in sorted(DOCS.glob("*.txt")) for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()
][::7]

# text that looks like the corpus: real report lines, cut anywhere, mixed with the noise the cleaner handles
NOISE = [
    "\n",
    "\n\n",
    " ",
    "\u3000",
    "\ufffd",
    "\x00",
    "\x0c",
    "\u200b",
    "\ufeff",
    "\ue000",
    "－ 12 －",
    "第 3 页",
    "www.example.cn",
    "（一）",
    "一、",
    "第二章",
    "【关键词】",
    "专栏1",
    "## ",
    "１２３４",
    "％",
    ",",
    ":",
    "。",
    "”",
    "\r\n",
    "\t",
    "\ud7ff",
    "𠀀",
    "😀",
]
piece = st.one_of(
    st.sampled_from(REPORT_LINES).flatmap(
        lambda ln: st.tuples(st.integers(0, len(ln)), st.integers(0, len(ln))).map(
            lambda ab: ln[min(ab) : max(ab)]
        )
    ),
    st.sampled_from(NOISE),
    st.text(max_size=12),
)
corpus_like = st.lists(piece, max_size=40).map("".join)
any_text = st.one_of(corpus_like, st.text(max_size=300))

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---- cleaner ---------------------------------------------------------------------------------------


@pytest.mark.unit
@FUZZ
@given(any_text)
def test_clean_text_offsets_stay_consistent(text: str) -> None:
    """len(offsets) == len(clean)+1, offsets rise, stay inside the original, and map characters back."""
    c = clean_text(text)
    offs = [int(x) for x in c.offsets]
    assert len(offs) == len(c.text) + 1
    assert all(a <= b for a, b in zip(offs[:-1], offs[1:], strict=True)), "offsets are monotonic"
    assert all(0 <= o <= len(text) for o in offs)
    if c.text:
        assert offs[-1] <= len(text)
        a, b = c.span_of(0, len(c.text))
        assert 0 <= a <= b <= len(text)
    for i, ch in enumerate(c.text):
        if ch.isalnum() and not ch.isascii():
            # a CJK or other letter of the clean text is the same letter in the original (or its fold)
            o = text[offs[i]]
            assert o == ch or o.lower() == ch.lower() or _folds(o, ch), (i, ch, o)


def _folds(original: str, clean: str) -> bool:
    import unicodedata

    return (
        unicodedata.normalize("NFKC", original) == clean
        or original in "，。：；？！（）"
        or clean in "，：；？！（）"
    )


@pytest.mark.unit
@FUZZ
@given(any_text)
def test_clean_text_is_idempotent_enough(text: str) -> None:
    """Cleaning clean text never raises and never invents control or replacement characters."""
    once = clean_text(text).text
    twice = clean_text(once).text
    bad = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffd]")
    assert not bad.search(once) and not bad.search(twice)


# ---- chunker ---------------------------------------------------------------------------------------


@pytest.mark.unit
@FUZZ
@given(corpus_like, st.integers(20, 400), st.integers(0, 2), st.integers(0, 60))
def test_chunker_never_raises_and_spans_fit(text: str, max_chars: int, overlap: int, min_chars: int) -> None:
    clean = clean_text(text).text
    s = ChunkerSettings(max_chars=max_chars, overlap_sentences=overlap, min_chars=min(min_chars, max_chars))
    chunks = chunk_text(clean, find_sections(clean), s)
    for ch in chunks:
        assert 0 <= ch.start <= ch.end <= len(clean)
        assert ch.text.strip()
        assert ch.text in clean
    assert "".join(split_sentences(clean)) == clean


# ---- question parser --------------------------------------------------------------------------------

questions = st.one_of(
    st.text(max_size=600),
    corpus_like,
    st.lists(
        st.sampled_from(["2023年", "那", "呢？", "十四五", "二〇二四年", "GDP", "？", "2021-2025年", "吗"])
    ).map("".join),
)


@pytest.mark.unit
@FUZZ
@given(questions, st.lists(questions, max_size=3), st.integers(1, 600))
def test_question_parser_only_raises_qaerror(question: str, history: list[str], max_chars: int) -> None:
    try:
        text, notes = clean_question(question, max_chars)
    except QAError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert text and len(text) <= max_chars and text == text.strip()
    text.encode("utf-8")
    try:
        query, routes = understand(question, [], history, None, max_chars)
    except QAError:
        return
    assert all(1949 <= y <= 2100 for y in query.years)
    assert extract_years(query.normalized) == query.years
    resolve_followup(text, history)


@pytest.mark.unit
@FUZZ
@given(
    st.one_of(st.none(), st.integers(), st.floats(), st.binary(max_size=20), st.lists(st.text(max_size=3)))
)
def test_non_text_questions_are_a_qaerror(value: Any) -> None:
    with pytest.raises(QAError):
        clean_question(value, 500)


@pytest.mark.unit
@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(["doc", "docs", "year", "years", "other"]),
        st.one_of(
            st.text(max_size=20),
            st.integers(),
            st.lists(
                st.one_of(st.text(alphabet=string.digits, max_size=6), st.integers(-5, 3000), st.none())
            ),
        ),
        max_size=3,
    )
)
def test_filters_only_raise_qaerror(filters: dict[str, Any]) -> None:
    try:
        understand("2023年郑州GDP是多少？", [], (), filters)
    except QAError as exc:
        assert str(exc)


# ---- schemathesis against the API ------------------------------------------------------------------


@pytest.fixture(scope="module")
def api_app(
    built_index: BuiltIndex, real_encoder: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """The real API over a private copy of the session index (uploads land in that copy)."""
    from qa.search.retriever import Retriever
    from qa.serve.api import create_api

    copy = built_index.copy(tmp_path_factory.mktemp("fuzz-api"))
    # schemathesis calls the app as host 'testserver'; questions are not rate-limited here
    settings = copy.settings.with_(max_upload_mb=1, allowed_hosts="testserver", rate_limit_per_minute=0)
    r = Retriever.open(copy.index, settings, documents_dir=copy.documents, encoder=real_encoder)
    yield create_api(lambda: r, settings)


@pytest.mark.integration
def test_schemathesis_finds_no_server_errors(api_app: Any) -> None:
    """Requests generated from /openapi.json (valid and invalid bodies) never get a 500."""
    import schemathesis
    from schemathesis import GenerationMode

    schema = schemathesis.openapi.from_asgi("/openapi.json", api_app)
    seen: dict[str, int] = {}
    failures: list[str] = []

    def fuzz(op: Any, mode: Any) -> None:
        examples = 12 if op.path == "/api/documents" and op.method.upper() == "POST" else 30

        @settings(
            max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        @given(case=op.as_strategy(generation_mode=mode))
        def run(case: Any) -> None:
            response = case.call()
            key = f"{mode.value} {op.method.upper()} {op.path} {response.status_code}"
            seen[key] = seen.get(key, 0) + 1
            if response.status_code >= 500:
                failures.append(f"{key}: {case.body!r:.200} -> {response.text[:300]}")
            elif response.status_code >= 400:
                body = response.json()
                assert isinstance(body.get("error"), str) and body["error"], body

        # an operation without parameters has no invalid form (GET /health)
        with contextlib.suppress(Unsatisfiable):
            run()

    for result in schema.get_all_operations():
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(result.ok(), mode)
    print("\nschemathesis statuses:", dict(sorted(seen.items())))
    assert not failures, failures
    assert any(k.startswith("positive POST /api/ask 200") for k in seen), seen
    assert any(k.startswith("negative POST /api/ask 4") for k in seen), seen
