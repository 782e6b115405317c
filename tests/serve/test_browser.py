"""The page of `symbiont serve` in a real headless Chromium (Debian's, driven by Playwright)."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_helpers import scripted_run, served

from symbiont._store import Store, StoreError

pytest.importorskip("playwright")
from playwright.sync_api import expect

CHROMIUM = os.environ.get("SYMBIONT_CHROMIUM", "/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}"),
]
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A page that records dialogs (an executed ``alert``) and page errors."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = context.new_page()
    pg.dialogs = []
    pg.errors = []
    pg.on("dialog", lambda d: (pg.dialogs.append(d.message), d.dismiss()))
    pg.on("pageerror", lambda e: pg.errors.append(str(e)))
    yield pg
    context.close()


def test_runs_list_and_run_page_render(page: Any, demo_store: Path) -> None:
    with served(demo_store) as url:
        page.goto(url + "/")
        page.wait_for_selector("body[data-ready=runs]")
        row = page.locator("#runs tbody tr").first
        assert row.locator("td").nth(0).inner_text() == "demo"
        assert row.locator("td").nth(1).inner_text().startswith("finished")
        assert row.locator("td").nth(2).inner_text() == "30"
        row.locator("a").click()
        page.wait_for_selector("body[data-ready=run]")
        assert page.locator("#attempt-count").inner_text() == "6"
        assert page.locator("#lineage circle.node").count() == 4
        legend = page.locator(".legend [data-kind]").all_inner_texts()
        assert legend == ["registered 3", "compile error 1", "other 2"]
        summary = page.locator("#summary").inner_text()
        assert "rounds\n3 / 3" in summary and "finished" in summary
        page.locator("#lineage circle.node[data-rev='2']").click()
        page.wait_for_selector("body[data-ready=revision]")
        assert page.locator("h1").inner_text() == "demo · revision 2"
        if os.environ.get("SYMBIONT_SCREENSHOTS"):
            page.goto(url + "/#/run/demo")
            page.wait_for_selector("body[data-ready=run]")
            page.screenshot(path=str(DOCS / "serve-run.png"), full_page=True)
        assert page.errors == []


def test_diff_view_shows_the_changed_lines(page: Any, demo_store: Path) -> None:
    with served(demo_store) as url:
        page.goto(url + "/#/run/demo/rev/2")
        page.wait_for_selector("body[data-ready=revision]")
        assert page.locator("#diff .del").all_inner_texts() == [
            "-    // </pre><script>window.__pwned='code'</script>",
            "-    10",
        ]
        assert page.locator("#diff .add").all_inner_texts() == ["+    // step", "+    20"]
        page.select_option("#against", "0")
        expect(page).to_have_url(re.compile("against=0"))
        page.wait_for_selector("body[data-ready=revision]")
        assert page.locator("#diff .del").all_inner_texts() == ["-fn value() -> u32 { 1 }"]
        assert "+    20" in page.locator("#diff .add").all_inner_texts()
        # The code view highlights Rust with spans of text.
        assert page.locator("#code .tok-kw").first.inner_text() == "fn"
        assert page.errors == []


def test_llm_text_renders_as_text(page: Any, demo_store: Path) -> None:
    with served(demo_store) as url:
        page.goto(url + "/#/run/demo/rev/1")
        page.wait_for_selector("body[data-ready=revision]")
        for d in page.locator("details.attempt").all():
            d.locator("summary").click()
        replies = page.locator("details.attempt .reply pre").all_inner_texts()
        assert replies[0].startswith(
            "<script>window.__pwned = 'script'</script></pre><pre><a href="
        )
        assert len(replies[1]) == 20_000  # the 5 MB line, cut
        assert page.locator("details.attempt .reply a.show-all").count() == 1
        assert "</pre><script>" in page.locator("#code").inner_text()
        # Nothing the replies carry became markup: no script, link or image from them.
        assert page.locator("main script, main img, main a[href^='javascript']").count() == 0
        page.locator("details.attempt .reply pre").first.click()
        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert page.dialogs == [] and page.errors == []
        if os.environ.get("SYMBIONT_SCREENSHOTS"):
            page.goto(url + "/#/run/demo/rev/2")
            page.reload()
            page.wait_for_selector("body[data-ready=revision]")
            page.screenshot(path=str(DOCS / "serve-revision.png"))


def test_a_running_run_updates_without_reload(page: Any, tmp_path: Path) -> None:
    store = tmp_path / "runs.db"
    gate = threading.Event()
    search = threading.Thread(target=scripted_run, args=(store,), kwargs={"gate": gate})
    search.start()
    try:
        # Wait for round 1 to be stored (the search then waits on the gate in round 2).
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                run = Store.open_readonly(store).run("demo")
            except StoreError:  # not created or not migrated yet
                run = None
            if run is not None and run.attempts == 4:
                break
            time.sleep(0.1)
        with served(store, interval=0.2) as url:
            page.goto(url + "/#/run/demo")
            page.wait_for_selector("body[data-ready=run]", timeout=60_000)
            page.evaluate("window.__sameDocument = true")
            assert page.locator("#attempt-count").inner_text() == "4"
            assert "running" in page.locator("#summary").inner_text()
            gate.set()
            # Polled by Playwright from outside the page: the CSP forbids eval in it.
            expect(page.locator("#attempt-count")).to_have_text("6", timeout=60_000)
            expect(page.locator("#summary")).to_contain_text("finished", timeout=60_000)
            assert page.evaluate("window.__sameDocument") is True  # no reload happened
            assert page.locator("#lineage circle.node").count() == 4
            assert page.errors == []
    finally:
        gate.set()
        search.join(120)
