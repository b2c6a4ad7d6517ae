"""The lexicon: genre data from files, a corpus's additions, and places read from the documents' metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.errors import QAError
from qa.ingest.catalog import load_catalog
from qa.text.lexicon import Lexicon, corpus_lexicon_data, genre_lexicon, read_lexicon_file, strip_place_suffix

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parent.parent


def zhengzhou() -> Lexicon:
    infos = load_catalog(REPO / "documents").values()
    extra = corpus_lexicon_data(REPO / "documents")
    return genre_lexicon().extended(extra).for_corpus([i.place for i in infos], [i.title for i in infos])


def test_genre_lexicon_comes_from_the_data_files() -> None:
    lex = genre_lexicon()
    assert lex.alternatives("gdp") == ("gdp", "生产总值", "地区生产总值")
    assert "十四五" in lex.designators and "郑州" not in lex.designators
    assert "洛阳" in lex.provinces["河南"] and "郑州" in lex.chinese_places
    assert "美国" in lex.foreign
    # nothing in the shipped data says which place a corpus is about
    assert not lex.home and not lex.national


def test_zhengzhou_corpus_is_about_zhengzhou_from_its_titles() -> None:
    lex = zhengzhou()
    assert {"郑州", "河南"} <= lex.home
    assert {"郑州", "郑州市"} <= lex.designators  # they name the document, not what is asked
    assert lex.other_places("北京2023年gdp是多少?") == ["北京"]
    assert lex.other_places("洛阳的地铁修了多少公里") == ["洛阳"]
    assert lex.other_places("郑州和北京比较") == []  # a question about the home city is in scope
    # the corpus file adds the corpus's own other names for itself
    assert lex.other_places("航空港区的建设") == []
    assert lex.alternatives("zhengzhou") == ("zhengzhou", "郑州")


def test_another_citys_corpus_treats_zhengzhou_as_another_place() -> None:
    lex = genre_lexicon().for_corpus(["洛阳市"], ["2024年洛阳市政府工作报告"])
    assert "洛阳" in lex.home and "河南" in lex.home
    assert lex.other_places("郑州2023年gdp是多少") == ["郑州"]
    assert lex.other_places("洛阳2023年gdp是多少") == []


def test_a_national_corpus_covers_every_province_but_not_other_countries() -> None:
    lex = genre_lexicon().for_corpus([None], ["1958年国务院政府工作报告"])
    assert lex.national
    assert lex.other_places("1957年河北的粮食产量") == []
    assert lex.other_places("美国的钢产量是多少") == ["美国"]
    assert lex.other_places("我国和美国的钢产量") == []


def test_place_suffixes() -> None:
    assert strip_place_suffix("郑州市") == "郑州"
    assert strip_place_suffix("河南省") == "河南"
    assert strip_place_suffix("广西壮族自治区") == "广西"
    assert strip_place_suffix("全国") == "全国"


def test_a_corpus_file_extends_and_a_bad_one_is_one_sentence(tmp_path: Path) -> None:
    (tmp_path / "lexicon.toml").write_text(
        '[synonyms]\n"高铁" = ["城际铁路"]\n[designators]\nwords = ["洛阳"]\n', encoding="utf-8"
    )
    lex = genre_lexicon().extended(corpus_lexicon_data(tmp_path))
    assert lex.alternatives("高铁") == ("高铁", "高速铁路", "高铁", "城际铁路")
    assert "洛阳" in lex.designators
    assert corpus_lexicon_data(tmp_path / "nowhere") == {}
    (tmp_path / "lexicon.toml").write_text("[synonyms\n", encoding="utf-8")
    with pytest.raises(QAError, match="not valid TOML") as exc:
        read_lexicon_file(tmp_path / "lexicon.toml")
    assert "\n" not in str(exc.value)
    (tmp_path / "lexicon.toml").write_text('[synonym]\n"a" = ["b"]\n', encoding="utf-8")
    with pytest.raises(QAError, match="unknown table"):
        read_lexicon_file(tmp_path / "lexicon.toml")
    (tmp_path / "lexicon.toml").write_text('[synonyms]\n"a" = 3\n', encoding="utf-8")
    with pytest.raises(QAError, match="list of non-empty strings"):
        read_lexicon_file(tmp_path / "lexicon.toml")


def test_term_weights_fall_back_to_the_report_wording() -> None:
    lex = genre_lexicon()
    idf = {"生产总值": 3.0, "地区生产总值": 4.0, "增长": 0.5}
    assert lex.term_weight("增长", idf) == 0.5
    assert lex.term_weight("gdp", idf) == 4.0  # colloquial, absent from the corpus: its report wording's
    assert lex.term_weight("从未出现", idf) == 1.0
    assert lex.term_present("gdp", "地区生产总值增长7.4%")
    # the report wording as the lexical index tokenises it (jieba search mode), each token once
    assert lex.expand_terms(["gdp"]) == ["生产", "总值", "生产总值", "地区"]


def test_years_in_chinese_numerals_read_as_digits() -> None:
    from qa.text.periods import arabic_years

    assert arabic_years("一九五七年粮食产量") == "1957年粮食产量"
    assert arabic_years("二〇三五年远景目标") == "2035年远景目标"
    assert arabic_years("一九五七") == "一九五七"  # not followed by 年: left alone
    assert arabic_years("三千七百亿斤") == "三千七百亿斤"
