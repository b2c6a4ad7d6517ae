"""Heading structure on the real files: known heading paths, sections cover the text."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.ingest.clean import clean_text
from qa.ingest.loaders import load_file
from qa.ingest.structure import find_sections, heading_rank, heading_text

pytestmark = pytest.mark.unit

DOCS = Path(__file__).resolve().parent.parent / "documents"


def paths_of(name: str) -> list[list[str]]:
    """Section paths of a report, in order."""
    clean = clean_text(load_file(DOCS / name).text).text
    return [s.path for s in find_sections(clean)]


def test_five_year_plan_nests_pian_zhang_jie() -> None:
    paths = paths_of("2021-zhengzhou-14th-five-year-plan-outline.txt")
    assert [
        "第三篇 畅通内外循环、打造内陆高水平开放新高地",
        "第九章 建设高水平开放平台",
        "第一节 打造郑州航空港区全省链接双循环的先导平台",
    ] in paths
    assert ["第一篇 两大战略引领、开启国家中心城市现代化新征程", "第一章 站在高质量发展新起点"] in paths
    # a 节 of the next 章 does not stay under the previous 章
    nine = [p for p in paths if len(p) >= 2 and p[1].startswith("第十章")]
    assert nine and all(p[0].startswith("第三篇") for p in nine)


def test_five_year_plan_boxes_nest_their_numbered_items() -> None:
    paths = paths_of("2021-zhengzhou-14th-five-year-plan-outline.txt")
    box = [p for p in paths if any(h.startswith("专栏5") for h in p)]
    assert any(p[-1] == "1.航空枢纽建设" for p in box)
    assert all(p[:3][-1] == "第一节 加快建设国际交通枢纽门户" for p in box)


def test_work_report_run_in_heading_is_cut_at_first_full_stop() -> None:
    paths = paths_of("2024-zhengzhou-government-work-report.txt")
    assert ["三、2024年重点工作安排", "（一）突出创新核心地位，扎实推进创新高地建设"] in paths
    assert ["一、2023年工作回顾", "（七）坚持惠民利民，民生福祉持续增进"] in paths


def test_heading_rejoined_across_lines() -> None:
    paths = paths_of("2020-zhengzhou-government-work-report.txt")
    assert ["三、2020年重点工作", "（一）统筹推进疫情防控与经济平稳健康发展"] in paths
    assert ["二、2020年政府工作总体要求和主要预期目标"] in paths


def test_bracket_keyword_heads_and_title_lines() -> None:
    paths = paths_of("2023-zhengzhou-government-work-report-keywords.txt")
    assert ["关键词【科技创新】", "【郑州实践】", "持续推进创新驱动发展"] in paths
    assert ["关键词【开放合作】", "【郑州实践】", "持续深化改革扩大开放"] in paths
    # after the byline "郑报全媒体记者 王红" a second article starts at the top level
    assert ["打造现代化国际化世界级航空大都市"] in paths


def test_space_separated_heading_in_2021_report() -> None:
    paths = paths_of("2021-zhengzhou-government-work-report.txt")
    assert ["（四）改革开放纵深推进，动力活力不断释放"] in paths
    assert ["三、2021年重点工作", "（二）推动产业转型升级，着力构建现代产业体系"] in paths


@pytest.mark.parametrize("name", sorted(p.name for p in DOCS.glob("*.txt")))
def test_sections_cover_clean_text_contiguously(name: str) -> None:
    clean = clean_text(load_file(DOCS / name).text).text
    sections = find_sections(clean)
    assert sections[0].start == 0 and sections[-1].end == len(clean)
    for a, b in zip(sections, sections[1:], strict=False):
        assert a.end == b.start and a.start < a.end


def test_heading_rank_and_text() -> None:
    assert heading_rank("第一篇 两大战略引领") == 0
    assert heading_rank("第九章 建设高水平开放平台") == 1
    assert heading_rank("第一节 指导思想") == 2
    assert heading_rank("一、2023年工作回顾") == 3
    assert heading_rank("（二）推动转型升级，现代产业体系加快构建") == 4
    assert heading_rank("1.航空枢纽建设") == 5
    assert heading_rank("（1）加快建设") == 6
    assert heading_rank("1.5万家企业入驻。") is None
    assert heading_rank("制造业高质量发展态势强劲。新增省级制造业创新中心4家。") is None
    assert (
        heading_text("（一）统筹推进疫情防控与经济平稳健康发展。坚持大战大考")
        == "（一）统筹推进疫情防控与经济平稳健康发展"
    )


def test_enumerated_items_stay_in_their_paragraph() -> None:
    # the 1981 national report lists "从以下几个方面进行：" then 一、……； 二、……； 三、……。 as one paragraph
    path = (
        Path(__file__).resolve().parent.parent
        / "corpora"
        / "national"
        / "national-1981-government-work-report.txt"
    )
    clean = clean_text(load_file(path).text).text
    start = clean.index("从以下几个方面进行：")
    sections = find_sections(clean)
    holding = [s for s in sections if s.start <= start < s.end][0]
    body = clean[holding.start : holding.end]
    assert "一、节约能源" in body and "三、合理地利用资源" in body
    assert not any(p.startswith("一、节约能源") for p in holding.path)
    # a real heading with a body of its own is still a heading
    assert heading_rank("一、伟大的历史性转变") is not None


def test_a_short_whole_sentence_is_kept_a_lead_in_is_not() -> None:
    from qa.ingest.chunking import ChunkerSettings, chunk_text

    text = "在对外贸易方面，一九五七年进出口贸易总额，比原计划超过百分之四。\n重点抓好十个方面工作：\n"
    chunks = [c.text for c in chunk_text(text, find_sections(text), ChunkerSettings())]
    assert any("比原计划超过百分之四" in c for c in chunks)
    assert not any(c.strip() == "重点抓好十个方面工作：" for c in chunks)
