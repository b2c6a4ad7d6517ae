"""The retriever on the real index: year routing, traditional characters, abstention, filters, cited answers,
reranking, follow-ups and concurrent readers during an update."""

from __future__ import annotations

import re
import threading
import time
from typing import Any

import pytest
from helpers import R2024, BuiltIndex, new_marker, real_excerpt

from qa.errors import QAError
from qa.search.retriever import Retriever
from qa.types import Answer

pytestmark = pytest.mark.integration

R2020 = "2020-zhengzhou-government-work-report.txt"
R2021 = "2021-zhengzhou-government-work-report.txt"
PLAN = "2021-zhengzhou-14th-five-year-plan-outline.txt"


@pytest.fixture(scope="module")
def retriever(built_index: BuiltIndex) -> Retriever:
    """A retriever over the session index."""
    return Retriever.open(built_index.index, built_index.settings, documents_dir=built_index.documents)


def check_well_formed(ans: Answer) -> None:
    """[n] markers point at real hits, ranks run 1..k, highlights are verbatim sentences of their passage."""
    assert ans.hits, ans.question
    assert [h.rank for h in ans.hits] == list(range(1, len(ans.hits) + 1))
    assert all(ans.hits[i].score >= ans.hits[i + 1].score for i in range(len(ans.hits) - 1))
    for n in re.findall(r"\[(\d+)\]", ans.text):
        assert 1 <= int(n) <= len(ans.hits), ans.text
    if not ans.abstained:
        assert re.search(r"\[\d+\]", ans.text), ans.text
        # the answer line is made of sentences taken verbatim from the cited passages
        for sentence, n in re.findall(r"(.+?)\[(\d+)\]", ans.text):
            assert sentence in ans.hits[int(n) - 1].passage.text
    for h in ans.hits:
        if h.highlight is not None:
            assert h.highlight in h.passage.text


# ---- year routing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "doc"),
    [
        # the same indicator for two different years: each comes from the report that looks back on it
        ("2020年郑州市地区生产总值是多少？", R2021),
        ("2023年郑州市地区生产总值是多少？", R2024),
        # the same target for two different years: each comes from the report that plans for it
        ("2020年地区生产总值的预期增长目标是多少？", R2020),
        ("2024年地区生产总值的预期增长目标是多少？", R2024),
    ],
)
def test_year_routing_picks_the_right_report(retriever: Retriever, question: str, doc: str) -> None:
    ans = retriever.ask(question)
    check_well_formed(ans)
    assert ans.hits[0].passage.doc == doc, [h.passage.doc for h in ans.hits]
    assert not ans.abstained
    assert any(n.startswith("按20") and "检索：" in n for n in ans.query.notes)


def test_year_routing_content(retriever: Retriever) -> None:
    a2023 = retriever.ask("2023年郑州市地区生产总值是多少？")
    assert "1.36万亿元" in a2023.hits[0].passage.text and "1.36万亿元" in a2023.text
    assert "按2023年检索：2024年郑州市政府工作报告" in " ".join(a2023.query.notes)
    a2020 = retriever.ask("2020年郑州市地区生产总值是多少？")
    assert any("12003亿元" in h.passage.text for h in a2020.hits[:3])


def test_traditional_question_finds_the_same_passage(retriever: Retriever) -> None:
    simplified = retriever.search("郑州市2023年地区生产总值是多少？", k=5)
    traditional = retriever.search("鄭州市2023年地區生產總值是多少？", k=5)
    assert traditional[0].passage.id == simplified[0].passage.id
    assert traditional[0].passage.doc == R2024
    assert {h.passage.id for h in traditional[:3]} == {h.passage.id for h in simplified[:3]}


def test_headline_question_is_answered(retriever: Retriever) -> None:
    ans = retriever.ask("2023年郑州GDP是多少？")
    assert ans.hits[0].passage.doc == R2024
    assert not ans.abstained, ans.text


# ---- abstention ------------------------------------------------------------------------------------


def test_abstains_on_an_uncovered_year_but_shows_the_nearest(retriever: Retriever) -> None:
    ans = retriever.ask("2010年郑州市地区生产总值是多少？")
    assert ans.abstained
    assert ans.text.startswith("资料中没有找到2010年")
    assert ans.query.uncovered_years == [2010]
    assert "资料未覆盖2010年" in ans.query.notes
    assert len(ans.hits) == 5  # the nearest passages, for the reader to judge
    check_well_formed(ans)


@pytest.mark.parametrize(
    "question",
    [
        "广州地铁有几条线路？",
        "乌鲁木齐市的冰雪旅游节办了几届？",
    ],
)
def test_abstains_on_another_city(retriever: Retriever, question: str) -> None:
    ans = retriever.ask(question)
    assert ans.abstained and ans.text.startswith("资料中没有找到"), ans.text
    assert ans.hits


# ---- filters ---------------------------------------------------------------------------------------


def test_doc_filter_restricts_hits(retriever: Retriever) -> None:
    hits = retriever.search("地区生产总值", k=8, filters={"doc": [R2020]})
    assert hits and {h.passage.doc for h in hits} == {R2020}
    hits = retriever.search("地区生产总值增长", k=10, filters={"doc": [R2020, R2024]})
    assert {h.passage.doc for h in hits} <= {R2020, R2024}


def test_year_filter_restricts_hits(retriever: Retriever) -> None:
    ans = retriever.ask("地区生产总值", k=10, filters={"year": [2019]})
    # documents that look back on, plan for or were delivered in 2019: the 2020 and 2021 reports, the plan
    assert {h.passage.doc for h in ans.hits} <= {R2020, R2021, PLAN}
    assert "限定年份：2019年" in ans.query.notes


def test_bad_filters_and_questions_are_refused(retriever: Retriever) -> None:
    with pytest.raises(QAError, match="没有这个文件"):
        retriever.search("地区生产总值", filters={"doc": ["2099-nowhere.txt"]})
    with pytest.raises(QAError, match="请输入问题"):
        retriever.ask("   ")
    with pytest.raises(QAError):
        retriever.search("地区生产总值", k=0)
    ans = retriever.ask("？？？！！")
    assert ans.abstained and not ans.hits


# ---- answers, follow-ups, reranking ----------------------------------------------------------------

QUESTIONS = [
    "2023年郑州市地区生产总值是多少？",
    "2024年的主要预期目标是什么？",
    "十四五期间郑州要建成哪些国家级平台？",
    "郑州航空港区建设取得了哪些进展？",
    "黄河流域生态保护和高质量发展有哪些举措？",
    "2020年郑州市地区生产总值是多少？",
]


@pytest.mark.parametrize("question", QUESTIONS)
def test_answers_cite_their_hits(retriever: Retriever, question: str) -> None:
    ans = retriever.ask(question, k=5)
    check_well_formed(ans)
    assert len(ans.hits) == 5
    for h in ans.hits:
        assert h.passage.citation() and h.passage.span.start_line <= h.passage.span.end_line
    assert ans.timings["total"] > 0


def test_followup_in_ask(retriever: Retriever) -> None:
    ans = retriever.ask("那2024年呢？", history=["2023年郑州市地区生产总值是多少？"])
    assert ans.query.text == "2024年郑州市地区生产总值是多少？"
    assert "追问理解为：2024年郑州市地区生产总值是多少？" in ans.query.notes
    assert ans.hits[0].passage.doc == R2024
    check_well_formed(ans)


def test_reranker_changes_the_order(retriever: Retriever) -> None:
    changed = []
    for q in QUESTIONS:
        ranked = [h.passage.id for h in retriever.search(q, k=5)]
        first_stage = [h.passage.id for h in retriever.search(q, k=5, rerank=False)]
        if ranked != first_stage:
            changed.append(q)
    print(f"\nreranker changed the top 5 on {len(changed)}/{len(QUESTIONS)} questions")
    assert changed


def test_documents_and_context(retriever: Retriever) -> None:
    docs = {d.info.file: d.passages for d in retriever.documents()}
    assert set(docs) == {R2020, R2021, PLAN, R2024, "2023-zhengzhou-government-work-report-keywords.txt"}
    assert all(n > 0 for n in docs.values())
    hit = retriever.search("2023年郑州市地区生产总值是多少？", k=1)[0]
    ctx = retriever.context(hit.passage.id, radius_lines=2)
    assert ctx.doc == R2024 and ctx.start_line <= hit.passage.span.start_line <= ctx.end_line
    assert (hit.highlight or hit.passage.text[:10])[:10] in ctx.text.replace("\n", "")
    with pytest.raises(QAError):
        retriever.context("no-such-passage")


def test_every_answer_reports_its_stage_timings(retriever: Retriever) -> None:
    # The eval report's and the benchmark's per-stage latency tables are built from these; speed itself is
    # measured by the benchmark, not asserted here.
    stages = ("understand", "embed", "dense", "lexical", "fusion", "rerank", "answer")
    for q in QUESTIONS:
        t = retriever.ask(q).timings
        assert set(stages) | {"total"} <= set(t), (q, sorted(t))
        assert all(t[s] >= 0.0 for s in stages), (q, t)
        assert sum(t[s] for s in stages) <= t["total"], (q, t)  # the stages run one after another


# ---- concurrency -----------------------------------------------------------------------------------


def test_concurrent_readers_during_an_update(private_index: BuiltIndex, real_encoder: Any) -> None:
    r = Retriever.open(
        private_index.index,
        private_index.settings,
        documents_dir=private_index.documents,
        encoder=real_encoder,
    )
    errors: list[BaseException] = []
    answers: list[Answer] = []
    lock = threading.Lock()
    start = threading.Barrier(9)

    def reader(i: int) -> None:
        try:
            start.wait()
            for j in range(3):
                ans = r.ask(QUESTIONS[(i + j) % len(QUESTIONS)], k=5)
                with lock:
                    answers.append(ans)
        except BaseException as exc:  # noqa: BLE001 - any failure in a thread fails the test
            with lock:
                errors.append(exc)

    name = "2099-concurrent-excerpt.txt"
    reports = []

    def writer() -> None:
        try:
            start.wait()
            (private_index.documents / name).write_text(real_excerpt(new_marker()), encoding="utf-8")
            reports.append(r.update())
        except BaseException as exc:  # noqa: BLE001
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
    threads.append(threading.Thread(target=writer))
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    print(f"\n8 readers x 3 questions + 1 update: {time.perf_counter() - t0:.1f} s")
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    assert len(answers) == 24
    for ans in answers:
        check_well_formed(ans)
    assert reports and reports[0].added == [name]
    assert name in {d.info.file for d in r.documents()}
    check_well_formed(r.ask(QUESTIONS[0]))
