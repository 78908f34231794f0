"""Fixtures for the browser tests: one app process per module, one Chromium per session, a fresh tab per test.

The app is expensive to start (Streamlit plus the embedded demo server) and the
machine has two cores, so a module shares one process; tests do not interfere
because each opens its own tab (its own Streamlit session) and starts a new
conversation. A test that needs a fresh process (restart) restarts the shared one:
it keeps its database, which is exactly what that test checks.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, sync_playwright

from tests.browser.harness import AppProcess, launch_chromium
from viewer.store import Store

SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
VIEWPORT = {"width": 1280, "height": 900}
DEMO_SPEED = "4"  # fast, yet the scene still thinks for ~5 s so the live label visibly ticks

# Counts finished script runs in `window.__rvRuns`, from the `data-test-script-state` attribute Streamlit keeps
# on its root element. Tests wait on it after a widget change: typing a prompt while the rerun of that change
# is still running makes Streamlit merge both into one run, which is not what a person at human speed does.
COUNT_RUNS = """
window.__rvRuns = 0;
new MutationObserver((mutations) => {
  for (const m of mutations) {
    const state = m.target.getAttribute('data-test-script-state');
    if (state === 'notRunning' && m.oldValue !== 'notRunning') window.__rvRuns++;
  }
}).observe(document, {
  subtree: true, attributes: true, attributeOldValue: true, attributeFilter: ['data-test-script-state'],
});
"""


# Script state(s), runs counted, the URL and the model box: what a failed wait for a rerun needs.
FAILURE_STATE_JS = """() => ({
  states: [...document.querySelectorAll('[data-test-script-state]')].map(e => e.getAttribute('data-test-script-state')),
  runs: window.__rvRuns,
  url: location.href,
  model: document.querySelector('input[aria-label="Model"]')?.value,
  dialogs: document.querySelectorAll('[role=listbox]').length,
})"""


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    folder = tmp_path_factory.mktemp("app")
    proc = AppProcess(folder / "conversations.db", speed=DEMO_SPEED, log=folder / "app.log").start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(autouse=True)
def first_time_user(request: pytest.FixtureRequest) -> None:
    """Each test starts as a new user would: the module's app remembers the last used model and settings
    across tabs (issue 10, item 1), so what an earlier test chose is forgotten before the next one."""
    if "app" not in request.fixturenames:
        return
    app: AppProcess = request.getfixturevalue("app")
    with Store(app.db) as store:
        store.set_setting("ui_settings", None)
        store.set_setting("profile_markers", None)
    with sqlite3.connect(app.db) as db:  # nor which models were seen pre-filling their opener or answering plainly
        db.execute("DELETE FROM settings WHERE key LIKE 'prefills:%' OR key LIKE 'plain:%'")
    db.close()


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    b = launch_chromium(playwright_instance)
    try:
        yield b
    finally:
        b.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.when == "call" and report.failed:
        item.stash[FAILED] = True
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(30_000)
    context.add_init_script(COUNT_RUNS)
    pg = context.new_page()
    try:
        yield pg
    finally:
        if request.node.stash.get(FAILED, False):  # what the page showed when the test failed, to debug it
            SCREENSHOTS.mkdir(exist_ok=True)
            name = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name).strip("-")
            with contextlib.suppress(Exception):
                pg.screenshot(path=SCREENSHOTS / f"FAILED-{name}.png")
                state = pg.evaluate(FAILURE_STATE_JS)
                print(f"page state at failure: {state}")
        context.close()


@pytest.fixture
def shot(page: Page, request: pytest.FixtureRequest) -> Callable[[str], Path]:
    """`shot("after-stop")` saves tests/browser/screenshots/<test>-after-stop.png (git-ignored)."""
    SCREENSHOTS.mkdir(exist_ok=True)
    test = re.sub(r"[^A-Za-z0-9_-]+", "-", request.node.name).strip("-")

    def take(label: str) -> Path:
        path = SCREENSHOTS / f"{test}-{label}.png"
        page.screenshot(path=path)
        return path

    return take
