"""The compare page in Chromium: `/?compare=demo-r1,demo-v3` streams both side by side, then a metrics table.

Same harness as test_browser.py (the demo app at 4× speed). The page that watches the live replies never
"settles" on its first run, so this test syncs on what is drawn (Playwright's auto-waiting `expect`), not on
`open_app`'s run counter, once the prompt is sent.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.browser.harness import AppProcess
from tests.browser.test_browser import (
    LONG_ANSWER,
    LONG_PROMPT,
    LONG_REASONING_START,
    SCENE,
    SCENE_HEADING,
    STREAM_TIMEOUT,
)
from viewer.models import AssistantTurn
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


def test_stop_all_stops_both_streaming_columns_and_keeps_their_partial_text(
    page: Page, app: AppProcess, shot: Callable
) -> None:
    page.goto(app.url.rstrip("/") + "/?compare=demo-long,demo-long")  # a long trace: both still think when clicked
    box = page.get_by_placeholder("Ask every target")
    expect(box).to_be_visible(timeout=60_000)
    page.wait_for_function("() => window.__rvRuns >= 1", timeout=60_000)
    expect(page.get_by_role("combobox", name=re.compile(r"^Target \d$"))).to_have_count(2)
    box.fill(LONG_PROMPT)
    box.press("Enter")

    columns = page.get_by_test_id("stMainBlockContainer").get_by_test_id("stColumn")
    expect(columns).to_have_count(2, timeout=STREAM_TIMEOUT)
    for i in range(2):
        live = columns.nth(i).locator("[class*='st-key-live-'] details").first
        expect(live.get_by_text(LONG_REASONING_START)).to_be_visible(timeout=STREAM_TIMEOUT)
    shot("streaming")
    page.get_by_role("button", name="Stop all").click()

    expect(page.get_by_test_id("stTable")).to_be_visible(timeout=STREAM_TIMEOUT)  # drawn once nothing streams
    expect(page.get_by_role("button", name="Stop all")).to_have_count(0)
    for i in range(2):
        expect(columns.nth(i).get_by_text("Stopped. The partial reply is kept.")).to_be_visible()
    expect(page.get_by_text(LONG_ANSWER)).to_have_count(0)
    shot("stopped")

    conv = re.search(r"[?&]c=(\w+)", page.url)
    assert conv is not None
    with Store(app.db) as store:
        group = store.compare_group_of(conv.group(1))
        assert group is not None
        ids = [cid for cid, _ in store.compare_members(group)]

        def saved_turns() -> list[AssistantTurn | None]:
            convs = [store.get_conversation(cid) for cid in ids]
            return [c.messages[-1].turn if c is not None else None for c in convs]

        deadline = time.monotonic() + STREAM_TIMEOUT / 1000  # the page draws from memory; the save may follow
        while not all(t is not None and t.status != "streaming" for t in saved_turns()):
            assert time.monotonic() < deadline, "the stopped turns were not saved"
            page.wait_for_timeout(50)
        turns = [t for t in saved_turns() if t is not None]
    assert len(turns) == 2 and all(t.stopped and t.status == "stopped" for t in turns)
    assert all(t.reasoning.startswith(LONG_REASONING_START.split(",")[0]) and t.answer == "" for t in turns)
