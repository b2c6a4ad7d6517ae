"""A user's correction of a document's metadata re-routes questions without re-embedding anything."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO, CountingEncoder

from qa import Retriever
from qa.config import Settings
from qa.index.builder import update_index
from qa.index.store import IndexStore
from qa.ingest.catalog import set_entry

pytestmark = pytest.mark.integration

NATIONAL = REPO / "corpora" / "national"
R1980 = "national-1980-government-work-report.txt"
R1981 = "national-1981-government-work-report.txt"


@pytest.fixture
def small_national(tmp_path: Path, session_settings: Settings, real_encoder: Any) -> tuple[Path, Path]:
    """Two national reports without a catalog, indexed."""
    docs = tmp_path / "documents"
    docs.mkdir()
    for name in (R1980, R1981):
        shutil.copy(NATIONAL / name, docs / name)
    index = tmp_path / "index"
    update_index(docs, index, session_settings, encoder=real_encoder)
    return docs, index


def test_a_catalog_correction_reroutes_without_re_embedding(
    small_national: tuple[Path, Path], session_settings: Settings, real_encoder: Any
) -> None:
    docs, index = small_national
    before = IndexStore.open(index)
    info = next(i for i, _ in before.document_infos() if i.file == R1981)
    assert info.guessed and info.sources["year"] in ("text", "file name")
    question = "1979年的粮食产量是多少？"
    r = Retriever.open(index, session_settings, documents_dir=docs, encoder=real_encoder)
    assert R1981 not in r.understand(question).docs

    # the user says the 1981 report looks back on 1979 (a deliberate, checkable change)
    set_entry(
        docs, R1981, {"title": "一九八一年政府工作报告（更正）", "year": 1981, "looks_back": [1979, 1980]}
    )
    report = r.update()  # the running retriever re-syncs: only the metadata is rewritten
    assert report.relabelled == [R1981] and report.written
    assert report.passages_embedded == 0 and report.timings.get("embed") is None  # nothing embedded again
    after = IndexStore.open(index)
    assert after.manifest.passages == before.manifest.passages
    fixed = next(i for i, _ in after.document_infos() if i.file == R1981)
    assert fixed.title == "一九八一年政府工作报告（更正）" and fixed.sources["looks_back"] == "catalog"
    # the passages carry the new title, so citations change too
    assert {p.title for p in after.passages if p.doc == R1981} == {"一九八一年政府工作报告（更正）"}
    q = r.understand(question)  # the question now goes to the corrected report too
    assert R1981 in q.docs
    hits = r.search(question, k=5)
    assert any(h.passage.doc == R1981 and h.passage.title.endswith("（更正）") for h in hits)
    # an unchanged folder afterwards writes nothing and embeds nothing
    counting = CountingEncoder(real_encoder)
    again = update_index(docs, index, session_settings, encoder=counting)
    assert not again.written and counting.calls == 0


def test_a_correction_through_the_api_needs_the_token_and_is_audited(
    small_national: tuple[Path, Path], session_settings: Settings, real_encoder: Any
) -> None:
    from fastapi.testclient import TestClient

    from qa.ingest.uploads import read_audit
    from qa.serve.api import create_api

    docs, index = small_national
    token = "correction-token-0123456789"
    settings = session_settings.with_(admin_token=token, documents_dir=str(docs), index_dir=str(index))
    r = Retriever.open(index, settings, documents_dir=docs, encoder=real_encoder)
    api = create_api(lambda: r, settings)
    body = {"year": 1980, "plans_for": [1980, 1981], "title": "1980年国务院政府工作报告（更正）"}
    with TestClient(api, base_url="http://127.0.0.1:7860") as c:
        assert c.patch(f"/api/documents/{R1980}", json=body).status_code == 401
        auth = {"Authorization": f"Bearer {token}"}
        bad = c.patch(f"/api/documents/{R1980}", json={"kind": "小说"}, headers=auth)
        assert bad.status_code == 422 and "kind" in bad.json()["error"]
        assert c.patch("/api/documents/nope.txt", json=body, headers=auth).status_code == 404
        assert c.patch(f"/api/documents/{R1980}", json={"colour": "red"}, headers=auth).status_code == 422
        ok = c.patch(f"/api/documents/{R1980}", json=body, headers=auth)
        assert ok.status_code == 200, ok.text
        assert ok.json()["document"]["title"] == body["title"]
        assert ok.json()["report"]["relabelled"] == [R1980] and ok.json()["report"]["passages_embedded"] == 0
        listed = {d["file"]: d for d in c.get("/api/documents").json()["documents"]}
        assert (
            listed[R1980]["plans_for"] == [1980, 1981] and listed[R1980]["sources"]["plans_for"] == "catalog"
        )
    (entry,) = [e for e in read_audit(index) if e["action"] == "correct"]
    assert entry["file"] == R1980 and "plans_for" in entry["fields"] and entry["via"] == "api"
