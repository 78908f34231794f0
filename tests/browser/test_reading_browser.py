"""Reading a finished reply in Chromium (issue 10): opening a long trace keeps your place (D5), "Jump to answer"
and "Fold reasoning" frame an opened long trace (D23), and one click copies the answer or the reasoning.

The module runs its own app with the demo at full speed (no pauses): these tests read finished replies, so the
stream need not be watched. Synchronisation is Playwright's auto-waiting and `wait_for_function` on conditions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.harness import AppProcess
from tests.browser.test_browser import (
    LONG_ANSWER,
    LONG_PROMPT,
    LONG_REASONING_START,
    conversation_id,
    open_app,
    rerun_settled,
    saved_section,
    send,
    wait_turn_finished,
)
from viewer.store import Store

# The visible band of the page: below Streamlit's header bar, above the pinned chat box.
VISIBLE_BAND = """() => {
  const header = document.querySelector('[data-testid=stHeader]');
  const bottom = document.querySelector('[data-testid=stBottom]');
  return [header ? header.getBoundingClientRect().bottom : 0,
          bottom ? bottom.getBoundingClientRect().top : window.innerHeight];
}"""

# Resolves once `el`'s top has not moved for 600 ms (Streamlit's stick-to-bottom scroll takes well under that).
SETTLED_TOP = """(el) => new Promise((resolve) => {
  let last = el.getBoundingClientRect().top, since = performance.now();
  const check = () => {
    const top = el.getBoundingClientRect().top;
    if (Math.abs(top - last) > 0.5) { last = top; since = performance.now(); }
    if (performance.now() - since >= 600) resolve(top); else requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
})"""


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppProcess]:
    folder = tmp_path_factory.mktemp("app")
    proc = AppProcess(folder / "conversations.db", speed="0", log=folder / "app.log").start()
    try:
        yield proc
    finally:
        proc.stop()


def _choose_long_model(page: Page) -> None:
    """`choose_model(page, "demo-long")`, waiting on what the choice shows rather than on a count of runs (the
    first tab of a just-started app was seen to miss that count once in a while)."""
    box = page.get_by_role("combobox", name="Model", exact=True)
    box.click()
    box.fill("demo-long")
    page.get_by_role("option", name="demo-long", exact=True).click()
    expect(page.get_by_test_id("stSidebar").get_by_text(re.compile(r"^Next message: demo-long"))).to_be_visible()
    expect(page.locator("[data-test-script-state=running]")).to_have_count(0)


def _long_reply(page: Page, app: AppProcess) -> tuple[Locator, str]:
    """A finished `demo-long` reply, folded, on a page that fits one screen; and its conversation's id."""
    open_app(page, app)
    _choose_long_model(page)
    send(page, LONG_PROMPT)
    reply = wait_turn_finished(page)
    expect(saved_section(reply)).not_to_have_attribute("open", "")
    return reply, conversation_id(page)


def _header(section: Locator) -> Locator:
    return section.locator("summary").first


def _settled_top(element: Locator) -> float:
    return float(element.evaluate(SETTLED_TOP))


def _assert_in_view(page: Page, element: Locator) -> None:
    top, bottom = page.evaluate(VISIBLE_BAND)
    box = element.evaluate("el => { const r = el.getBoundingClientRect(); return [r.top, r.bottom]; }")
    assert top - 1 <= box[0] and box[0] < bottom, (box, top, bottom)


def _stored_turn(app: AppProcess, conv_id: str):  # type: ignore[no-untyped-def]
    with Store(app.db) as store:
        conv = store.get_conversation(conv_id)
    assert conv is not None and conv.messages[-1].turn is not None
    return conv.messages[-1].turn


def test_opening_a_long_trace_keeps_the_header_in_place(page: Page, app: AppProcess, shot: Callable) -> None:
    reply, _ = _long_reply(page, app)
    section = saved_section(reply)
    header = _header(section)
    before = _settled_top(header)
    _assert_in_view(page, header)

    rerun_settled(page, header.click)  # opens onto the outline: ~70 step titles
    expect(section.locator("[class*='st-key-step-']").first).to_be_visible()
    assert abs(_settled_top(header) - before) <= 2, "the page moved when the section opened"
    _assert_in_view(page, header)

    rerun_settled(page, section.get_by_role("radio", name="Full text").click)  # the ~65,000 characters
    expect(section.get_by_text(LONG_REASONING_START)).to_be_visible()
    assert abs(_settled_top(header) - before) <= 2, "the page moved when the full text was drawn"
    _assert_in_view(page, header)
    shot("opened-in-place")


def test_opening_the_last_reply_at_the_end_of_a_long_chat_keeps_its_header_in_place(
    page: Page, app: AppProcess, shot: Callable
) -> None:
    """The other case of D5: the reader is at the end of a chat longer than the screen (where Streamlit stuck)."""
    reply, _ = _long_reply(page, app)
    rerun_settled(page, _header(saved_section(reply)).click)  # the first reply open: the chat is now long
    send(page, LONG_PROMPT)
    expect(page.get_by_test_id("stChatMessage")).to_have_count(4)
    last = wait_turn_finished(page)
    main = page.get_by_test_id("stMain")
    main.evaluate("m => { m.scrollTop = m.scrollHeight; }")  # the reader reads the end
    header = _header(saved_section(last))
    before = _settled_top(header)
    _assert_in_view(page, header)
    rerun_settled(page, header.click)
    expect(saved_section(last).locator("[class*='st-key-step-']").first).to_be_visible()
    assert abs(_settled_top(header) - before) <= 2, "the page moved when the section opened"
    shot("opened-at-the-end")


def test_jump_to_answer_and_fold_frame_an_opened_long_trace(page: Page, app: AppProcess, shot: Callable) -> None:
    reply, _ = _long_reply(page, app)
    section = saved_section(reply)
    header = _header(section)
    rerun_settled(page, header.click)
    rerun_settled(page, section.get_by_role("radio", name="Full text").click)
    # At once, while the trace is still being drawn (which moves the answer down for a moment).
    section.get_by_role("button", name="Jump to answer ↓").click()
    answer = reply.locator("[class*='st-key-answer-']").get_by_text(LONG_ANSWER).first
    _settled_top(answer)
    _assert_in_view(page, answer)
    shot("jumped")

    fold = section.get_by_role("button", name="Fold reasoning ↑")
    fold.scroll_into_view_if_needed()  # at the very end of the trace, as a reader who got there would be
    rerun_settled(page, fold.click)
    expect(section).not_to_have_attribute("open", "")
    expect(section.get_by_text(LONG_REASONING_START)).to_have_count(0)
    _settled_top(header)
    _assert_in_view(page, header)
    shot("folded")


def test_one_click_copies_the_answer_and_the_reasoning(page: Page, app: AppProcess, shot: Callable) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])  # 127.0.0.1 is a secure context
    reply, conv_id = _long_reply(page, app)
    turn = _stored_turn(app, conv_id)
    assert turn.answer and turn.reasoning
    notes = reply.locator("[role=status]")  # one beside each icon (CSS, so an empty, hidden one counts)
    for i, (name, text) in enumerate((("Copy answer", turn.answer), ("Copy reasoning", turn.reasoning))):
        reply.get_by_role("button", name=name).click()
        expect(notes.nth(i)).to_have_text("Copied")
        assert page.evaluate("() => navigator.clipboard.readText()") == text, name
        shot(f"copied-{i}")
    expect(notes).to_have_text(["", ""], timeout=5_000)  # the feedback is brief
