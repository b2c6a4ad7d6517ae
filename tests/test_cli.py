"""The command line: `qa ask` (readable and --json), errors as one sentence, `qa index` with a broken file,
`qa chunk --dump`, `qa documents`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import DOCUMENTS, R2024, REPO, BuiltIndex
from typer.testing import CliRunner

from qa.cli import app
from qa.index.store import IndexStore

pytestmark = pytest.mark.integration

KEYWORDS = "2023-zhengzhou-government-work-report-keywords.txt"


@pytest.fixture
def run(built_index: BuiltIndex):
    """Invoke the CLI in-process with the session cache."""
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(app, list(args), env={"QA_CACHE_DIR": built_index.settings.cache_dir})

    return invoke


def test_ask_json(run, built_index: BuiltIndex) -> None:
    res = run(
        "ask",
        "2023年郑州GDP是多少？",
        "--index",
        str(built_index.index),
        "--documents",
        str(built_index.documents),
        "--json",
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["question"] == "2023年郑州GDP是多少？"
    assert data["query"]["years"] == [2023]
    assert len(data["hits"]) == 5
    top = data["hits"][0]
    assert top["passage"]["doc"] == R2024 and top["citation"] and top["rank"] == 1
    assert isinstance(data["abstained"], bool) and data["text"]


def test_ask_readable_with_filters(run, built_index: BuiltIndex) -> None:
    res = run("ask", "地区生产总值增长", "--index", str(built_index.index), "--doc", R2024, "-k", "3")
    assert res.exit_code == 0, res.output
    assert "限定文件：2024年郑州市政府工作报告" in res.stdout
    assert res.stdout.count("2024年郑州市政府工作报告 · ") >= 3  # three citations from that report
    assert "[1]" in res.stdout and "[3]" in res.stdout


def test_documents(run, built_index: BuiltIndex) -> None:
    res = run("documents", "--index", str(built_index.index))
    assert res.exit_code == 0, res.output
    flat = res.stdout.replace("\n", "")  # rich wraps long lines at the console width
    for f in DOCUMENTS.glob("*.txt"):
        assert f.name in flat
    assert "108 段" in flat or "段" in flat


def test_empty_question_is_one_sentence_without_traceback(built_index: BuiltIndex) -> None:
    qa = Path(sys.executable).with_name("qa")
    cmd = [str(qa)] if qa.exists() else [sys.executable, "-m", "qa.cli"]
    out = subprocess.run(
        [*cmd, "ask", "", "--index", str(built_index.index)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        env={**__import__("os").environ, "QA_CACHE_DIR": built_index.settings.cache_dir},
    )
    assert out.returncode != 0
    assert "Traceback" not in out.stderr + out.stdout
    lines = [ln for ln in (out.stderr + out.stdout).splitlines() if ln.strip()]
    assert len(lines) == 1 and "请输入问题" in lines[0], lines


def test_missing_index_names_the_fix(run, tmp_path: Path) -> None:
    res = run("documents", "--index", str(tmp_path / "none"))
    assert res.exit_code == 2
    assert (
        "run `qa index --index " in res.output
        and len(res.output.strip().splitlines()) == 1
        and "Traceback" not in res.output
    )
    # no index and no documents folder to build one from: one sentence about the folder
    res = run(
        "ask", "2023年郑州GDP是多少？", "--index", str(tmp_path / "none"), "--documents", str(tmp_path / "no")
    )
    assert res.exit_code == 2
    assert "does not exist" in res.output and "Traceback" not in res.output


def test_index_reports_a_broken_file_and_indexes_the_rest(run, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(DOCUMENTS / KEYWORDS, docs / KEYWORDS)
    shutil.copy(DOCUMENTS / "catalog.toml", docs / "catalog.toml")
    (docs / "broken-report.docx").write_bytes(b"PK\x03\x04 this is not really a zip archive" * 10)
    (docs / "blank.txt").write_text("\n\n   \n", encoding="utf-8")
    res = run("index", "--documents", str(docs), "--index", str(tmp_path / "index"))
    assert res.exit_code == 0, res.output
    out = res.output
    assert "broken-report.docx" in out and "blank.txt" in out
    assert "Traceback" not in out
    store = IndexStore.open(tmp_path / "index")
    assert set(store.manifest.documents) == {KEYWORDS}
    assert store.manifest.passages > 10


def test_chunk_dump(run, tmp_path: Path) -> None:
    dump = tmp_path / "x.jsonl"
    res = run("chunk", str(DOCUMENTS), "--dump", str(dump))
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in dump.read_text(encoding="utf-8").splitlines()]
    assert len(rows) > 500
    assert {r["doc"] for r in rows} == {p.name for p in DOCUMENTS.glob("*.txt")}
    assert all(r["text"] and r["citation"] and r["span"]["start_line"] >= 1 for r in rows)
    assert len({r["id"] for r in rows}) == len(rows)


def test_catalog_set_writes_the_entry_and_prints_it(tmp_path: Path) -> None:
    docs = tmp_path / "documents"
    shutil.copytree(DOCUMENTS, docs)
    name = "national-1978-government-work-report.txt"
    shutil.copy(REPO / "corpora" / "national" / name, docs)
    runner = CliRunner()
    args = ["catalog", "set", name, "--title", "1978年国务院政府工作报告", "--delivered", "1978-02-26"]
    res = runner.invoke(
        app, [*args, "--looks-back", "1976", "--looks-back", "1977", "--documents", str(docs)]
    )
    assert res.exit_code == 0, res.output
    # the first entry of an uncatalogued file starts from what its text says; the options given win
    table = (
        f'[documents."{name}"]\ntitle = "1978年国务院政府工作报告"\nkind = "政府工作报告"\n'
        "delivered = 1978-02-26\nlooks_back = [1976, 1977]\nplans_for = [1978]\nyear = 1978\n"
        'issuer = "国务院"\nplace = "全国"\n'
    )
    assert table in res.stdout, res.stdout
    assert (docs / "catalog.toml").read_text(encoding="utf-8").endswith(table)
    # a bad value is one sentence and changes nothing
    before = (docs / "catalog.toml").read_bytes()
    res = runner.invoke(app, ["catalog", "set", name, "--kind", "报告", "--documents", str(docs)])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1 and "kind must be one of" in res.output
    res = runner.invoke(
        app, ["catalog", "set", "2099-nowhere.txt", "--year", "2099", "--documents", str(docs)]
    )
    assert res.exit_code == 2 and "is not a document in" in res.output
    assert (docs / "catalog.toml").read_bytes() == before
