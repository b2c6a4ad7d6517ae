"""The answer line on real report text: which sentence answers, and the sentence for 'not found'."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.search.answer import abstain_text, answer_line, answer_sentences, asked_unit_pattern, best_sentence
from qa.search.understand import understand
from qa.text.lexicon import genre_lexicon
from qa.text.sentences import split_sentences
from qa.types import Hit, Passage, SourceSpan

pytestmark = pytest.mark.unit

DOCS = Path(__file__).resolve().parent.parent / "documents"
R2024 = (DOCS / "2024-zhengzhou-government-work-report.txt").read_text(encoding="utf-8").splitlines()
# the review paragraph with 2023's figures, and the paragraph with 2024's targets
REVIEW = next(line for line in R2024 if "总量超过1.36万亿元" in line)
TARGETS = next(line for line in R2024 if line.startswith("经济社会发展主要预期目标是"))
LEX = genre_lexicon().for_corpus(["郑州市"], ["2024年郑州市政府工作报告"])
IDF = {"生产总值": 3.0, "地区生产总值": 3.2, "增长": 0.4, "目标": 1.5, "研发": 2.5, "强度": 2.0}


def _passage(text: str, n: int = 0) -> Passage:
    return Passage(
        f"p{n}", "2024.txt", "2024年郑州市政府工作报告", 2024, ["一、"], text, text, SourceSpan(1, 1, 0, 1)
    )


def test_answer_sentences_use_the_one_splitter_and_leave_out_headings() -> None:
    text = "一、2023年工作回顾\n" + REVIEW
    got = answer_sentences(text)
    assert got[0].startswith("过去一年")
    assert all(s.strip() for s in got)
    assert "一、2023年工作回顾" not in got  # a short heading line answers nothing
    # the same splitter the chunker uses: every answer sentence is one of its sentences
    assert set(got) <= {s.strip() for s in split_sentences(text)}


def test_the_gdp_question_gets_the_sentence_with_the_figure() -> None:
    q, _ = understand("2023年郑州GDP是多少？", [], lexicon=LEX)
    sentence, score = best_sentence(q, LEX, IDF, REVIEW)
    assert "1.36万亿元" in sentence and score > 0.5


def test_a_target_question_gets_the_targets_sentence_with_its_citation() -> None:
    q, _ = understand("2024年郑州研发投入强度的目标是多少？", [], lexicon=LEX)
    hits = [Hit(_passage(TARGETS, 0), 1.0, 1), Hit(_passage(REVIEW, 1), 0.9, 2)]
    line = answer_line(q, hits, LEX, IDF)
    assert "2.8%" in line and line.endswith("[1]")
    assert hits[0].highlight and "2.8%" in hits[0].highlight
    assert hits[1].highlight and "2.67%" in hits[1].highlight  # each card marks its own best sentence


def test_unit_pattern_follows_the_question() -> None:
    unit = asked_unit_pattern("新增城镇就业多少万人")
    assert unit is not None and unit.search("城镇新增就业12.1万人") and not unit.search("增长7.4%")
    pct = asked_unit_pattern("研发投入占比是多少")
    assert pct is not None and pct.search("达到2.67%")
    assert asked_unit_pattern("十四五规划的主要任务") is None


def test_abstention_sentence_names_what_was_asked() -> None:
    q, _ = understand("2010年郑州GDP是多少？", [], lexicon=LEX)
    q.uncovered_years = [2010]
    assert "2010年" in abstain_text(q)
    q2, _ = understand("郑州的航天发射场在哪里？", [], lexicon=LEX)
    assert "郑州的航天发射场在哪里" in abstain_text(q2)
