"""The cleaner on the real report files: rejoined lines and numbers, noise removed, offsets exact."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from qa.ingest.clean import clean_text, line_of
from qa.ingest.clean import normalize_for_source_check as normalize_for_match
from qa.ingest.loaders import load_file

pytestmark = pytest.mark.unit

DOCS = Path(__file__).resolve().parent.parent / "documents"
R2020 = DOCS / "2020-zhengzhou-government-work-report.txt"
R2021 = DOCS / "2021-zhengzhou-government-work-report.txt"
PLAN = DOCS / "2021-zhengzhou-14th-five-year-plan-outline.txt"
R2023 = DOCS / "2023-zhengzhou-government-work-report-keywords.txt"
R2024 = DOCS / "2024-zhengzhou-government-work-report.txt"
ALL = [R2020, R2021, PLAN, R2023, R2024]

_cache: dict[Path, tuple[str, str]] = {}


def cleaned(path: Path) -> tuple[str, str]:
    """(original, clean) of a report, cached for the module."""
    if path not in _cache:
        original = load_file(path).text
        _cache[path] = (original, clean_text(original).text)
    return _cache[path]


def test_sentence_broken_across_lines_and_blank_line_is_rejoined() -> None:
    # "新增省级制造业创" / "" / "新中心4家。" in the 2020 newspaper print
    _, clean = cleaned(R2020)
    assert "新增省级制造业创新中心4家。" in clean


NATIONAL = DOCS.parent / "corpora" / "national"


def test_web_extracted_link_lines_rejoin_their_sentence() -> None:
    # Wikisource text with each link on a line of its own: "　　今年是我国与" / "印度" / "、缅甸共同倡议…"
    clean = clean_text(load_file(NATIONAL / "national-1984-government-work-report.txt").text).text
    assert "今年是我国与印度、缅甸共同倡议和平共处五项原则三十周年。" in clean
    assert "发布《关于进一步扩大国营工业企业自主权的暂行规定》，在生产经营计划" in clean
    # "　　在" / "工资制度和价格改革" / "上迈出…": no punctuation to go by, only the paragraph's indent
    clean = clean_text(load_file(NATIONAL / "national-1985-government-work-report.txt").text).text
    assert "\n在工资制度和价格改革上迈出重要的步子，是今年经济体制改革的两大任务。" in clean
    # headings and paragraphs that begin with an indent keep their own lines
    text = "　　一、关于国民经济的调整\n　　今年要继续调整国民经济。\n　　二、关于改革\n改革要稳步前进。"
    assert clean_text(text).text.split("\n") == [
        "一、关于国民经济的调整",
        "今年要继续调整国民经济。",
        "二、关于改革",
        "改革要稳步前进。",
    ]


@pytest.mark.parametrize(
    "name", ["national-1984-government-work-report.txt", "national-1993-government-work-report.txt"]
)
def test_offsets_round_trip_over_rejoined_link_lines(name: str) -> None:
    original = load_file(NATIONAL / name).text
    c = clean_text(original)
    offs = [int(x) for x in c.offsets[:-1]]
    assert all(a < b for a, b in zip(offs, offs[1:], strict=False))
    assert all(
        ch == "\n" or normalize_for_match(original[o]) == normalize_for_match(ch)
        for ch, o in zip(c.text, offs, strict=True)
    )


def test_number_and_unit_split_across_lines_rejoined() -> None:
    _, clean = cleaned(R2020)
    assert "粮食总产量达到149.7万吨。" in clean  # "…达到" / "149.7万吨。"
    assert "引进域外境内资金2235亿元、增长6%。" in clean  # "…资金2235" / "亿元、增长6%。"


def test_number_broken_mid_number_is_rejoined() -> None:
    # The five files only wrap between a number and its unit; break real lines inside the numbers.
    original, clean = cleaned(R2020)
    for before, after in (("达到\n149.7万吨", "达到14\n9.7万吨"), ("增长 16.8%", "增长 16\n.8%")):
        assert before in original or before.replace("\n", "") in original
        broken = original.replace(before, after, 1)
        assert broken != original
        assert clean_text(broken).text == clean


def test_spaces_inside_words_and_numbers_removed() -> None:
    _, plan = cleaned(PLAN)
    assert "地方一般公共预算收入完成1259.2亿元" in plan  # "预 算 收 入 完 成" / "1259.2亿元"
    _, r2020 = cleaned(R2020)
    assert "金融业增加值突破1200亿元、占服务业比重达18%" in r2020  # "突" / "破 1200亿元…达 18%"


def test_latin_words_and_table_numbers_keep_their_space() -> None:
    _, plan = cleaned(PLAN)
    assert "城市宽带Mbps 50 100 1000" in plan
    assert "1736.1 2110 5 2359.6 6.3" in plan  # table cells are not fused into one number


def test_halfwidth_punctuation_in_chinese_becomes_fullwidth() -> None:
    _, plan = cleaned(PLAN)
    assert "各开发区管委会，各区县（市）人民政府，市人民政府各部门，" in plan
    assert "中财委会议明确提出：强化郑州国家中心城市带动作用" in plan
    assert ",各区县" not in plan


def test_fullwidth_digits_become_halfwidth_but_cjk_punctuation_stays() -> None:
    _, r2020 = cleaned(R2020)
    assert "万人发明专利拥有量16件、增长23%，" in r2020  # "23％" in the file
    line = "全年民生支出１４９４.２亿元，占一般公共预算支出７８.２％。"
    assert clean_text(line).text == "全年民生支出1494.2亿元，占一般公共预算支出78.2%。"


def test_headings_stay_on_their_own_line() -> None:
    _, r2020 = cleaned(R2020)
    lines = r2020.split("\n")
    assert "（二）推动转型升级，现代产业体系加快构建" in lines
    assert "二、2020年政府工作总体要求和主要预期目标" in lines  # a heading wrapped over two lines
    _, r2024 = cleaned(R2024)
    assert "一、2023年工作回顾" in r2024.split("\n")
    _, r2021 = cleaned(R2021)
    # heading and body separated only by a space in the source
    assert "（四）改革开放纵深推进，动力活力不断释放" in r2021.split("\n")


def test_watermark_and_promo_lines_dropped() -> None:
    original, r2024 = cleaned(R2024)
    assert "ppmandata" in original and "数据皮皮侠" in original
    assert "ppmandata" not in r2024 and "数据皮皮侠" not in r2024
    assert r2024.startswith("政府工作报告\n")


def test_page_numbers_and_doubled_running_header_dropped() -> None:
    original, plan = cleaned(PLAN)
    assert "—75—" in original and "—75—" not in plan
    original, r2023 = cleaned(R2023)
    assert "政府工作报告政府工作报告" in original and "政府工作报告政府工作报告" not in r2023


def test_replacement_characters_at_cut_off_line_ends_removed() -> None:
    original, clean = cleaned(R2023)
    damaged = "\n".join(line + "\ufffd" if len(line) > 10 else line for line in original.split("\n"))
    assert "\ufffd" not in clean_text(damaged).text
    assert clean_text(damaged).text == clean


def test_inserted_page_numbers_and_running_headers_do_not_change_text() -> None:
    original, clean = cleaned(R2020)
    lines = original.split("\n")
    noisy: list[str] = []
    for i, line in enumerate(lines):
        noisy.append(line)
        if i % 40 == 39:
            noisy += ["", f"- {i // 40 + 1} -", "郑州日报 2020年政府工作报告专版", ""]
    assert clean_text("\n".join(noisy)).text == clean


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name[:30])
def test_offsets_round_trip(path: Path) -> None:
    original = load_file(path).text
    c = clean_text(original)
    assert len(c.offsets) == len(c.text) + 1
    offs = [int(x) for x in c.offsets[:-1]]
    assert all(a < b for a, b in zip(offs, offs[1:], strict=False)), "offsets must increase"
    for i, ch in enumerate(c.text):
        o = original[offs[i]]
        if ch == "\n":
            assert o.isspace()
        else:
            assert normalize_for_match(o) == normalize_for_match(ch) or (ch, o) in {
                (":", "暶"),
                ("≤", "曑"),
            }, (
                i,
                ch,
                o,
            )


def test_line_of_is_one_based_and_matches_file_lines() -> None:
    original = load_file(R2020).text
    assert line_of(original, 0) == 1
    pos = original.index("（二）推动转型升级")
    assert line_of(original, pos) == 8
    assert line_of(original, len(original) - 1) == original.count("\n") + 1 - (original.endswith("\n"))


def test_normalize_for_match_unifies_widths_and_spaces() -> None:
    assert normalize_for_match("预 算 收 入,１２００ 亿元") == normalize_for_match("预算收入，1200亿元")
    assert unicodedata.normalize("NFKC", "（") == normalize_for_match("(")


def test_a_trailing_licence_notice_is_dropped_and_body_text_is_not() -> None:
    path = (
        Path(__file__).resolve().parent.parent
        / "corpora"
        / "national"
        / "national-1999-government-work-report.txt"
    )
    raw = load_file(path).text
    assert "公有领域" in raw and "Public domain" in raw
    clean = clean_text(raw)
    assert "公有领域" not in clean.text and "Public domain" not in clean.text
    assert clean.text.rstrip().endswith("推向21世纪！")
    assert "licence notice" in clean.dropped.values()
    # the same words in the body, far from the end, stay
    body = "本作品集收录了公有领域的历史文献，供研究使用。\n" + "正文内容。" * 400
    assert "公有领域" in clean_text(body).text


def test_letter_spaced_numbers_are_joined_table_cells_are_not() -> None:
    # the 1998 national report sets every digit apart: "1 9 9 7 年国内生产总值达到7 4 7 7 2 亿元"
    path = (
        Path(__file__).resolve().parent.parent
        / "corpora"
        / "national"
        / "national-1998-government-work-report.txt"
    )
    clean = clean_text(load_file(path).text).text
    assert "1997年国内生产总值达到74772亿元" in clean
    assert "粮食产量达到49250万吨" in clean
    # a table row of the plan outline keeps its cells apart
    row = "1地区生产总值年均增长（%）6.7 7.0左右预期性\n"
    assert "6.7 7.0" in clean_text(row).text
