"""The web chat end to end: the real app.py on a loopback port, driven by Debian's headless Chromium.

Needs /usr/bin/chromium and a CJK font (`apt-get install chromium fonts-noto-cjk`); without the
browser the tests skip, unless QA_REQUIRE_BROWSER=1 (CI), where they fail. Screenshots land in
docs/screenshots/.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from qa.serve.process import free_port, stop_process, wait_until_healthy

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = REPO / "documents"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
SCREENSHOTS = REPO / "docs" / "screenshots"
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
GDP_REPORT = "2024-zhengzhou-government-work-report.txt"
PLAN = "2021-zhengzhou-14th-five-year-plan-outline.txt"
# The index is built by the first start; on a cold cache that includes loading the model.
START_TIMEOUT = 900.0
ANSWER_TIMEOUT_MS = 30_000

if not CHROMIUM.exists():
    if os.environ.get("QA_REQUIRE_BROWSER") == "1":
        pytest.fail(
            f"{CHROMIUM} is missing: run `apt-get install -y chromium fonts-noto-cjk`.", pytrace=False
        )
    pytest.skip(
        f"{CHROMIUM} is missing (apt-get install -y chromium fonts-noto-cjk); set QA_REQUIRE_BROWSER=1 to fail instead.",
        allow_module_level=True,
    )

from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402


class AppProcess:
    """`python app.py` in a subprocess, with its output in a log file."""

    def __init__(self, documents: Path, index: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = log
        self._log_fh = log.open("w", encoding="utf-8")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "app.py",
                "--port",
                str(self.port),
                "--documents",
                str(documents),
                "--index",
                str(index),
            ],
            cwd=REPO,
            stdout=self._log_fh,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> float:
        """Seconds from start until /health answers."""
        return wait_until_healthy(
            self.proc, self.url, timeout, started=self.started, name="app.py", log=self.log
        )

    def output(self) -> str:
        """What the app printed so far."""
        return self.log.read_text(encoding="utf-8", errors="replace")[-5000:]

    def stop(self) -> None:
        """Terminate this process (and only it)."""
        stop_process(self.proc)
        self._log_fh.close()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A copy of documents/ and an empty index folder, so tests never touch the repo's."""
    root = tmp_path_factory.mktemp("webapp")
    docs = root / "documents"
    docs.mkdir()
    for f in [*DOCUMENTS.glob("*.txt"), DOCUMENTS / "catalog.toml"]:
        shutil.copy2(f, docs / f.name)
    return docs, root / "index", root


@pytest.fixture(scope="module")
def app(workspace: tuple[Path, Path, Path]) -> Iterator[AppProcess]:
    """The real app, which builds the index from the copied documents on first start."""
    docs, index, root = workspace
    proc = AppProcess(docs, index, root / "app-first.log")
    try:
        took = proc.wait_healthy()
        print(f"\n[browser] first start (index build included): {took:.1f} s")
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def external_requests() -> list[str]:
    """URLs the page asked for that are not on this machine (filled by `open_page`)."""
    return []


def open_page(browser: Browser, url: str, width: int = 1280, external: list[str] | None = None) -> Page:
    """A fresh browser context (its own session) with the chat loaded."""
    height = 900 if width > 600 else 844
    ctx = browser.new_context(
        viewport={"width": width, "height": height}, device_scale_factor=1 if width > 600 else 2
    )
    page = ctx.new_page()
    if external is not None:
        page.on(
            "request",
            lambda r: (
                external.append(r.url)
                if urlparse(r.url).scheme in ("http", "https", "ws", "wss")
                and urlparse(r.url).hostname not in LOOPBACK
                else None
            ),
        )
    page.goto(url, wait_until="load")
    page.wait_for_selector("#qa-question textarea", timeout=60_000)
    # The summary line is filled by the page-load event: once it is there, the page is ready.
    expect(page.locator("#qa-summary")).to_contain_text("个文档", timeout=60_000)
    return page


def ask(page: Page, question: str) -> tuple[float, object]:
    """Type a question, press Enter; the seconds until its reply is on screen and the reply element."""
    before = page.locator("#qa-chat .qa-reply").count()
    page.fill("#qa-question textarea", question)
    t0 = time.perf_counter()
    page.press("#qa-question textarea", "Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('#qa-chat .qa-reply').length > n",
        arg=before,
        timeout=ANSWER_TIMEOUT_MS,
    )
    took = time.perf_counter() - t0
    return took, page.locator("#qa-chat .qa-reply").last


def card_docs(reply: object) -> list[str]:
    """The document file of each passage card in one reply, in rank order."""
    return list(reply.locator(".qa-card .qa-doc").all_inner_texts())  # type: ignore[attr-defined]


def upload(page: Page, path: Path) -> str:
    """Upload one file through the documents panel; the status message shown."""
    panel = page.locator("#qa-docs-panel")
    if not page.locator("#qa-upload").is_visible():
        panel.locator("button.label-wrap").first.click()
    page.set_input_files("#qa-upload input[type=file]", str(path))
    # The file chip appears once Gradio has received the file (it may break the name across lines).
    page.wait_for_function(
        "name => document.querySelector('#qa-upload').innerText.replace(/\\s+/g, '').includes(name)",
        arg=re.sub(r"\s+", "", path.name),
        timeout=30_000,
    )
    # The message itself, not the progress overlay Gradio lays over the old one while it works.
    status = page.locator("#qa-upload-status .qa-upload-status")
    before = status.inner_text() if status.count() else ""
    page.click("#qa-upload-btn")
    page.wait_for_function(
        "before => { const e = document.querySelector('#qa-upload-status .qa-upload-status');"
        " return e !== null && e.innerText !== before && /[✓✗·]/.test(e.innerText); }",
        arg=before,
        timeout=300_000,
    )
    return status.inner_text()


def test_start_with_existing_index_and_no_external_requests(
    app: AppProcess, workspace: tuple[Path, Path, Path], browser: Browser, external_requests: list[str]
) -> None:
    """A second start on the built index is ready quickly, and the page loads nothing from outside."""
    docs, index, root = workspace
    second = AppProcess(docs, index, root / "app-second.log")
    try:
        second.wait_healthy()
        page = open_page(browser, second.url, external=external_requests)
        ready = time.perf_counter() - second.started
        print(f"\n[browser] python app.py -> ready page, existing index: {ready:.1f} s")
        page.wait_for_timeout(1000)  # let late requests (fonts, analytics) show up
        assert external_requests == [], f"page requested non-loopback URLs: {external_requests}"
        assert "[index]" in second.output()
        page.context.close()
    finally:
        second.stop()


def test_question_gets_answer_citing_the_right_report(
    app: AppProcess, browser: Browser, external_requests: list[str]
) -> None:
    """2023 GDP is answered from the 2024 report (which looks back on 2023), with marked passages."""
    page = open_page(browser, app.url, external=external_requests)
    first_took, _ = ask(page, "2024年郑州计划新增城镇就业多少人？")
    took, reply = ask(page, "2023年郑州GDP是多少？")
    server = re.findall(r"\[chat\] answered in (\d+) ms", app.output())
    print(
        f"\n[browser] answer latency as seen in the browser (Enter -> reply shown): first question of the page "
        f"{first_took * 1000:.0f} ms, next {took * 1000:.0f} ms; server-side ask+render {server[-1] if server else '?'} ms"
    )
    docs = card_docs(reply)
    assert docs and docs[0] == GDP_REPORT, docs
    answer_line = reply.locator(".qa-answer").inner_text()  # type: ignore[attr-defined]
    assert "[1]" in answer_line and "亿元" in answer_line, answer_line
    assert reply.locator(".qa-notes").first.inner_text().startswith("问题理解")  # type: ignore[attr-defined]
    first = reply.locator(".qa-card").first  # type: ignore[attr-defined]
    expect(first.locator("mark")).to_have_count(1)
    expect(first.locator(".qa-meta")).to_contain_text("行")
    first.locator("details summary").click()
    expect(first.locator("details .qa-source")).to_be_visible()
    assert external_requests == [], f"page requested non-loopback URLs: {external_requests}"
    page.context.close()


def test_english_question_gets_the_chinese_sentence_with_its_citation(
    app: AppProcess, browser: Browser
) -> None:
    """An English question is answered with the report's own Chinese sentence and its citation, and the
    reply says which Chinese terms were searched."""
    page = open_page(browser, app.url)
    _, reply = ask(page, "What was Zhengzhou's GDP in 2023?")
    docs = card_docs(reply)
    assert docs and docs[0] == GDP_REPORT, docs
    answer_line = reply.locator(".qa-answer").inner_text()  # type: ignore[attr-defined]
    assert "[1]" in answer_line and "亿元" in answer_line, answer_line
    sentence = answer_line.split("[1]")[0].strip()
    assert re.search("[\u4e00-\u9fff]", sentence), answer_line  # the report's Chinese, not a translation
    first = reply.locator(".qa-card").first  # type: ignore[attr-defined]
    assert re.sub(r"\s+", "", sentence) in re.sub(r"\s+", "", first.locator(".qa-text").inner_text())
    expect(first.locator(".qa-meta")).to_contain_text("行")  # cited with its line range
    notes = " ".join(reply.locator(".qa-notes").all_inner_texts())  # type: ignore[attr-defined]
    assert "按中文检索" in notes and "生产总值" in notes and "2023年" in notes, notes
    page.context.close()


def test_follow_up_question_is_read_with_the_previous_one(app: AppProcess, browser: Browser) -> None:
    """ "那2024年呢？" after a GDP question asks about GDP, and the reply says how it was read."""
    page = open_page(browser, app.url)
    ask(page, "2023年郑州GDP是多少？")
    _, reply = ask(page, "那2020年呢？")
    notes = reply.locator(".qa-notes").first.inner_text()  # type: ignore[attr-defined]
    assert "GDP" in notes or "生产总值" in notes, notes
    # A second browser session has its own conversation: the same follow-up there has no history.
    other = open_page(browser, app.url)
    _, lone = ask(other, "那2020年呢？")
    lone_notes = " ".join(lone.locator(".qa-notes").all_inner_texts())  # type: ignore[attr-defined]
    assert "GDP" not in lone_notes and "生产总值" not in lone_notes, lone_notes
    assert other.locator("#qa-chat .qa-reply").count() == 1
    page.context.close()
    other.context.close()


@pytest.mark.parametrize(("width", "name"), [(1280, "chat-desktop.png"), (390, "chat-phone.png")])
def test_layout_and_screenshots(app: AppProcess, browser: Browser, width: int, name: str) -> None:
    """At desktop and phone width the page has no horizontal scroll; screenshots for the README."""
    page = open_page(browser, app.url, width=width)
    ask(page, "2023年郑州地区生产总值是多少？")
    _, reply = ask(page, "那2020年呢？")
    assert reply.locator(".qa-card").count() >= 1  # type: ignore[attr-defined]
    expect(reply.locator(".qa-notes").first).to_contain_text("追问")  # type: ignore[attr-defined]
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"page is {overflow}px wider than the screen"
    page.wait_for_timeout(300)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))
    page.context.close()


def test_document_filter_restricts_the_cited_documents(app: AppProcess, browser: Browser) -> None:
    """Choosing one document in the filter panel makes every card come from it."""
    page = open_page(browser, app.url)
    _, unfiltered = ask(page, "2023年郑州GDP是多少？")
    assert set(card_docs(unfiltered)) != {PLAN}
    page.locator("#qa-filters button.label-wrap").first.click()
    page.click("#qa-doc-filter input")
    page.get_by_role("option", name=re.compile(re.escape(PLAN))).click()
    page.keyboard.press("Escape")
    _, filtered = ask(page, "2023年郑州GDP是多少？")
    docs = card_docs(filtered)
    assert docs and set(docs) == {PLAN}, docs
    page.context.close()


def test_upload_then_ask_about_it(app: AppProcess, browser: Browser, tmp_path: Path) -> None:
    """A new document is indexed from the page and answers a question only it can answer."""
    doc = tmp_path / "郑州星河步行桥 note.txt"
    doc.write_text(
        "郑州星河步行桥建设情况\n\n"
        "郑州市在金水河上新建的星河步行桥全长3217米，是市区最长的步行桥。\n"
        "星河步行桥于2025年10月建成开放，桥面宽度为六米。\n",
        encoding="utf-8",
    )
    page = open_page(browser, app.url)
    status = upload(page, doc)
    assert "✓" in status, status
    expect(page.locator("#qa-docs")).to_contain_text("星河步行桥")
    _, reply = ask(page, "星河步行桥全长多少米？")
    docs = card_docs(reply)
    assert docs and "星河步行桥" in docs[0], docs
    assert "3217" in reply.locator(".qa-card").first.inner_text()  # type: ignore[attr-defined]
    # The same file again is a duplicate, reported by name.
    again = upload(page, doc)
    assert "✗" in again, again
    page.context.close()


def test_script_in_a_document_is_shown_as_text(app: AppProcess, browser: Browser, tmp_path: Path) -> None:
    """Markup from a document or a question is displayed, never executed."""
    doc = tmp_path / "xss-test.txt"
    doc.write_text(
        "脚本注入测试文档\n\n"
        "紫藤湖观测站的记录编号是QX7781，站内说明写着<script>window.__xss=1</script>这一行。\n"
        '紫藤湖观测站另有一张图片<img src=x onerror="window.__xss=2">和链接<a href="javascript:alert(1)">点我</a>。\n',
        encoding="utf-8",
    )
    page = open_page(browser, app.url)
    status = upload(page, doc)
    assert "✓" in status, status
    _, reply = ask(page, "紫藤湖观测站的记录编号是什么？")
    text = reply.inner_text()  # type: ignore[attr-defined]
    assert "<script>window.__xss=1</script>" in text, text
    assert "<img" in text
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert reply.locator("script, img, a[href^='javascript']").count() == 0  # type: ignore[attr-defined]
    _, echoed = ask(page, "<script>window.__xss=3</script>紫藤湖<b>观测站</b>")
    user_msg = page.locator("#qa-chat .qa-user").last.inner_text()
    assert "<script>window.__xss=3</script>" in user_msg and "<b>" in user_msg, user_msg
    assert page.evaluate("typeof window.__xss") == "undefined"
    page.context.close()
