"""Issue 10 in Chromium: a reopened chat sends to its own model, a typed prompt keeps its layout, the
haiku keeps its lines. Against `python -m viewer.cli --demo` (see conftest.py); synchronisation is
Playwright's auto-waiting `expect` only.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import COUNT_RUNS
from tests.browser.harness import AppProcess
from tests.browser.test_browser import (
    LONG_PROMPT,
    STREAM_TIMEOUT,
    THOUGHT_LABEL,
    chat_input,
    choose_model,
    conversation_id,
    label_of,
    last_reply,
    live_section,
    main_area,
    open_app,
    rerun_settled,
    saved_section,
    send,
    wait_turn_finished,
)
from viewer.store import Store

CODE_PROMPT = "Fix this:\n# compute\ndef f(x):\n    return x*2"
HAIKU_PROMPT = "Write a haiku about autumn rain."
HAIKU_LINES = ["Cold rain on the roof —", "the maple lets go its last"]


def _user_bubble(page: Page):
    return page.get_by_test_id("stChatMessage").filter(has=page.get_by_test_id("stChatMessageAvatarUser")).last


def test_typed_prompt_keeps_its_layout_and_the_haiku_its_lines(page: Page, app: AppProcess, shot: Callable) -> None:
    open_app(page, app)
    choose_model(page, "demo-v3")
    send(page, HAIKU_PROMPT)
    reply = wait_turn_finished(page)
    lines = [line.strip() for line in reply.get_by_test_id("stMarkdownContainer").first.inner_text().split("\n")]
    assert lines[:2] == HAIKU_LINES, lines
    shot("haiku")

    send(page, CODE_PROMPT)
    expect(page.get_by_test_id("stChatMessage")).to_have_count(4)
    wait_turn_finished(page)
    bubble = _user_bubble(page)
    expect(bubble.locator("h1, h2, pre")).to_have_count(0)
    shown = bubble.get_by_test_id("stMarkdownContainer").first.inner_text().replace("\u00a0", " ")
    assert shown.split("\n") == CODE_PROMPT.split("\n"), shown
    shot("prompt")


def test_reopened_conversation_sends_to_its_own_model(page: Page, app: AppProcess, shot: Callable) -> None:
    open_app(page, app)
    choose_model(page, "demo-r1-prefilled")
    send(page, "Is 391 prime?")
    wait_turn_finished(page)
    first = conversation_id(page)

    rerun_settled(page, page.get_by_role("button", name="New chat").click)
    choose_model(page, "demo-r1")
    send(page, "What is 17 × 23?")
    wait_turn_finished(page)
    assert conversation_id(page) != first

    sidebar = page.get_by_test_id("stSidebar")
    rerun_settled(page, sidebar.get_by_role("button", name="Is 391 prime?").click)
    model_box = page.get_by_role("combobox", name="Model", exact=True)
    expect(model_box).to_have_value("demo-r1-prefilled")
    expect(sidebar.get_by_text("Next message: demo-r1-prefilled")).to_be_visible()
    send(page, "And 323?")
    expect(page.get_by_test_id("stChatMessage")).to_have_count(4)
    wait_turn_finished(page)
    with Store(app.db) as store:
        conv = store.get_conversation(first)
    assert conv is not None
    turn = conv.messages[-1].turn
    assert turn is not None and turn.model == "demo-r1-prefilled"

    page.reload()  # and after a reload, from the link
    expect(chat_input(page)).to_be_visible()
    expect(model_box).to_have_value("demo-r1-prefilled")
    shot("reopened")


def test_empty_chat_offers_examples_that_produce_a_folded_thinking_section(
    page: Page, app: AppProcess, shot: Callable
) -> None:
    open_app(page, app)
    main = main_area(page)
    examples = main.locator("[class*='st-key-example-'] button")
    expect(examples.first).to_contain_text("Tell me one truly novel insight about humans.")
    assert examples.count() >= 3
    shot("examples")
    examples.first.click()
    reply = wait_turn_finished(page)
    expect(label_of(saved_section(reply))).to_have_text(THOUGHT_LABEL)
    expect(main.locator("[class*='st-key-example-']")).to_have_count(0)
    shot("answered")


def _luminance(rgb: str) -> float:
    r, g, b = (int(x) for x in re.findall(r"\d+", rgb)[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def test_follows_a_dark_system_theme_and_sets_the_user_bubble_apart(browser: Browser, app: AppProcess) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="dark")
    context.add_init_script(COUNT_RUNS)
    try:
        page = context.new_page()
        open_app(page, app)
        background = page.evaluate("() => getComputedStyle(document.querySelector('.stApp')).backgroundColor")
        assert _luminance(background) < 0.3, background
        # The app's stylesheet arrives with the first run; the sidebar then settles at its width.
        page.wait_for_function(
            "() => document.querySelector('[data-testid=stSidebar]')?.getBoundingClientRect().width >= 320",
            timeout=15_000,
        )
        send(page, "What is 17 × 23?")
        wait_turn_finished(page)
        user_bg = _user_bubble(page).evaluate("el => getComputedStyle(el).backgroundColor")
        reply_bg = last_reply(page).evaluate("el => getComputedStyle(el).backgroundColor")
        assert user_bg != reply_bg, (user_bg, reply_bg)
    finally:
        context.close()


# The page's scroll container and whether it is at its end (the chat box is pinned in `st.bottom`).
MAIN_AT_END = """(minGrowth) => {
  const m = document.querySelector('[data-testid=stMain]');
  return m.scrollHeight > m.clientHeight + minGrowth && m.scrollHeight - m.clientHeight - m.scrollTop < 2;
}"""


def test_the_page_follows_a_streaming_reply_until_the_reader_scrolls_up(page: Page, app: AppProcess) -> None:
    """Streamlit's own stick-to-bottom is off (it threw the view down whenever a section opened, D5); the page
    follows a live reply itself, and stops as soon as the reader scrolls away."""
    open_app(page, app)
    send(page, "What is 17 × 23?")
    wait_turn_finished(page)
    choose_model(page, "demo-long")
    send(page, LONG_PROMPT)
    expect(live_section(page).locator("[class*='st-key-step-']").nth(3)).to_be_attached(timeout=STREAM_TIMEOUT)
    page.wait_for_function(MAIN_AT_END, arg=300, timeout=STREAM_TIMEOUT)  # grown past a screen, still at its end
    try:
        main = page.get_by_test_id("stMain")
        main.hover()
        page.mouse.wheel(0, -400)
        page.wait_for_function("() => document.querySelector('[data-testid=stMain]').scrollTop > 0")
        page.wait_for_function(MAIN_AT_END.replace("< 2", ">= 2"), arg=0)  # the wheel moved the view up
        scrolled = main.evaluate("m => [m.scrollTop, m.scrollHeight]")
        # The reply goes on growing (new steps) while the view stays where the reader put it.
        page.wait_for_function(
            "h => document.querySelector('[data-testid=stMain]').scrollHeight > h + 150",
            arg=scrolled[1],
            timeout=STREAM_TIMEOUT,
        )
        assert abs(main.evaluate("m => m.scrollTop") - scrolled[0]) <= 2
    finally:
        page.get_by_role("button", name="Stop", exact=True).click()
    expect(last_reply(page).get_by_text("Stopped. The partial reply is kept.")).to_be_visible(timeout=STREAM_TIMEOUT)
