"""Load: a smaller run of scripts/loadtest.py against the real HTTP API on 127.0.0.1 (zero errors, bounded
server memory), and the web chat's queue serving several browser sessions at once without mixing their
conversations. The full 2,000-question run is done by hand; its figures are in docs/reliability.md."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from helpers import BuiltIndex, load_loadtest

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_load_16_clients(built_index: BuiltIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """16 clients x 200 gold questions with uploads in between: zero errors, memory bounded, stops by itself."""
    lt = load_loadtest()
    copy = built_index.copy(tmp_path)
    monkeypatch.setenv("QA_CACHE_DIR", built_index.settings.cache_dir)
    server = lt.Server(copy.documents, copy.index, tmp_path / "server.log")
    try:
        server.wait(timeout=600)
        import httpx

        questions = lt.gold_questions()
        httpx.post(server.url + "/api/ask", json={"question": questions[0]}, timeout=300)  # warm-up
        res = lt.run_load(
            server.url,
            questions,
            clients=16,
            total=200,
            uploads=3,
            max_seconds=600,
            server_pid=server.proc.pid,
        )
    finally:
        server.stop()
    print("\n" + res.summary())
    assert not res.errors, res.errors[:5]
    assert res.questions_done == 200 and res.uploads_done == 3 and not res.stopped_by_time
    assert res.latency_ms["p50"] > 0 and res.throughput_qps > 0
    # memory: the three uploads add index versions, caches fill; growth stays far below a leak's
    assert res.rss_summary["max"] - res.rss_summary["start"] < 500, res.rss_summary
    log = (tmp_path / "server.log").read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log, log[-3000:]


# ---- the web chat's queue with several users at once ----------------------------------------------------


def test_chat_sessions_do_not_mix(
    built_index: BuiltIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two browser sessions ask different follow-ups at the same moment; each reads its own history."""
    tb = pytest.importorskip("test_app_browser")  # skips without /usr/bin/chromium
    from playwright.sync_api import sync_playwright

    copy = built_index.copy(tmp_path)
    monkeypatch.setenv("QA_CACHE_DIR", built_index.settings.cache_dir)
    app = tb.AppProcess(copy.documents, copy.index, tmp_path / "app.log")
    conversations = [
        ("2023年郑州GDP是多少？", "那2020年呢？", ("GDP", "生产总值")),
        ("2024年郑州计划新增城镇就业多少人？", "那2021年呢？", ("就业",)),
    ]
    try:
        app.wait_healthy()
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=str(tb.CHROMIUM), args=tb.CHROMIUM_ARGS, headless=True
            )
            pages = []
            for _ in conversations:
                # a busy machine renders the Gradio page slowly: wait longer than test_app_browser does
                page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
                page.goto(app.url, wait_until="load", timeout=180_000)
                page.wait_for_selector("#qa-question textarea", timeout=180_000)
                pages.append(page)
            for page, (first, _, _) in zip(pages, conversations, strict=True):
                tb.ask(page, first)
            # all follow-ups go out before any reply is awaited: the queue holds them together
            for page, (_, follow, _) in zip(pages, conversations, strict=True):
                page.fill("#qa-question textarea", follow)
            t0 = time.perf_counter()
            for page in pages:
                page.press("#qa-question textarea", "Enter")
            for page in pages:
                page.wait_for_function(
                    "() => document.querySelectorAll('#qa-chat .qa-reply').length >= 2", timeout=120_000
                )
            took = time.perf_counter() - t0
            for page, (first, follow, topic) in zip(pages, conversations, strict=True):
                replies = page.locator("#qa-chat .qa-reply")
                assert replies.count() == 2
                notes = " ".join(replies.last.locator(".qa-notes").all_inner_texts())
                assert "追问理解为" in notes and any(t in notes for t in topic), (follow, notes)
                chat = page.locator("#qa-chat").inner_text()
                assert first in chat
                others = [c[0] for c in conversations if c[0] != first]
                assert not any(o in chat for o in others), "another user's question showed up here"
            print(f"\n{len(pages)} concurrent follow-ups answered in {took:.1f} s")
            browser.close()
    finally:
        app.stop()
