"""The LangChain surface: QARetriever returns Documents with citation metadata, inside an LCEL chain."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import R2024, REPO, BuiltIndex

from qa.search.retriever import Retriever

pytestmark = pytest.mark.integration

METADATA = {"doc", "title", "year", "section", "citation", "start_line", "end_line", "page", "score", "id"}


@pytest.fixture(scope="module")
def retriever(built_index: BuiltIndex) -> Retriever:
    """A retriever over the session index."""
    return Retriever.open(built_index.index, built_index.settings)


def test_retriever_returns_documents_with_citations(retriever: Retriever) -> None:
    from langchain_core.documents import Document

    from qa.integrations.langchain import QARetriever

    lc = QARetriever(retriever=retriever, k=3)
    docs = lc.invoke("2023年郑州市地区生产总值是多少？")
    assert len(docs) == 3 and all(isinstance(d, Document) for d in docs)
    top = docs[0]
    assert set(top.metadata) >= METADATA
    assert top.metadata["doc"] == R2024 and top.metadata["year"] == 2024
    assert top.metadata["title"] in top.metadata["citation"]
    assert "行" in top.metadata["citation"]  # the line range
    assert top.metadata["start_line"] <= top.metadata["end_line"]
    assert "地区生产总值" in top.page_content
    hits = retriever.search("2023年郑州市地区生产总值是多少？", k=3)
    assert [d.metadata["id"] for d in docs] == [h.passage.id for h in hits]
    assert [d.page_content for d in docs] == [h.passage.text for h in hits]


def test_filters_pass_through(retriever: Retriever) -> None:
    from qa.integrations.langchain import QARetriever

    lc = QARetriever(retriever=retriever, k=4, filters={"doc": [R2024]})
    docs = lc.invoke("地区生产总值")
    assert docs and {d.metadata["doc"] for d in docs} == {R2024}


def test_lcel_chain_invokes_the_retriever(retriever: Retriever) -> None:
    from langchain_core.runnables import RunnableLambda, RunnableParallel, RunnablePassthrough

    from qa.integrations.langchain import QARetriever

    def format_docs(docs: list) -> str:
        return "\n\n".join(
            f"[{i}] {d.page_content}\n—— {d.metadata['citation']}" for i, d in enumerate(docs, 1)
        )

    lc = QARetriever(retriever=retriever, k=3)
    chain = RunnableParallel(context=lc | RunnableLambda(format_docs), question=RunnablePassthrough()) | (
        RunnableLambda(lambda x: f"资料：\n{x['context']}\n\n问题：{x['question']}")
    )
    prompt = chain.invoke("十四五期间郑州要建成哪些国家级平台？")
    assert prompt.startswith("资料：\n[1] ") and prompt.endswith("问题：十四五期间郑州要建成哪些国家级平台？")
    assert "郑州市国民经济和社会发展第十四个五年规划" in prompt  # a citation of the plan
    # batch and the retriever's own docs in one chain
    many = (lc | RunnableLambda(lambda docs: [d.metadata["doc"] for d in docs])).batch(
        ["2023年郑州市地区生产总值是多少？", "2024年的主要预期目标是什么？"]
    )
    assert many[0][0] == R2024 and many[1][0] == R2024


def test_missing_extra_gives_one_sentence() -> None:
    """Without langchain-core the import fails with the install command, not a traceback of ImportError."""
    code = (
        "import sys\n"
        "sys.modules['langchain_core'] = None\n"  # makes `import langchain_core...` raise ImportError
        "from qa.errors import QAError\n"
        "try:\n"
        "    import qa.integrations.langchain\n"
        "except QAError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=True
    )
    assert "pip install zhengzhou-qa[langchain]" in out.stdout
    assert out.stdout.count("\n") == 1
