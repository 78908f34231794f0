"""The compare page in Chromium: `/?compare=demo-r1,demo-v3` streams both side by side, then a metrics table.

Same harness as test_browser.py (the demo app at 4× speed). The page that watches the live replies never
"settles" on its first run, so this test syncs on what is drawn (Playwright's auto-waiting `expect`), not on
`open_app`'s run counter, once the prompt is sent.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.browser.harness import AppProcess
from tests.browser.test_browser import SCENE, SCENE_HEADING, STREAM_TIMEOUT
from viewer.store import Store


def test_compare_deep_link_streams_both_columns_then_the_table(page: Page, app: AppProcess, shot: Callable) -> None:
    page.goto(app.url.rstrip("/") + "/?compare=demo-r1,demo-v3")
    box = page.get_by_placeholder("Ask every target")
    expect(box).to_be_visible(timeout=60_000)
    page.wait_for_function("() => window.__rvRuns >= 1", timeout=60_000)  # the chooser settles: nothing is live
    targets = page.get_by_role("combobox", name=re.compile(r"^Target \d$"))
    expect(targets).to_have_count(2)
    expect(targets.nth(0)).to_have_value("demo-r1")
    expect(targets.nth(1)).to_have_value("demo-v3")
    shot("chooser")
    box.fill(SCENE)
    box.press("Enter")

    columns = page.get_by_test_id("stMainBlockContainer").get_by_test_id("stColumn")
    expect(columns).to_have_count(2, timeout=STREAM_TIMEOUT)
    r1, v3 = columns.nth(0), columns.nth(1)
    expect(r1.get_by_text("demo-r1", exact=True)).to_be_visible()
    # demo-v3 answers at once while demo-r1 is still streaming (it thinks for ~5 s at 4×): side by side, live.
    expect(v3.get_by_role("heading", name=SCENE_HEADING)).to_be_visible(timeout=STREAM_TIMEOUT)
    expect(r1.locator("[class*='st-key-live-'] details")).to_have_count(1)
    shot("streaming")

    table = page.get_by_test_id("stTable")
    expect(table).to_be_visible(timeout=STREAM_TIMEOUT)
    expect(r1.get_by_role("heading", name=SCENE_HEADING)).to_be_visible()
    expect(table.get_by_text("demo-r1", exact=True)).to_be_visible()
    expect(table.get_by_text("demo-v3", exact=True)).to_be_visible()
    # One thinking section, in demo-r1's column: demo-v3 does not reason.
    thought = page.locator("[class*='st-key-think-'] details > summary").filter(has_text=re.compile("^Thought for"))
    expect(r1.locator("[class*='st-key-think-'] details")).to_have_count(1)
    expect(v3.locator("[class*='st-key-think-'] details")).to_have_count(0)
    expect(thought).to_have_count(1)
    expect(page.get_by_role("button", name=re.compile("comparison"))).to_have_count(1)
    shot("finished")

    conv = re.search(r"[?&]c=(\w+)", page.url)
    assert conv is not None
    with Store(app.db) as store:
        group = store.compare_group_of(conv.group(1))
        assert group is not None
        models = [d["settings"]["model"] for _, d in store.compare_members(group)]
    assert models == ["demo-r1", "demo-v3"]
