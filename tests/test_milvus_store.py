"""The Milvus backend on milvus-lite, a real engine (no mocks): build, incremental add, replace, filters,
versions behind an alias, a build killed at many moments, a restart, readers following the live version.

Each test has its own milvus.db folder; the embedded milvus-lite server is released afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import R2024, CountingEncoder, new_marker, real_excerpt
from store_fixtures import REPO, Corpus, built_corpus, release_milvus, require_milvus

from qa.config import Settings
from qa.errors import QAError
from qa.index.builder import update_index
from qa.index.factory import open_target
from qa.search.retriever import Retriever

pytestmark = pytest.mark.integration

require_milvus()

from qa.index.milvus import MilvusTarget, client_for, collection_prefix  # noqa: E402

GDP = "2023年郑州市地区生产总值是多少？"
PLAN = "2021-zhengzhou-14th-five-year-plan-outline.txt"


@pytest.fixture
def kb(tmp_path: Path, session_settings: Settings, real_encoder: Any) -> Iterator[Corpus]:
    """documents/ indexed into a fresh milvus.db."""
    with built_corpus(tmp_path, session_settings, real_encoder, "milvus") as c:
        yield c


def _target(c: Corpus) -> MilvusTarget:
    t = open_target(c.settings, c.index)
    assert isinstance(t, MilvusTarget)
    return t


def test_build_answers_from_a_collection_behind_an_alias(kb: Corpus, real_encoder: Any) -> None:
    r = Retriever.open(kb.index, kb.settings, encoder=real_encoder)
    ans = r.ask(GDP, k=3)
    assert ans.hits[0].passage.doc == R2024 and "1.36万亿元" in ans.text
    t = _target(kb)
    assert r.store.version == t.live_version() == t.versions()[-1]
    assert r.store.version.startswith(collection_prefix("default") + "__v")
    # the index folder holds only the writer's lock: the passages are in Milvus
    assert not list(kb.index.glob("v-*")) and (kb.index / ".lock").exists()
    assert kb.report.passages_total == len(r.store) > 500


def test_incremental_add_embeds_only_the_new_document(kb: Corpus, real_encoder: Any) -> None:
    counting = CountingEncoder(real_encoder)
    marker = new_marker()
    name = f"摘编 {marker}.txt"
    (kb.documents / name).write_text(real_excerpt(marker), encoding="utf-8")
    report = update_index(kb.documents, kb.index, kb.settings, encoder=counting)
    assert report.added == [name] and not report.updated and len(report.unchanged) == 5
    new = [p for p in Retriever.open(kb.index, kb.settings, encoder=real_encoder).store.doc_passages(name)]
    assert new and sorted(counting.batches[0]) == sorted(p.embed_text for p in new)
    assert report.passages_embedded == len(new) and report.passages_total == kb.report.passages_total + len(
        new
    )
    r = Retriever.open(kb.index, kb.settings, encoder=real_encoder)
    hits = r.search(f"{marker}的内容", k=3)
    assert hits[0].passage.doc == name
    # the earlier version is kept for readers still on it, the one before that is dropped
    for _ in range(2):
        (kb.documents / name).write_text(real_excerpt(new_marker()), encoding="utf-8")
        update_index(kb.documents, kb.index, kb.settings, encoder=real_encoder)
    assert len(_target(kb).versions()) == 2


def test_filters_by_document_and_year(kb: Corpus, real_encoder: Any) -> None:
    r = Retriever.open(kb.index, kb.settings, encoder=real_encoder)
    hits = r.search(GDP, k=8, filters={"doc": [PLAN]})
    assert hits and {h.passage.doc for h in hits} == {PLAN}
    about_2019 = {d.info.file for d in r.documents() if 2019 in d.info.looks_back + d.info.plans_for}
    hits = r.search("全社会研发投入增长了多少？", k=8, filters={"year": [2019]})
    assert hits and {h.passage.doc for h in hits} <= about_2019
    with pytest.raises(QAError, match="no-such-file.txt"):
        r.search(GDP, k=5, filters={"doc": ["no-such-file.txt"]})


def test_replace_a_document(kb: Corpus, real_encoder: Any) -> None:
    r = Retriever.open(kb.index, kb.settings, documents_dir=kb.documents, encoder=real_encoder)
    old, new = new_marker(), new_marker()
    name = "替换测试.txt"
    assert r.add_upload(name, real_excerpt(old).encode("utf-8")).added == [name]
    assert r.search(f"{old}的内容", k=1)[0].passage.doc == name
    report = r.add_upload(name, real_excerpt(new, start=60).encode("utf-8"), replace=True)
    assert report.updated == [name] and not report.added
    assert sorted(p.name for p in kb.documents.glob("替换测试*")) == [name]  # replaced, not added beside it
    texts = [p.text for p in r.store.doc_passages(name)]
    assert any(new in t for t in texts) and not any(old in t for t in texts)
    assert all(old not in h.passage.text for h in r.search(f"{old}的内容", k=10))
    # bytes that cannot be read leave the document (file and passages) as it was, and nothing staged behind
    before = (kb.documents / name).read_bytes()
    report = r.add_upload(name, os.urandom(3000), replace=True)
    assert report.errors and not report.updated, report
    assert (kb.documents / name).read_bytes() == before
    assert r.search(f"{new}的内容", k=1)[0].passage.doc == name
    assert not [p for p in kb.documents.rglob("*") if p.is_file() and ".staging" in p.parts]


def test_readers_follow_the_live_version_and_survive_a_restart(kb: Corpus, real_encoder: Any) -> None:
    reader = Retriever.open(kb.index, kb.settings, encoder=real_encoder)
    before = reader.store.version
    marker = new_marker()
    name = f"新增 {marker}.txt"
    (kb.documents / name).write_text(real_excerpt(marker), encoding="utf-8")
    update_index(kb.documents, kb.index, kb.settings, encoder=real_encoder)  # another writer
    time.sleep(kb.settings.version_check_seconds + 0.1)
    assert reader.store.version != before
    assert reader.search(f"{marker}的内容", k=1)[0].passage.doc == name
    # a restart: the embedded server stops, every collection comes back released and is loaded on open
    release_milvus(kb.settings)
    again = Retriever.open(kb.index, kb.settings, encoder=real_encoder)
    assert again.search(f"{marker}的内容", k=1)[0].passage.doc == name


_BUILD = """
import sys
from qa.config import Settings
from qa.index.builder import update_index
s = Settings(cache_dir=sys.argv[3], store="milvus", milvus_uri=sys.argv[4])
def progress(message, fraction=None):
    print(message, flush=True)
update_index(sys.argv[1], sys.argv[2], s, force=True, progress=progress)
print("DONE", flush=True)
"""

# moments to kill the build at: each is a progress message (the kill lands just after it) or seconds
KILL_AT: list[str | float] = [
    "建立 BM25",
    "写入 Milvus 0/",
    "写入 Milvus 500/",
    "写入索引信息",
    "切换到新版本",
    3.0,
]


def test_a_build_killed_at_any_moment_leaves_the_previous_version_answering(
    kb: Corpus, real_encoder: Any
) -> None:
    """SIGKILL a full rebuild (another process) at several moments: the alias always names a complete
    version that answers, the next build completes, and no half-written collection lingers."""
    s = kb.settings
    cmd = [sys.executable, "-c", _BUILD, str(kb.documents), str(kb.index), s.cache_dir, s.milvus_uri]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    versions_seen = set()
    for when in KILL_AT:
        release_milvus(s)  # one process may open milvus.db at a time
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        t0 = time.monotonic()
        assert proc.stdout is not None
        reached = False
        for line in proc.stdout:
            if isinstance(when, str) and when in line:
                reached = True
                break
            if isinstance(when, float) and time.monotonic() - t0 > when:
                reached = True
                break
        proc.kill()
        proc.wait()
        assert reached, f"the build ended before {when!r}"
        r = Retriever.open(kb.index, s, encoder=real_encoder)
        ans = r.ask(GDP, k=3)
        assert ans.hits[0].passage.doc == R2024, when
        assert len(r.store) == kb.report.passages_total, when
        versions_seen.add(r.store.version)
        live = _target(kb).live_version()
        assert live == r.store.version
    release_milvus(s)
    report = update_index(kb.documents, kb.index, s, encoder=real_encoder, force=True)
    assert report.written
    t = _target(kb)
    assert len(t.versions()) == 2
    names = client_for(s).list_collections()
    prefix = collection_prefix("default")
    assert sorted(n for n in names if n.startswith(prefix)) == sorted(
        [*t.versions(), *(f"{v}__meta" for v in t.versions())]
    )
    print(
        f"\nkilled builds: the live version moved {len(versions_seen) - 1} time(s) across {len(KILL_AT)} kills"
    )
