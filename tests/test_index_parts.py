"""The index's parts alone: IndexSpec (which settings define an index) and the lexical index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qa.config import Settings
from qa.index.lexical import LexicalIndex, top_rows
from qa.index.manifest import FORMAT_VERSION, Manifest
from qa.index.spec import IndexSpec

pytestmark = pytest.mark.unit

DOCS = Path(__file__).resolve().parent.parent / "documents"


def _manifest(spec: IndexSpec, **changes: object) -> Manifest:
    m = Manifest(
        format_version=FORMAT_VERSION,
        model=spec.model,
        model_id="e5",
        model_fingerprint="fp",
        dim=384,
        chunker=spec.chunker_record,
        chunker_fingerprint=spec.chunker_fingerprint,
        faiss_index=spec.faiss_index,
        documents={},
        passages=0,
        built_at="",
        build_seconds=0.0,
    )
    for k, v in changes.items():
        setattr(m, k, v)
    return m


def test_retrieval_settings_share_an_index_and_content_settings_do_not() -> None:
    base = Settings()
    spec = IndexSpec.from_settings(base)
    assert IndexSpec.from_settings(base.with_(reranker="none", candidates=80, routing="off")) == spec
    assert IndexSpec.from_settings(base.with_(reranker="none")).key() == spec.key()
    for change in ({"chunk_max_chars": 400}, {"chunker": "naive"}, {"model": "x/y"}, {"faiss_index": "ivf"}):
        assert IndexSpec.from_settings(base.with_(**change)).key() != spec.key(), change
    assert spec.chunker_record == {
        "chunker": "chinese",
        "max_chars": 300,
        "overlap_sentences": 1,
        "min_chars": 40,
    }


def test_rebuild_reasons() -> None:
    spec = IndexSpec.from_settings(Settings())
    assert spec.rebuild_reason(_manifest(spec), "fp") is None
    assert "嵌入后端" in (spec.rebuild_reason(_manifest(spec), "other") or "")
    assert "格式" in (spec.rebuild_reason(_manifest(spec, format_version=FORMAT_VERSION - 1), "fp") or "")
    assert "分段" in (spec.rebuild_reason(_manifest(spec, chunker_fingerprint="x"), "fp") or "")
    assert "FAISS" in (spec.rebuild_reason(_manifest(spec, faiss_index="hnsw"), "fp") or "")
    assert "嵌入模型" in (spec.rebuild_reason(_manifest(spec, model="x/y"), None) or "")


def test_lexical_index_scores_masks_and_idf_on_real_lines(tmp_path: Path) -> None:
    lines = [
        ln
        for ln in (DOCS / "2024-zhengzhou-government-work-report.txt")
        .read_text(encoding="utf-8")
        .splitlines()
        if len(ln) > 40
    ][:60]
    lex = LexicalIndex.build(lines)
    idf = lex.idf()
    assert idf["生产总值"] > idf["发展"] > 0  # a rarer term weighs more
    scores = lex.scores(["生产总值"])
    rows = top_rows(scores, 5)
    assert len(rows) and all("生产总值" in lines[r] for r in rows)
    mask = np.ones(len(lines), dtype=np.float32)
    mask[rows[0]] = 0.0
    masked = lex.scores(["生产总值"], mask)
    assert masked[rows[0]] == 0.0 and masked[rows[1:]].tolist() == scores[rows[1:]].tolist()
    assert lex.scores(["从未出现的词"]).max() == 0.0
    lex.save(tmp_path / "lexical")
    again = LexicalIndex.load(tmp_path / "lexical", len(lines))
    assert again.idf() == idf
    assert np.allclose(again.scores(["生产总值"]), scores)
    with pytest.raises(ValueError):
        LexicalIndex.load(tmp_path / "lexical", len(lines) + 1)
