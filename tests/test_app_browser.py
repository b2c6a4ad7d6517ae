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
from typing import Any
from urllib.parse import urlparse

import pytest

from qa.serve.process import free_port, stop_process, wait_until_healthy

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
DOCUMENTS = REPO / "documents"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    # no name resolves but this machine's: nothing a page asks for can leave it (IP literals are stopped by
    # the route every context installs, see `new_context`)
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
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

    def __init__(self, documents: Path, index: Path, log: Path, env: dict[str, str] | None = None) -> None:
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
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
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


def off_machine(url: str) -> bool:
    """True for a URL the browser would fetch from another machine."""
    parts = urlparse(url)
    return parts.scheme in ("http", "https", "ws", "wss", "ftp") and (parts.hostname or "") not in LOOPBACK


def new_context(browser: Browser, external: list[str] | None = None, **kwargs: Any) -> Any:
    """A browser context whose requests to other machines are recorded in `external` and never sent."""
    ctx = browser.new_context(**kwargs)
    seen = external if external is not None else []

    def route(r: Any) -> None:
        if off_machine(r.request.url):
            seen.append(r.request.url)
            r.abort()
        else:
            r.continue_()

    ctx.route("**/*", route)
    return ctx


def open_page(browser: Browser, url: str, width: int = 1280, external: list[str] | None = None) -> Page:
    """A fresh browser context (its own session) with the chat loaded."""
    height = 900 if width > 600 else 844
    ctx = new_context(
        browser,
        external,
        viewport={"width": width, "height": height},
        device_scale_factor=1 if width > 600 else 2,
    )
    page = ctx.new_page()
    csp: list[str] = []
    page.on("console", lambda m: csp.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(url, wait_until="load")
    page.wait_for_selector("#qa-question textarea", timeout=60_000)
    # The summary line is filled by the page-load event: once it is there, the page is ready.
    expect(page.locator("#qa-summary")).to_contain_text("个文档", timeout=60_000)
    assert csp == [], f"the page broke its own Content-Security-Policy: {csp}"
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
    tag = reply.locator(".qa-unsure-tag")  # type: ignore[attr-defined]
    if tag.count():  # a line marked as the nearest material: the mark is ours, the sentence the report's
        answer_line = answer_line.removeprefix(tag.inner_text())
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


# ---- issue 16: attacks through the browser ------------------------------------------------------------

OUTSIDE = "198.51.100.7"  # TEST-NET-2: documentation addresses; every request to it is stopped by the route


def test_markdown_image_in_the_question_loads_nothing(
    app: AppProcess, browser: Browser, external_requests: list[str]
) -> None:
    """Attack 8: `x\\n\\n![t](http://198.51.100.7/q.png)` as a question is shown as text in the user's bubble;
    the page asks for nothing from another machine."""
    page = open_page(browser, app.url, external=external_requests)
    question = f"x\n\n![t](http://{OUTSIDE}/q.png)\n\n<img src=http://{OUTSIDE}/r.png>"
    page.fill("#qa-question textarea", question)
    before = page.locator("#qa-chat .qa-reply").count()
    page.press("#qa-question textarea", "Enter")
    page.wait_for_function(
        "n => document.querySelectorAll('#qa-chat .qa-reply').length > n",
        arg=before,
        timeout=ANSWER_TIMEOUT_MS,
    )
    page.wait_for_timeout(500)
    bubble = page.locator("#qa-chat .qa-user").last
    assert f"![t](http://{OUTSIDE}/q.png)" in bubble.inner_text()
    assert page.locator("#qa-chat img").count() == 0
    assert external_requests == [], external_requests
    page.context.close()


EVIL_PAGE = """<!doctype html><html><head><meta charset=utf-8><title>cute cats</title></head><body><script>
const fd = new FormData();
fd.append("file", new Blob(["郑州GDP说明\\n\\n2023年郑州市地区生产总值总量是9.99万亿元。\\n"], {type: "text/plain"}),
          "gdp-note.txt");
fetch("TARGET/api/documents", {method: "POST", body: fd, mode: "no-cors"})
  .then(() => { document.title = "sent"; }, () => { document.title = "failed"; });
</script></body></html>"""


def test_cross_origin_upload_from_another_site_is_refused(
    app: AppProcess, workspace: tuple[Path, Path, Path], browser: Browser
) -> None:
    """Attack 4: a page on another origin (127.0.0.1, another port) uploads with a multipart
    fetch(..., {mode: "no-cors"}); the server refuses it (Origin), so the GDP answer is unchanged."""
    import http.server
    import threading

    docs, index, _ = workspace
    before = sorted(p.name for p in docs.iterdir())
    page_html = EVIL_PAGE.replace("TARGET", app.url.rstrip("/")).encode()

    class Evil(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.end_headers()
            self.wfile.write(page_html)

        def log_message(self, *args: Any) -> None:
            pass

    evil = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        ctx = new_context(browser)
        page = ctx.new_page()
        page.goto(f"http://127.0.0.1:{evil.server_address[1]}/", wait_until="load")
        page.wait_for_function("document.title !== 'cute cats'", timeout=30_000)
        assert page.title() == "sent"  # a no-cors request goes out; its answer is opaque to the page
        ctx.close()
    finally:
        evil.shutdown()
    time.sleep(1)
    assert sorted(p.name for p in docs.iterdir()) == before
    assert not [e for e in _audit(index) if e["file"] == "gdp-note.txt"]
    page = open_page(browser, app.url)
    _, reply = ask(page, "2023年郑州GDP是多少？")
    assert "9.99" not in reply.inner_text()  # type: ignore[attr-defined]
    page.context.close()


def _audit(index: Path) -> list[dict[str, Any]]:
    import json

    path = index / "audit.jsonl"
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


ADMIN_TOKEN = "browser-test-token-0123456789"


def test_upload_controls_only_for_a_signed_in_admin(
    app: AppProcess, tmp_path: Path, browser: Browser, workspace: tuple[Path, Path, Path]
) -> None:
    """With an admin token configured the chat hides the upload panel until the admin signs in (a form post
    that sets an HttpOnly cookie); then an upload works and the audit log says who made it."""
    docs, index, _ = workspace
    copy_docs, copy_index = tmp_path / "documents", tmp_path / "index"
    shutil.copytree(docs, copy_docs)
    shutil.copytree(index, copy_index, symlinks=True)
    admin = AppProcess(
        copy_docs,
        copy_index,
        tmp_path / "admin.log",
        env={"QA_ADMIN_TOKEN": ADMIN_TOKEN, "GRADIO_TEMP_DIR": str(tmp_path / "chat-uploads")},
    )
    try:
        admin.wait_healthy()
        page = open_page(browser, admin.url)
        page.locator("#qa-docs-panel button.label-wrap").first.click()
        expect(page.locator("#qa-admin")).to_contain_text("管理员登录")
        assert not page.locator("#qa-upload").is_visible()
        # the chat's upload folder refuses a visitor who has not signed in
        anonymous = page.request.post(
            admin.url + "gradio_api/upload",
            multipart={"files": {"name": "a.txt", "mimeType": "text/plain", "buffer": b"x"}},
        )
        assert anonymous.status == 401
        page.goto(admin.url + "admin/login")
        page.fill("input[name=token]", "wrong-token-wrong-token")
        page.click("button[type=submit] >> nth=0")
        expect(page.locator("body")).to_contain_text("令牌不正确")
        page.fill("input[name=token]", ADMIN_TOKEN)
        page.click("button[type=submit] >> nth=0")
        page.wait_for_url(admin.url)
        page.wait_for_selector("#qa-question textarea", timeout=60_000)
        expect(page.locator("#qa-summary")).to_contain_text("个文档", timeout=60_000)
        doc = tmp_path / "admin-note.txt"
        doc.write_text("管理员上传测试\n\n紫藤湖观测站的管理员编号是AD5120。\n", encoding="utf-8")
        status = upload(page, doc)
        assert "✓" in status, status
        (entry,) = [e for e in _audit(copy_index) if e["file"] == "admin-note.txt"]
        assert entry["actor"] == "admin (session)" and entry["via"] == "chat", entry
        # the temporary copy is removed once indexed; what is left is the empty file gr.File's preprocessing
        # creates for every file (a Gradio leak), which the sweep removes after a minute
        leftovers = [p for p in (tmp_path / "chat-uploads").rglob("*") if p.is_file()]
        assert all(p.stat().st_size == 0 for p in leftovers), leftovers
        # the admin corrects what was read off the new file's text: the list shows it, marked as from the catalog
        page.click("#qa-fix-doc input")
        page.get_by_role("option", name=re.compile(re.escape("admin-note.txt"))).click()
        page.keyboard.press("Escape")
        page.fill("#qa-fix-title textarea", "紫藤湖观测站管理员说明（更正）")
        page.fill("#qa-fix-year textarea", "2019")
        page.fill("#qa-fix-back textarea", "2018")
        page.click("#qa-fix-btn")
        expect(page.locator("#qa-fix-status")).to_contain_text("✓ 已更正 admin-note.txt", timeout=120_000)
        row = page.locator("#qa-docs tr", has_text="admin-note.txt")
        expect(row).to_contain_text("紫藤湖观测站管理员说明（更正）")
        expect(row).to_contain_text("2019")
        expect(row).to_contain_text("目录")
        assert any(e["action"] == "correct" and e["file"] == "admin-note.txt" for e in _audit(copy_index))
        page.context.close()
    finally:
        admin.stop()


# ---- property: nothing we render makes the browser fetch from another machine -------------------------

FRAGMENTS = [
    f"![a](http://{OUTSIDE}/a.png)",
    f"![](//{OUTSIDE}/b.png)",
    f"<img src=http://{OUTSIDE}/c.png>",
    f'<img src="x" onerror="fetch(\'http://{OUTSIDE}/d\')">',
    f"[link](http://{OUTSIDE}/e)",
    f"<http://{OUTSIDE}/f.png>",
    f"[r]: http://{OUTSIDE}/g.png",
    "![r]",
    f"<style>@import 'http://{OUTSIDE}/h.css';</style>",
    f"<svg><image href='http://{OUTSIDE}/i.png'/></svg>",
    f"<video poster=http://{OUTSIDE}/j.png></video>",
    f"<link rel=stylesheet href=http://{OUTSIDE}/k.css>",
    f'<div style="background:url(http://{OUTSIDE}/l.png)">x</div>',
    f"<iframe src=http://{OUTSIDE}/m></iframe>",
    f"<object data=http://{OUTSIDE}/n></object>",
    f"$$\\href{{http://{OUTSIDE}/o}}{{x}}$$",
    f"&#33;[t](http://{OUTSIDE}/p.png)",
    f"|a|b|\n|-|-|\n|![x](http://{OUTSIDE}/q.png)|c|",
    f"```\n![code](http://{OUTSIDE}/r.png)\n```",
    f"    ![indented](http://{OUTSIDE}/s.png)",
    f"<details open><summary>s</summary><img src=http://{OUTSIDE}/t.png></details>",
    f"http://{OUTSIDE}/u.png",
    # after a blank line Markdown starts again: the attack of item 8 and its relatives
    f"x\n\n![t](http://{OUTSIDE}/q.png)",
    f"\n\n<img src=http://{OUTSIDE}/v.png>",
    f"\n\n[r]: http://{OUTSIDE}/w.png\n\n![r]",
    "\n\n",
    "\n",
    "[1]",
    "郑州市地区生产总值",
    "**粗体**",
    "`code`",
    "<",
    ">",
    "&",
    '"',
    "'",
    " ",
]


def _texts() -> Any:
    from hypothesis import strategies as st

    return st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=8)), min_size=1, max_size=8).map(
        "".join
    )


class _Context:
    def __init__(self, text: str) -> None:
        self.text = text


def _rendered(
    question: str, answer_text: str, passage: str, title: str, doc: str, note: str
) -> list[dict[str, str]]:
    """A user bubble and a reply with two cards, made by the chat's own renderers from the given texts."""
    from qa.search.retriever import SourceContext
    from qa.serve.chat import render_answer, user_html
    from qa.types import Answer, Hit, Passage, Query, SourceSpan

    passages = [
        Passage(
            f"p{i}",
            doc or "x.txt",
            title,
            2023,
            [note, title],
            passage,
            passage,
            SourceSpan(1, 2, 0, len(passage)),
        )
        for i in range(2)
    ]
    hits = [
        Hit(p, 0.5, i + 1, highlight=passage[: max(1, len(passage) // 2)]) for i, p in enumerate(passages)
    ]
    query = Query(question, question, notes=[note], filters={"doc": [doc]})

    class FakeRetriever:
        def context(self, pid: str) -> SourceContext:
            return SourceContext(doc, title, 1, 3, f"{note}\n{passage}\n{title}", 2, 2)

    answer = Answer(question, query, answer_text, hits, abstained=False)
    return [
        {"role": "user", "content": user_html(question)},
        {"role": "assistant", "content": render_answer(FakeRetriever(), answer)},  # type: ignore[arg-type]
    ]


@pytest.fixture(scope="module")
def render_page() -> Iterator[str]:
    """A page with the chat's own Chatbot component, showing whatever messages it is sent (in-process)."""
    import json

    import gradio as gr

    from qa.serve.chat import chatbot

    with gr.Blocks() as demo:
        box = gr.Textbox(elem_id="payload", max_length=None)
        go = gr.Button("show", elem_id="show")
        chat = chatbot()
        go.click(lambda p: json.loads(p), box, chat)
    port = free_port()
    demo.launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, ssr_mode=False
    )
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


def test_property_no_rendered_text_fetches_from_another_machine(render_page: str, browser: Browser) -> None:
    """Hypothesis writes questions, answer lines, passages, titles, file names and notes out of Markdown and
    HTML that would load something (images, styles, frames, autolinks, reference links, math); whatever the
    mix, the chat shows it without the browser asking another machine for anything, and no element points
    off the machine."""
    import json

    from hypothesis import HealthCheck, given, settings

    external: list[str] = []
    ctx = new_context(browser, external)
    page = ctx.new_page()
    page.goto(render_page, wait_until="load")
    page.wait_for_selector("#payload textarea", timeout=60_000)
    count = [0]

    @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(
        question=_texts(), answer_text=_texts(), passage=_texts(), title=_texts(), doc=_texts(), note=_texts()
    )
    def check(question: str, answer_text: str, passage: str, title: str, doc: str, note: str) -> None:
        count[0] += 1
        tag = f"例{count[0]}号"
        messages = _rendered(f"{tag}{question}", answer_text, passage, title, doc, note)
        page.fill("#payload textarea", json.dumps(messages))
        page.click("#show")
        page.wait_for_function(
            "tag => document.querySelector('#qa-chat') && document.querySelector('#qa-chat').innerText.includes(tag)",
            arg=tag,
            timeout=30_000,
        )
        page.wait_for_timeout(250)
        pointing = page.evaluate(
            """() => {
              const out = [];
              for (const el of document.querySelectorAll('#qa-chat *')) {
                for (const a of ['src', 'href', 'srcset', 'poster', 'data', 'action', 'formaction', 'background']) {
                  const v = el.getAttribute(a);
                  if (v && /^(https?:)?\\/\\//i.test(v.trim())) out.push(el.tagName + ' ' + a + '=' + v);
                }
                const st = el.getAttribute('style') || '';
                if (/url\\(/i.test(st)) out.push(el.tagName + ' style=' + st);
              }
              return out;
            }"""
        )
        assert pointing == [], pointing
        assert external == [], external

    check()
    ctx.close()
    print(f"\n[browser] rendering property: {count[0]} examples, no request left the machine")
