"""A streaming reply outlives the page: switching conversations, reloading, a second tab never stop or hide it.

Same harness as test_browser.py (the demo app at 4× speed, Debian's Chromium). `demo-long` thinks for about a
minute at that speed, so each test ends it with Stop once it has checked what it came for.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Page, expect

from tests.browser.harness import AppProcess
from tests.browser.test_browser import (
    LONG_PROMPT,
    LONG_REASONING_START,
    STREAM_TIMEOUT,
    choose_model,
    conversation_id,
    label_of,
    last_reply,
    live_section,
    open_app,
    send,
)
from viewer.store import Store

THINKING = re.compile(r"^Thinking… \d+s( · \d+ steps?)?$")


def _status(app: AppProcess, conv_id: str) -> str:
    with Store(app.db) as store:
        conv = store.get_conversation(conv_id)
    assert conv is not None and conv.messages[-1].turn is not None
    return conv.messages[-1].turn.status


def _start_long(page: Page, app: AppProcess) -> str:
    open_app(page, app)
    choose_model(page, "demo-long")
    send(page, LONG_PROMPT)
    conv = conversation_id(page)
    expect(live_section(page).get_by_text(LONG_REASONING_START)).to_be_visible(timeout=STREAM_TIMEOUT)
    return conv


def _stop(page: Page) -> None:
    page.get_by_role("button", name="Stop", exact=True).click()
    expect(last_reply(page).get_by_text("Stopped. The partial reply is kept.")).to_be_visible(timeout=STREAM_TIMEOUT)


def test_switching_conversations_never_stops_a_reply(page: Page, app: AppProcess, shot: Callable) -> None:
    conv = _start_long(page, app)
    title = page.get_by_role("button", name=re.compile(r"For which whole numbers.*streaming…"))
    expect(title).to_be_visible()  # listed at once, marked as streaming (D13)
    page.get_by_role("button", name="New chat").click()
    expect(page).not_to_have_url(re.compile(r"[?&]c="))
    expect(live_section(page)).to_have_count(0)
    assert _status(app, conv) == "streaming"
    shot("elsewhere")

    title.click()  # back to it: the address bar follows the click (D9), the reply is still live
    expect(page).to_have_url(re.compile(rf"[?&]c={conv}"))
    live = live_section(page)
    expect(label_of(live)).to_have_text(THINKING, timeout=STREAM_TIMEOUT)
    expect(live.get_by_text(LONG_REASONING_START)).to_be_visible(timeout=STREAM_TIMEOUT)  # a loaded machine
    expect(page.get_by_text("Stopped. The partial reply is kept.")).to_have_count(0)
    assert _status(app, conv) == "streaming"
    shot("back")
    _stop(page)
    assert _status(app, conv) == "stopped"


def test_reloading_at_any_moment_reattaches_to_the_live_reply(page: Page, app: AppProcess, shot: Callable) -> None:
    open_app(page, app)
    choose_model(page, "demo-long")
    send(page, LONG_PROMPT)
    conv = conversation_id(page)  # as soon as the address bar has the conversation…
    page.reload()  # …reload (D8: this once showed an empty chat, or "interrupted")
    live = live_section(page)
    expect(live.get_by_text(LONG_REASONING_START)).to_be_visible(timeout=STREAM_TIMEOUT)
    expect(label_of(live)).to_have_text(THINKING, timeout=STREAM_TIMEOUT)
    expect(page.get_by_text(re.compile("interrupted"))).to_have_count(0)
    for _ in range(2):  # and again, mid-thought
        page.reload()
        expect(label_of(live_section(page))).to_have_text(THINKING, timeout=STREAM_TIMEOUT)
        expect(page.get_by_text(re.compile("interrupted"))).to_have_count(0)
    assert _status(app, conv) == "streaming"
    shot("reloaded")
    _stop(page)


def test_a_second_tab_shows_the_live_reply_refuses_a_send_and_closing_it_stops_nothing(
    page: Page, app: AppProcess, shot: Callable
) -> None:
    conv = _start_long(page, app)
    other = page.context.new_page()
    other.goto(f"{app.url.rstrip('/')}/?c={conv}")  # its first run watches the reply, so it never "settles"
    live = live_section(other)
    expect(live.get_by_text(LONG_REASONING_START)).to_be_visible(timeout=STREAM_TIMEOUT)
    expect(label_of(live)).to_have_text(THINKING, timeout=STREAM_TIMEOUT)
    box = other.get_by_placeholder("Ask anything")
    box.fill("Me too: which n up to 100?")
    box.press("Enter")  # tab B sends while tab A's reply streams: refused, B's text kept
    expect(other.get_by_role("alert").filter(has_text="already streaming")).to_be_visible()
    expect(box).to_have_value("Me too: which n up to 100?")
    other.close()  # a closed tab only stops watching
    expect(label_of(live_section(page))).to_have_text(THINKING)
    assert _status(app, conv) == "streaming"
    shot("first-tab")
    _stop(page)


TICKS_JS = """
window.__rvTicks = [];
new MutationObserver(() => {
  const el = document.querySelector("[class*='st-key-live-'] summary");
  const m = el && el.textContent.match(/Thinking… (\\d+)s/);
  if (!m) return;
  const n = Number(m[1]);
  const last = window.__rvTicks[window.__rvTicks.length - 1];
  if (!last || last[0] !== n) window.__rvTicks.push([n, performance.now()]);
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def test_the_thinking_clock_ticks_on_time(page: Page, app: AppProcess) -> None:
    """Each new second of "Thinking… Ns" shows up one second after the previous one (D12)."""
    page.add_init_script(TICKS_JS)
    _start_long(page, app)
    page.wait_for_function("() => window.__rvTicks.length >= 6", timeout=STREAM_TIMEOUT)
    ticks = page.evaluate("() => window.__rvTicks")
    _stop(page)
    counts = [n for n, _ in ticks]
    assert counts == list(range(counts[0], counts[0] + len(counts))), f"every second shown once, in order: {counts}"
    n0, t0 = ticks[1]  # from the first full second on (the first label appears whenever thinking starts)
    drift = [abs((t - t0) / 1000 - (n - n0)) for n, t in ticks[1:]]
    assert max(drift) <= 0.3, f"the label runs off the wall clock by up to {max(drift):.2f}s: {ticks}"


def test_text_typed_while_a_reply_streams_survives_its_end(page: Page, app: AppProcess, shot: Callable) -> None:
    """Issue 10, item 9: the next message can be typed while a reply streams (a send then is refused with the
    text kept: test_browser.py); text typed but not sent survives the reply's end, when the page reruns."""
    _start_long(page, app)
    box = page.get_by_placeholder("Ask anything")
    box.press("Enter")  # an empty box sends nothing
    box.fill("And for n up to 100?\n  Show the list.")
    _stop(page)  # the reply ends: the page reruns and draws it from the store
    expect(box).to_have_value("And for n up to 100?\n  Show the list.")
    expect(page.get_by_role("alert")).to_have_count(0)
    shot("typed-kept")
