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
from viewer.models import AssistantTurn, Conversation, Message
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


# `__rvOverlaps()`: for each ordered list in a chat message, how far its widest marker ("391.") reaches left of
# the column it must stay in (the avatar's right edge, and a thinking section's left border); positive = overlap,
# in px. `__rvProvisional`: what was shown under the "may be reasoning" note, with the overlaps then.
PROVISIONAL_JS = """
window.__rvOverlaps = () => [...document.querySelectorAll("[data-testid='stChatMessage'] ol")].map((ol) => {
  const li = ol.querySelector("li");
  const ctx = document.createElement("canvas").getContext("2d");
  ctx.font = getComputedStyle(li).font;
  const marker = `${ol.start + ol.children.length - 1}.`;
  const markerLeft = li.getBoundingClientRect().left - ctx.measureText(marker + " ").width;
  const avatar = ol.closest("[data-testid='stChatMessage']").querySelector("[data-testid^='stChatMessageAvatar']");
  const section = ol.closest("[data-testid='stExpanderDetails']");
  const limit = Math.max(avatar.getBoundingClientRect().right,
                         section ? section.getBoundingClientRect().left + 2 : -Infinity);
  return {marker, overlap: limit - markerLeft};
});
window.__rvProvisional = [];
new MutationObserver(() => {
  const box = document.querySelector("[class*='st-key-provisional-']");
  if (box) window.__rvProvisional.push({text: box.innerText, overlaps: window.__rvOverlaps()});
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


def test_a_pre_filled_model_s_first_reply_may_be_reasoning_and_its_number_stays_in_the_column(
    page: Page, app: AppProcess, shot: Callable
) -> None:
    """Issue 10, item 6 (D22): until `</think>` arrives, the first reply of a model whose opener is pre-filled
    is shown as "may be reasoning"; the trace opens with "391. Check…", whose list number never hangs over the
    avatar or the section's border (live, or once folded and opened)."""
    page.add_init_script(PROVISIONAL_JS)
    open_app(page, app)
    choose_model(page, "demo-r1-prefilled")
    send(page, "Is 391 prime?")
    reply = wait_turn_finished(page)
    seen = page.evaluate("window.__rvProvisional")
    assert any("May be reasoning" in s["text"] and "Check small primes" in s["text"] for s in seen), seen[-3:]
    live = [o for s in seen for o in s["overlaps"]]
    assert live and all(o["overlap"] <= 0 for o in live), live
    expect(reply.locator("[class*='st-key-provisional-']")).to_have_count(0)  # decided: it was reasoning
    section = saved_section(reply)
    expect(label_of(section)).to_have_text(THOUGHT_LABEL)
    section.locator("summary").click()
    expect(section.get_by_text("Check small primes")).to_be_visible()
    overlaps = page.evaluate("window.__rvOverlaps()")
    assert overlaps and all(o["overlap"] <= 0 for o in overlaps), overlaps
    shot("prefilled-opened")


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


def test_a_search_hit_opens_the_reasoning_with_the_match_marked(page: Page, app: AppProcess, shot: Callable) -> None:
    """Issue 10, item 8 (D18): the hit opens its conversation with the thinking section open and the match
    highlighted (Streamlit's background directive renders as a coloured span)."""
    open_app(page, app)
    expect(page.get_by_role("combobox", name="Model", exact=True)).to_have_value("demo-r1")  # the default
    send(page, "What is 17 × 23?")
    wait_turn_finished(page)
    conv = conversation_id(page)
    rerun_settled(page, page.get_by_role("button", name="New chat").click)
    sidebar = page.get_by_test_id("stSidebar")
    search = sidebar.get_by_role("textbox", name="Search")
    rerun_settled(page, lambda: (search.fill("double-check another way"), search.press("Enter")))
    rerun_settled(page, sidebar.get_by_role("button", name=re.compile("reasoning: .*double-check")).first.click)
    assert conversation_id(page) == conv
    mark = saved_section(last_reply(page)).locator("span", has_text=re.compile("^double-check another way$"))
    expect(mark).to_have_count(1)
    background = mark.evaluate("el => getComputedStyle(el).backgroundColor")
    assert background not in ("rgba(0, 0, 0, 0)", "transparent"), background
    shot("search-hit")


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


def test_a_search_hit_far_up_a_long_conversation_is_scrolled_into_view(page: Page, app: AppProcess) -> None:
    """Opening a conversation shows its end; opening it from a search hit shows the hit instead, even when
    the conversation is already open (D18: "opens the conversation at the hit")."""
    paragraph = "A long answer paragraph that fills the screen. " * 12
    messages: list[Message] = []
    for i in range(12):
        messages.append(Message(role="user", content=f"Question {i + 1}"))
        answer = f"{paragraph}\n\nAnswer {i + 1}: the {'platypus' if i == 5 else 'otter'} case.\n\n{paragraph}"
        messages.append(Message(role="assistant", turn=AssistantTurn(answer=answer, status="done")))
    with Store(app.db) as store:
        conv = store.import_conversation(Conversation(title="Twelve questions", model="demo-r1", messages=messages))
    open_app(page, app, f"?c={conv.id}")
    main = page.get_by_test_id("stMain")
    page.wait_for_function(MAIN_AT_END, arg=300)  # opened at its end
    sidebar = page.get_by_test_id("stSidebar")
    search = sidebar.get_by_role("textbox", name="Search")
    rerun_settled(page, lambda: (search.fill("platypus"), search.press("Enter")))
    rerun_settled(page, sidebar.get_by_role("button", name=re.compile("answer: .*platypus")).first.click)
    mark = main.locator("span", has_text=re.compile("^platypus$"))
    expect(mark).to_have_count(1)
    expect(mark).to_be_in_viewport()
