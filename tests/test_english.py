"""English and mixed questions read into the reports' Chinese (qa.text.english), on real report text:
the domain phrases and CC-CEDICT mapping real report wording, plans, years, numbers and units, the
dictionary table stored with the index, and English questions answered (or refused) end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from helpers import R2024, BuiltIndex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa.index.builder import update_index
from qa.index.store import IndexStore
from qa.search.abstain import rule_refusal
from qa.search.answer import owner_places, question_form
from qa.search.features import Candidate
from qa.search.retriever import Retriever
from qa.search.understand import extract_years, understand
from qa.text.english import (
    TABLE_FILE,
    EnglishReader,
    dictionary_table_for,
    read_domain_phrases,
    read_english,
)
from qa.text.lexicon import genre_lexicon
from qa.text.normalize import normalize_for_matching

REPO = Path(__file__).resolve().parent.parent
NATIONAL_1955 = REPO / "corpora" / "national" / "national-1955-government-work-report.txt"
CJK = re.compile("[\u4e00-\u9fff]")


@pytest.fixture(scope="module")
def report_text(documents_dir: Path) -> str:
    """The 2024 Zhengzhou report and the 1955 State Council report, as the table's corpus."""
    return (documents_dir / R2024).read_text(encoding="utf-8") + "\n" + NATIONAL_1955.read_text("utf-8")


@pytest.fixture(scope="module")
def reader(report_text: str) -> EnglishReader:
    """A reader with a CC-CEDICT table made from two real reports (as `qa index` makes it)."""
    table = json.loads(dictionary_table_for(report_text.split("\n"), genre_lexicon()))
    return EnglishReader(table=table)


def read(reader: EnglishReader, question: str) -> Any:
    lexicon = genre_lexicon().for_corpus(["郑州市"]).with_english(reader)
    return read_english(normalize_for_matching(question), lexicon)


def searched(reading: Any) -> list[str]:
    return [t for c in reading.concepts for t in c.searched]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("question", "term"),
    [
        ("2024年 new urban jobs target?", "新增城镇就业"),  # the 2024 report's word order
        ("How much did value added of industry above designated size grow?", "规模以上工业增加值"),
        ("What was the per capita disposable income of residents?", "居民人均可支配收入"),
        ("How many passengers did the airport handle?", "旅客"),
        ("What was the total retail sales of consumer goods?", "社会消费品零售总额"),
        ("How much capital construction investment was planned?", "基本建设投资"),
    ],
)
def test_domain_phrases_map_to_the_reports_wording(
    reader: EnglishReader, report_text: str, question: str, term: str
) -> None:
    """The Chinese searched for an English phrase is the wording the reports themselves use."""
    got = searched(read(reader, question))
    assert term in got, got
    assert term in normalize_for_matching(report_text)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("question", "term"),
    [
        ("Which hospital was built?", "医院"),  # CC-CEDICT: 医院 /hospital/
        ("What did the government say about tourists?", "游客"),
        ("What about the cotton harvest?", "棉花"),
        ("How many buses did Zhengzhou add?", "汽车"),  # buses -> buse -> bus, not an unknown word
        ("How many houses were built?", "房屋"),  # houses -> house (not hous)
    ],
)
def test_dictionary_words_map_to_headwords_the_corpus_uses(
    reader: EnglishReader, report_text: str, question: str, term: str
) -> None:
    got = searched(read(reader, question))
    assert term in got, got
    assert term in normalize_for_matching(report_text)


@pytest.mark.unit
def test_dictionary_keeps_only_the_corpus_words_and_place_names(reader: EnglishReader) -> None:
    # 武汉 is not in these two reports, but it is a place: "Wuhan" must read as another city
    assert "武汉" in read(reader, "What was Wuhan's GDP growth rate in 2023?").text
    # "Tesla" is in CC-CEDICT (特斯拉) but not in the reports: searched as typed, and the note says so
    tesla = read(reader, "How many Tesla cars were made in 2023?")
    assert "特斯拉" not in tesla.text and "tesla" in tesla.unknown
    assert "tesla" in tesla.note()
    # a general word's Chinese is one the corpus uses, not the first CC-CEDICT happens to list
    assert all(t in reader.vocabulary or reader.in_corpus(t) for t in searched(read(reader, "How big?")))


@pytest.mark.unit
@pytest.mark.parametrize(
    ("question", "names", "years"),
    [
        ("Which platforms during the 14th Five-Year Plan?", "十四五", list(range(2021, 2026))),
        ("the fourteenth five-year plan period", "十四五", list(range(2021, 2026))),
        ("How much did the First Five-Year Plan invest?", "第一个五年计划", list(range(1953, 1958))),
        ("the 6th FYP", "第六个五年计划", list(range(1981, 1986))),
        ("grain output in 1957", None, [1957]),
        ("from 1993-1997", None, list(range(1993, 1998))),
    ],
)
def test_plans_and_years_reach_the_year_reader(
    reader: EnglishReader, question: str, names: str | None, years: list[int]
) -> None:
    reading = read(reader, question)
    if names:
        assert names in [t for c in reading.concepts for t in c.chinese]
    assert extract_years(reading.text) == years


@pytest.mark.unit
@pytest.mark.parametrize(
    ("question", "rendered"),
    [
        ("more than 10,000 people", "万人"),
        ("2.5 billion yuan", "25亿元"),
        ("45 million passengers", "4500万人次"),
        ("grew 7 per cent", "7%"),
        ("100 million yuan", "1亿元"),
        ("1.36 trillion yuan", "1.36万亿元"),
        ("44 billion US dollars", "440亿美元"),
    ],
)
def test_numbers_and_units(reader: EnglishReader, question: str, rendered: str) -> None:
    assert rendered in read(reader, question).text.replace(" ", "")


@pytest.mark.unit
@pytest.mark.parametrize(
    "question",
    [
        "2023年郑州GDP是多少？",
        "郑州5G基站建了多少座（2023年）？",
        "2020年郑州PM2.5浓度下降了多少？",
        "2024年计划",
    ],
)
def test_chinese_questions_are_left_to_the_chinese_reader(reader: EnglishReader, question: str) -> None:
    """Latin words the Chinese side already reads (gdp, 5g, pm2.5) do not make a question English."""
    reading = read(reader, question)
    assert reading.text == normalize_for_matching(question)
    assert not reading.english and reading.note() == ""


@pytest.mark.unit
def test_english_intent_reaches_routing(documents_dir: Path) -> None:
    """Plans and outcomes asked in English route like their Chinese counterparts; the note shows the Chinese."""
    from qa.ingest.catalog import load_catalog

    catalog = list(load_catalog(documents_dir).values())
    lexicon = genre_lexicon().for_corpus([i.place for i in catalog], [i.title for i in catalog])
    target, _ = understand("What GDP growth target did Zhengzhou set for 2024?", catalog, lexicon=lexicon)
    assert target.intent == "target" and target.years == [2024] and target.docs[0] == R2024
    result, _ = understand("How many elderly care beds were added in 2023?", catalog, lexicon=lexicon)
    assert result.intent == "result" and result.docs[0] == R2024  # the 2024 report looks back on 2023
    planned, _ = understand("How many beds were to be added in 2023?", catalog, lexicon=lexicon)
    assert planned.intent == "target"
    assert any(n.startswith("按中文检索：") and "生产总值" in n for n in target.notes), target.notes
    assert "生产总值" in target.terms


@pytest.mark.unit
@pytest.mark.parametrize(
    ("question", "previous", "expected"),
    [
        ("What about 2024?", "What was Zhengzhou's GDP in 2023?", "What was Zhengzhou's GDP in 2024?"),
        ("and in 2020?", "How many passengers did the airport handle in 2019?", "…handle in 2020?"),
        ("那2024年呢？", "What was Zhengzhou's GDP in 2023?", "What was Zhengzhou's GDP in 2024?"),
        ("what about jobs?", "What was Zhengzhou's GDP in 2023?", "jobs in 2023?"),
        ("那2024年呢？", "2023年郑州GDP是多少？", "2024年郑州GDP是多少？"),  # Chinese as before
    ],
)
def test_english_follow_ups(question: str, previous: str, expected: str) -> None:
    from qa.search.understand import resolve_followup

    got = resolve_followup(question, [previous])
    assert got is not None
    assert got.endswith(expected.lstrip("…")) if expected.startswith("…") else got == expected


@pytest.mark.unit
def test_domain_file_errors_say_what_to_fix(tmp_path: Path) -> None:
    bad = tmp_path / "domain.tsv"
    bad.write_text("GDP 地区生产总值\n", encoding="utf-8")
    from qa.errors import QAError

    with pytest.raises(QAError, match=r"line 1: expected 'English phrase<TAB>"):
        read_domain_phrases(bad)
    # the shipped file parses, and every phrase maps to Chinese
    phrases = read_domain_phrases().phrases
    assert len(phrases) > 700 and all(any(CJK.search(t) or "%" in t for t in ts) for ts in phrases.values())


# ---- with the session index -------------------------------------------------------------------


@pytest.fixture(scope="module")
def retriever(built_index: BuiltIndex) -> Retriever:
    return Retriever.open(built_index.index, built_index.settings, documents_dir=built_index.documents)


@pytest.mark.integration
def test_the_table_is_stored_with_the_index_with_its_licence(built_index: BuiltIndex) -> None:
    store = IndexStore.open(built_index.index)
    assert TABLE_FILE in store.manifest.files and store.manifest.files[TABLE_FILE].get("sha256")
    table = json.loads((store.path / TABLE_FILE).read_text(encoding="utf-8"))
    assert "CC BY-SA 4.0" in table["license"] and "MDBG" in table["attribution"]
    assert "旅客" in table["exact"].get("traveler", [])  # CC-CEDICT: 旅客 /traveler; tourist/
    # restricted to the corpus: 特斯拉 (Tesla) is in CC-CEDICT but not in the reports
    assert not any("特斯拉" in heads for heads in table["exact"].values())


@pytest.mark.integration
def test_an_index_without_the_table_gets_one_without_re_embedding(
    private_index: BuiltIndex, real_encoder: Any
) -> None:
    """An index built before English reading (no table) gains it at the next `qa index`, vectors kept."""
    store = IndexStore.open(private_index.index)
    (store.path / TABLE_FILE).unlink()
    manifest = json.loads((store.path / "manifest.json").read_text(encoding="utf-8"))
    del manifest["files"][TABLE_FILE]
    (store.path / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    old = Retriever.open(private_index.index, private_index.settings, encoder=real_encoder)
    assert not old.corpus.lexicon.english.has_dictionary  # still reads English with the domain phrases
    assert old.understand("2024年 new urban jobs target?").terms[:3] == ["城镇", "新增", "就业"]
    report = update_index(
        private_index.documents, private_index.index, private_index.settings, encoder=real_encoder
    )
    assert report.written and report.passages_embedded == 0
    assert (IndexStore.open(private_index.index).path / TABLE_FILE).is_file()


@pytest.mark.integration
def test_english_question_answered_with_the_chinese_sentence_and_its_citation(retriever: Retriever) -> None:
    ans = retriever.ask("What was Zhengzhou's GDP in 2023?")
    assert not ans.abstained
    assert ans.hits[0].passage.doc == R2024
    assert "[1]" in ans.text and "亿元" in ans.text
    sentence = ans.text.split("[1]")[0]
    assert CJK.search(sentence) and sentence in ans.hits[0].passage.text  # verbatim, not a translation
    assert any(n.startswith("按中文检索：") and "生产总值" in n and "2023年" in n for n in ans.query.notes)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("question", "answer"),
    [("2024年 new urban jobs target?", "12.65万人"), ("郑州 2024 R&D intensity target?", "2.8%")],
)
def test_mixed_questions(retriever: Retriever, question: str, answer: str) -> None:
    ans = retriever.ask(question)
    assert not ans.abstained and ans.query.years == [2024]
    assert ans.hits[0].passage.doc == R2024
    assert answer in ans.text, ans.text


@pytest.mark.integration
def test_english_question_about_an_uncovered_year_is_refused(retriever: Retriever) -> None:
    ans = retriever.ask("What was Zhengzhou's GDP in 2010?")
    assert ans.abstained and ans.query.uncovered_years == [2010]
    assert "2010年" in ans.text and ans.hits  # the nearest passages are still shown
    assert any("资料未覆盖2010年" in n for n in ans.query.notes)


@pytest.mark.unit
@pytest.mark.parametrize(
    ("question", "unit"),
    [
        ("What was the average price of new homes per square metre in Zhengzhou in 2023?", "元"),
        ("What was Zhengzhou's GDP in 2015, in 100 million yuan?", "元"),
        ("What was the value of cross-border e-commerce trade in 2019, in US dollars?", "美元"),
        ("How many kilometres of metro were in operation in Zhengzhou by 2020?", "公里"),
        ("How many tonnes of grain did Zhengzhou harvest in 2019?", "吨"),
        ("How many square kilometres is the airport zone?", "平方公里"),
        # a price index or inflation asks a change, not an amount of money
        ("How did consumer prices in Zhengzhou change in 2023?", ""),
        ("Where did Zhengzhou want to cap consumer price inflation in 2020?", ""),
    ],
)
def test_the_unit_asked_for_is_read_in_english(question: str, unit: str) -> None:
    units = question_form(normalize_for_matching(question)).units
    assert (units[0] if units else "") == unit, units


@pytest.mark.integration
def test_english_question_for_an_amount_the_reports_do_not_give_is_refused(retriever: Retriever) -> None:
    # the 2024 report gives 2023's housing sales in square metres, not a price per square metre
    ans = retriever.ask("What was the average price of new homes per square metre in Zhengzhou in 2023?")
    assert ans.abstained and ans.text.startswith("资料中没有找到"), ans.text


@pytest.mark.integration
def test_english_question_about_another_city_is_refused(retriever: Retriever) -> None:
    ans = retriever.ask("What was Wuhan's GDP growth rate in 2023?")
    assert ans.abstained and "武汉" in ans.query.other_places


@pytest.mark.integration
def test_a_name_no_report_uses_is_refused(retriever: Retriever) -> None:
    # a capitalised name with no Chinese rendering in the reports is what the question is about
    ans = retriever.ask("How many Tesla cars were made in Zhengzhou in 2023?")
    assert ans.abstained and ans.text.startswith("资料中没有找到"), ans.text
    # names the reports use in Chinese, and lower-case words the dictionary lacks, are no reason to refuse
    for question in (
        "How many phones did Foxconn make in Zhengzhou?",
        "Which hospital did Zhengzhou build in ten days during the COVID-19 outbreak?",
    ):
        q = retriever.understand(question)
        top = retriever.search(question)[0]
        assert rule_refusal(q, Candidate(0, top.passage, features=dict(top.signals)), retriever.corpus) == ""


@pytest.mark.unit
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.sampled_from(
            [
                "the",
                "14th",
                "Five-Year",
                "plan",
                "1,000,000",
                "2.5",
                "billion",
                "yuan",
                "per",
                "cent",
                "%",
                "1993-1997",
                "from",
                "2016",
                "to",
                "2020",
                "郑州",
                "2023年",
                "GDP",
                "r&d",
                "5g",
                "people's",
                "-",
                "'",
                "x" * 40,
                "9" * 30,
                "first",
                "fyp",
                "in",
                "was",
                "to",
                "be",
                "new",
                "urban",
                "jobs",
            ]
        )
        | st.text(max_size=12),
        max_size=14,
    )
)
def test_reading_never_fails_and_keeps_chinese_questions(reader: EnglishReader, words: list[str]) -> None:
    question = normalize_for_matching(" ".join(words))
    reading = read(reader, question)
    assert isinstance(reading.text, str) and isinstance(reading.note(), str)
    if not re.search("[a-z]", question):
        assert reading.text == question


@pytest.mark.unit
def test_a_province_asked_about_in_national_reports_is_an_owner_place(reader: EnglishReader) -> None:
    # national reports speak of the nation: a province owning what is asked (上海1995年的…, Shanghai's …)
    # must be named by the sentence that answers (qa.search.answer.compose refuses otherwise)
    national = genre_lexicon().for_corpus(["全国"], ["1955年国务院政府工作报告"]).with_english(reader)

    def owners(question: str, lexicon: Any = national) -> list[str]:
        q = understand(question, [], lexicon=lexicon)[0]
        return owner_places(q, lexicon)

    assert national.national
    assert owners("上海1995年的国内生产总值是多少？") == ["上海"]
    assert owners("上海的钢产量是多少？") == ["上海"]
    assert owners("What was Shanghai's GDP in 1995?") == ["上海"]
    assert owners("What was the GDP of Shanghai in 1995?") == ["上海"]
    # a place inside a name, the nation, and a question without a place are left alone
    assert owners("太原热电站工程因为盲目采购材料积压了多少资金？") == []
    assert owners("北京各机关建筑因为搞“大屋顶”浪费了多少钱？") == []
    assert owners("What was China's grain output in 1957?") == []
    assert owners("1957年棉花产量是多少？") == []
    assert owners("上海的浦东新区是哪一年开发开放的？") == []  # no figure asked: 浦东 may answer alone
    # over a city's reports another city is already an "other place": no owner places there
    city = genre_lexicon().for_corpus(["郑州市"]).with_english(reader)
    assert owners("上海的钢产量是多少？", city) == []
