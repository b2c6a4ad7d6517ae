"""Plain dataclasses that flow through the pipeline: documents, passages, hits, answers."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class SourceSpan:
    """Where a passage came from in the original file (lines are 1-based, inclusive)."""

    start_line: int
    end_line: int
    start_char: int  # offset into the decoded original text
    end_char: int  # exclusive
    page_start: int | None = None  # PDFs only, 1-based
    page_end: int | None = None

    def label(self) -> str:
        """Human citation label: '第12–14行' or '第3页'."""
        if self.page_start is not None:
            if self.page_end is not None and self.page_end != self.page_start:
                return f"第{self.page_start}–{self.page_end}页"
            return f"第{self.page_start}页"
        if self.end_line != self.start_line:
            return f"第{self.start_line}–{self.end_line}行"
        return f"第{self.start_line}行"


@dataclass
class DocumentInfo:
    """Catalog metadata of one file in documents/."""

    file: str  # file name relative to the documents folder (the document's id)
    title: str
    kind: str = "其他"  # 政府工作报告 | 五年规划纲要 | 新闻稿 | 其他
    delivered: str | None = None  # ISO date, e.g. 2024-02-03
    looks_back: list[int] = field(default_factory=list)
    plans_for: list[int] = field(default_factory=list)
    year: int | None = None  # the headline year (year delivered)
    guessed: bool = False  # True when metadata was guessed from the text, not the catalog
    issuer: str | None = None  # who delivered or issued it: 国务院, 郑州市人民政府 …
    place: str | None = None  # the place it is about: 全国, 河南省, 郑州市 …
    # where each field came from: "catalog" | "title line" | "file name" | "text" (field name -> source)
    sources: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


@dataclass
class Passage:
    """A citable piece of a document."""

    id: str
    doc: str  # file name in documents/
    title: str
    year: int | None
    section: list[str]
    text: str  # clean text shown to people
    embed_text: str  # text given to the encoder (heading + text)
    span: SourceSpan

    @property
    def section_path(self) -> str:
        """'第三篇 > 第九章 > 第一节 …' or '' at top level."""
        return " > ".join(self.section)

    def citation(self) -> str:
        """One-line citation: title (year) · section · lines."""
        parts = [self.title + (f"（{self.year}）" if self.year and str(self.year) not in self.title else "")]
        if self.section:
            parts.append(self.section_path)
        parts.append(self.span.label())
        return " · ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Passage:
        """Inverse of to_dict."""
        d = dict(d)
        d["span"] = SourceSpan(**d["span"])
        d["section"] = list(d["section"])
        return cls(**d)


@dataclass
class Query:
    """The question as understood: normalised text, years, routing and filters."""

    text: str  # what the user typed (after length limiting)
    normalized: str  # NFKC + simplified, used for matching
    years: list[int] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # document kinds the question names
    docs: list[str] = field(default_factory=list)  # documents the years/kinds route to
    filters: dict[str, Any] = field(default_factory=dict)  # explicit: {"doc": [...], "year": [...]}
    notes: list[str] = field(default_factory=list)  # e.g. "问题过长，已截断到500字"
    uncovered_years: list[int] = field(default_factory=list)  # years no document covers
    intent: str = ""  # "target" (asks about a plan), "result" (an outcome) or "" (unclear)
    other_places: list[str] = field(default_factory=list)  # places named that the reports are not about
    terms: list[str] = field(default_factory=list)  # the search terms taken from the question
    reports: list[int] = field(default_factory=list)  # years of the reports the question names (1981年的报告)

    def describe(self) -> str:
        """'按2023年检索：2024年政府工作报告' style explanation."""
        return "; ".join(self.notes)


@dataclass
class Hit:
    """A ranked passage with its score and the signals behind it."""

    passage: Passage
    score: float
    rank: int = 0
    signals: dict[str, float] = field(default_factory=dict)
    highlight: str | None = None  # the sentence in passage.text that best answers

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict with the citation spelled out."""
        d = asdict(self)
        d["citation"] = self.passage.citation()
        return d


@dataclass
class Answer:
    """The bot's reply: an answer line with [n] markers and the cited passages."""

    question: str
    query: Query
    text: str  # answer line, verbatim sentence(s) from passages with [n] markers
    hits: list[Hit]
    abstained: bool = False
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    # the line is the nearest material, not a stated answer (weak evidence, or a figure for another year)
    unsure: bool = False
    confidence: float | None = None  # calibrated probability that the line holds the answer, when known

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "question": self.question,
            "query": asdict(self.query),
            "text": self.text,
            "abstained": self.abstained,
            "hits": [h.to_dict() for h in self.hits],
            "timings": self.timings,
            "unsure": self.unsure,
            "confidence": self.confidence,
        }
