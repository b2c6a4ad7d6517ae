"""The chat's knowledge-base selector and the admin's delete button, in headless Chromium against app.py.

A second knowledge base ("national": two national reports) is created with `qa index --kb`; the app runs
with a write token configured, so the delete button refuses without it and works with it. Needs
/usr/bin/chromium (skipped without it unless QA_REQUIRE_BROWSER=1).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_fixtures import NATIONAL, REPO, copy_documents

from qa.serve.process import free_port, stop_process, wait_until_healthy

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    if os.environ.get("QA_REQUIRE_BROWSER") == "1":
        pytest.fail(
            f"{CHROMIUM} is missing: run `apt-get install -y chromium fonts-noto-cjk`.", pytrace=False
        )
    pytest.skip(
        f"{CHROMIUM} is missing (apt-get install -y chromium fonts-noto-cjk).", allow_module_level=True
    )

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

REPORTS = ["national-1960-government-work-report.txt", "national-1975-government-work-report.txt"]
TOKEN = "chat-admin-token-0123456789"
KB_ROOT: dict[str, Path] = {}  # the app fixture's folder


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """app.py over a copy of documents/ and a 'national' knowledge base, with a write token."""
    root = tmp_path_factory.mktemp("kbapp")
    KB_ROOT["root"] = root
    docs = copy_documents(root / "documents")
    national = root / "national"
    national.mkdir()
    for name in REPORTS:
        (national / name).write_bytes((NATIONAL / name).read_bytes())
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "QA_KB_DIR": str(root / "kbs")}
    subprocess.run(
        [sys.executable, "-m", "qa.cli", "index", "--kb", "national", "--documents", str(national)],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
        timeout=900,
    )
    port = free_port()
    log = root / "app.log"
    with log.open("w", encoding="utf-8") as fh:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "app.py"),
                "--port",
                str(port),
                "--documents",
                str(docs),
                "--index",
                str(root / "index"),
            ],
            cwd=root,
            env={**env, "QA_ADMIN_TOKEN": TOKEN},
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_healthy(proc, f"http://127.0.0.1:{port}", 900, name="app.py", log=log)
            yield f"http://127.0.0.1:{port}/"
        finally:
            stop_process(proc)
    assert "Traceback" not in log.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def page(app: str) -> Iterator[Page]:
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"], headless=True
        )
        pg = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
        pg.goto(app, wait_until="load")
        pg.wait_for_selector("#qa-question textarea", timeout=60_000)
        expect(pg.locator("#qa-summary")).to_contain_text("个文档", timeout=60_000)
        yield pg
        browser.close()


def _ask(page: Page, question: str) -> list[str]:
    before = page.locator("#qa-chat .qa-reply").count()
    page.fill("#qa-question textarea", question)
    page.press("#qa-question textarea", "Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('#qa-chat .qa-reply').length > n", arg=before, timeout=60_000
    )
    return list(page.locator("#qa-chat .qa-reply").last.locator(".qa-card .qa-doc").all_inner_texts())


def _choose(page: Page, dropdown: str, option: str) -> None:
    page.click(f"{dropdown} input")
    page.get_by_role("option", name=re.compile(re.escape(option))).click()


def test_selector_switches_knowledge_base_and_admin_deletes(app: str, page: Page) -> None:
    assert set(_ask(page, "2023年郑州GDP是多少？")) <= {p.name for p in (REPO / "documents").glob("*.txt")}
    _choose(page, "#qa-kb", "national")
    expect(page.locator("#qa-summary")).to_contain_text("2 个文档", timeout=30_000)
    docs = _ask(page, "1960年计划钢产量是多少？")
    assert docs and set(docs) <= set(REPORTS)
    # the admin's delete button: not shown before the admin signs in, and refused by the server if the
    # page's event is called anyway; after signing in, it removes the document
    page.locator("#qa-docs-panel button.label-wrap").first.click()  # the documents panel holds it
    expect(page.locator("#qa-admin")).to_contain_text("管理员登录")
    assert not page.locator("#qa-delete-btn").is_visible()
    page.goto(app + "admin/login")
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit] >> nth=0")
    page.wait_for_url(app)
    page.wait_for_selector("#qa-question textarea", timeout=60_000)
    expect(page.locator("#qa-summary")).to_contain_text("个文档", timeout=60_000)
    _choose(page, "#qa-kb", "national")
    expect(page.locator("#qa-summary")).to_contain_text("2 个文档", timeout=30_000)
    page.locator("#qa-docs-panel button.label-wrap").first.click()
    expect(page.locator("#qa-delete-btn")).to_be_visible(timeout=30_000)
    _choose(page, "#qa-delete-doc", REPORTS[0])
    page.click("#qa-delete-btn")
    expect(page.locator("#qa-delete-status")).to_contain_text("已删除", timeout=120_000)
    expect(page.locator("#qa-summary")).to_contain_text("1 个文档", timeout=30_000)
    time.sleep(0.5)
    for q in ("1960年计划钢产量是多少？", "1960年的政府工作报告讲了什么？"):
        assert REPORTS[0] not in _ask(page, q)
    log = KB_ROOT["root"] / "kbs" / "national" / "index" / "audit.jsonl"
    audit = [json.loads(x) for x in log.read_text(encoding="utf-8").splitlines()]
    assert [(e["action"], e["file"], e["actor"], e["via"]) for e in audit][-1] == (
        "remove",
        REPORTS[0],
        "admin (session)",
        "chat",
    ), audit
