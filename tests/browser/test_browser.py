"""The app in a real browser: live thinking, folding, persistence, Stop, dialects, XSS, errors.

Everything runs against `python -m viewer.cli --demo` in a child process (see
conftest.py), whose embedded replay server plays the recorded seed traces at 4×
speed over real HTTP. Synchronisation is Playwright's auto-waiting `expect`
only; each test saves screenshots into tests/browser/screenshots/ (git-ignored).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from playwright.sync_api import Dialog, Locator, Page, expect

from tests.browser.harness import AppProcess
from viewer.demo.seeds import load_traces
from viewer.store import Store

SCENE = "Tell me one truly novel insight about humans."
SCENE_REASONING = "is a high bar"  # in the scene's reasoning, not in its answer (checked below)
SCENE_HEADING = "Humans are the only species whose main collaborators are absent"
LONG_PROMPT = "For which whole numbers n from 1 to 800 is n² + 1 divisible by 13? Check them all."
LONG_REASONING_START = "Okay, so I need every n from 1 to 800"
LONG_ANSWER = "123 numbers"
MARKERS = ("<think>", "</think>")

STREAM_TIMEOUT = 45_000  # ms: the scene takes ~8 s at 4×; generous for a loaded 2-core machine
THOUGHT_LABEL = re.compile(
    r"^(Thought for (\d+ seconds?|\d+m( \d+s)?)|Stopped after (\d+ s|\d+m( \d+s)?) of thinking)( · \d+ steps)?$"
)


# -- helpers ---------------------------------------------------------------------------------------------


def _trace_parts(name: str) -> tuple[str, str]:
    """(reasoning, answer) of an inline-<think> seed, to check the phrases the tests rely on."""
    trace = next(t for t in load_traces() if t.name == name)
    reasoning, _, answer = trace.text().partition("</think>")
    return reasoning, answer


def open_app(page: Page, app: AppProcess, query: str = "") -> None:
    page.goto(app.url + query)
    expect(chat_input(page)).to_be_visible(timeout=60_000)
    page.wait_for_function("() => window.__rvRuns >= 1", timeout=60_000)  # the first run has finished


def rerun_settled(page: Page, action: Callable[[], None]) -> None:
    """Do `action` (a widget change) and wait until the script run it caused has finished."""
    before = page.evaluate("() => window.__rvRuns")
    action()
    page.wait_for_function("n => window.__rvRuns > n", arg=before)


def chat_input(page: Page) -> Locator:
    return page.get_by_placeholder("Ask anything")


def send(page: Page, text: str) -> None:
    box = chat_input(page)
    box.fill(text)  # waits until the text area is enabled (it is disabled while a script run is busy)
    box.press("Enter")


def settled(page: Page) -> None:
    """Until no script run is under way."""
    page.wait_for_function(SCRIPT_SETTLED_JS)


def next_message_uses(page: Page, model: str) -> None:
    """Until the sidebar, drawn by a run that has the new choice, says the next message goes to `model`, and
    that run has ended. (Waits on what the choice does rather than on counting runs: a choice equal to the
    current one causes no run at all.)"""
    caption = page.get_by_test_id("stSidebar").get_by_text(re.compile(rf"^Next message: {re.escape(model)} · "))
    expect(caption).to_be_visible()
    settled(page)


def choose_model(page: Page, model: str) -> None:
    box = page.get_by_role("combobox", name="Model", exact=True)
    box.click()
    box.fill(model)  # filter: the dropdown list is virtualised, an option scrolled out of it is not in the page
    page.get_by_role("option", name=model, exact=True).click()
    expect(box).to_have_value(model)
    if model == "Other…":
        expect(page.get_by_role("textbox", name="Model id", exact=True)).to_be_visible()
        settled(page)
    else:
        next_message_uses(page, model)


def type_model(page: Page, model_id: str) -> None:
    """A model id the server does not list (here: with a fault suffix), through "Other…"."""
    choose_model(page, "Other…")
    field = page.get_by_role("textbox", name="Model id", exact=True)
    field.fill(model_id)
    field.press("Enter")
    next_message_uses(page, model_id)


def main_area(page: Page) -> Locator:
    return page.get_by_test_id("stMainBlockContainer")


def last_reply(page: Page) -> Locator:
    return page.get_by_test_id("stChatMessage").filter(has=page.get_by_test_id("stChatMessageAvatarAssistant")).last


def live_section(page: Page) -> Locator:
    """The streaming turn's thinking section (key `live-<message id>`)."""
    return page.locator("[data-testid='stChatMessage'] [class*='st-key-live-'] details").first  # steps nest inside


def saved_section(scope: Page | Locator) -> Locator:
    """A finished turn's folded "Thought for N seconds" section (key `think-<message id>`)."""
    return scope.locator("[class*='st-key-think-'] details").first  # the outer one: steps are details too


def label_of(section: Locator) -> Locator:
    return section.locator("summary [data-testid='stMarkdownContainer']").first


def open_full_text(section: Locator, *, switch: bool = True) -> None:
    """Open a finished turn's thinking section, which opens onto the outline (if it has two steps or more:
    `switch`), and switch to the full text."""
    section.locator("summary").first.click()
    if switch:
        section.get_by_role("radio", name="Full text").click()


SCRIPT_SETTLED_JS = """() => {
  const el = document.querySelector('[data-test-script-state]');
  return el !== null && el.getAttribute('data-test-script-state') === 'notRunning';
}"""


def wait_turn_finished(page: Page, timeout: float = STREAM_TIMEOUT) -> Locator:
    """The turn is drawn from the store (only then does it get its Regenerate / Retry button), and the run
    that draws it has finished. A click made while that run still draws the sidebar could be lost with the
    element it landed on, and the rerun it should cause never came (seen about once in a dozen runs)."""
    reply = last_reply(page)
    expect(reply.get_by_role("button", name=re.compile(r"^(Regenerate|Retry)$"))).to_be_visible(timeout=timeout)
    page.wait_for_function(SCRIPT_SETTLED_JS, timeout=timeout)
    return reply


def wait_thinking_label_at_least(page: Page, seconds: int) -> None:
    """Until the live label reads "Thinking… Ns" with N ≥ `seconds` (a tick may skip a number under load)."""
    page.wait_for_function(
        """n => [...document.querySelectorAll("[class*='st-key-live-'] summary")].some(el => {
            const m = el.textContent.match(/Thinking… (\\d+)s/);
            return m !== null && Number(m[1]) >= n;
        })""",
        arg=seconds,
        timeout=20_000,
    )


def conversation_id(page: Page) -> str:
    page.wait_for_url(re.compile(r"[?&]c=\w+"))
    return parse_qs(urlparse(page.url).query)["c"][0]


def assert_no_markers(page: Page) -> None:
    text = page.inner_text("body")
    for marker in MARKERS:
        assert marker not in text, f"{marker!r} leaked into the page"


# -- 1. the scene ---------------------------------------------------------------------------------------------


def test_scene_thinks_live_then_folds_and_opens_on_click(page: Page, app: AppProcess, shot: Callable) -> None:
    reasoning, answer = _trace_parts("scene-novel-insight")
    assert SCENE_REASONING in reasoning and SCENE_REASONING not in answer
    assert SCENE_HEADING in answer and SCENE_HEADING not in reasoning

    open_app(page, app)
    send(page, SCENE)
    live = live_section(page)
    expect(label_of(live)).to_have_text(re.compile(r"^Thinking… \d+s( · \d+ steps?)?$"), timeout=STREAM_TIMEOUT)
    expect(live).to_have_attribute("open", "")  # open while it streams
    expect(label_of(live)).to_have_text(re.compile(r"^Thinking… [2-9]\d*s · \d+ steps$"))  # ticks, counts steps
    # The skim view: the steps are listed as they come, the first one's title from its first sentence.
    expect(live.locator("[class*='st-key-step-'] summary").first).to_contain_text(
        "1. Okay, so the user wants one truly novel insight about humans."
    )
    expect(live.get_by_text(SCENE_REASONING)).to_have_count(0)  # the full text is one click away…
    assert_no_markers(page)
    shot("thinking")
    live.get_by_role("radio", name="Full text").click()
    expect(live_section(page).get_by_text(SCENE_REASONING)).to_be_visible()  # …and the choice is remembered

    expect(page.get_by_text(THOUGHT_LABEL).first).to_be_visible(timeout=STREAM_TIMEOUT)
    reply = wait_turn_finished(page)
    section = saved_section(reply)
    expect(label_of(section)).to_have_text(THOUGHT_LABEL)
    expect(section).not_to_have_attribute("open", "")
    expect(page.get_by_text(SCENE_REASONING)).to_have_count(0)  # folded: not even rendered
    expect(reply.get_by_role("heading", name=SCENE_HEADING)).to_be_visible()
    assert_no_markers(page)
    page.get_by_test_id("stChatMessage").first.evaluate("el => el.scrollIntoView({block: 'start'})")
    shot("thought")

    expect(label_of(section)).to_have_text(re.compile(r" · \d+ steps$"))
    section.locator("summary").first.click()
    expect(section).to_have_attribute("open", "")
    expect(section.get_by_text(SCENE_REASONING)).to_be_visible()  # the full text, as chosen while it streamed
    section.get_by_role("radio", name="Outline").click()
    steps = section.locator("[class*='st-key-step-'] summary")  # the outline: one item per step, closed
    expect(steps.first).to_contain_text("1. Okay, so the user wants one truly novel insight about humans.")
    expect(steps).to_have_count(6)  # the scene's steps (their rules are checked in tests/test_outline.py)
    expect(page.get_by_text(SCENE_REASONING)).to_have_count(0)
    shot("outline")
    steps.nth(1).click()  # a step opens onto its text
    expect(section.locator("[class*='st-key-step-']").nth(1)).to_contain_text("Wait, there is something")
    section.get_by_role("radio", name="Full text").click()
    expect(section.get_by_text(SCENE_REASONING)).to_be_visible()
    assert_no_markers(page)
    shot("opened")


# -- 2. persistence ---------------------------------------------------------------------------------------


def test_reload_and_restart_keep_the_conversation(page: Page, app: AppProcess, shot: Callable) -> None:
    open_app(page, app)
    send(page, "What is 17 × 23?")
    reply = wait_turn_finished(page)
    expect(reply.get_by_text("17 × 23 = 391.")).to_be_visible()
    conv = conversation_id(page)

    page.reload()
    expect(page).to_have_url(re.compile(rf"[?&]c={conv}"))
    expect(page.get_by_test_id("stChatMessage").first).to_contain_text("What is 17 × 23?")
    expect(wait_turn_finished(page).get_by_text("17 × 23 = 391.")).to_be_visible()
    expect(label_of(saved_section(page))).to_have_text(THOUGHT_LABEL)
    shot("reloaded")

    old_pid = app.proc.pid if app.proc else None
    app.restart()  # a new process on the same --db (and a new port)
    assert app.proc is not None and app.proc.pid != old_pid
    open_app(page, app, f"?c={conv}")
    expect(page.get_by_test_id("stChatMessage").first).to_contain_text("What is 17 × 23?")
    reply = wait_turn_finished(page)
    expect(reply.get_by_text("17 × 23 = 391.")).to_be_visible()
    section = saved_section(reply)
    open_full_text(section)
    expect(section.get_by_text("The answer is 391.")).to_be_visible()
    shot("restarted")


# -- 3. Stop keeps the partial ------------------------------------------------------------------------------


def _assert_stopped_partial(page: Page, db: Path, conv: str, timeout: float = STREAM_TIMEOUT) -> None:
    reply = wait_turn_finished(page, timeout)
    expect(reply.get_by_text("Stopped. The partial reply is kept.")).to_be_visible()
    expect(page.get_by_text(LONG_ANSWER)).to_have_count(0)
    section = saved_section(reply)
    expect(label_of(section)).to_have_text(THOUGHT_LABEL)
    with Store(db) as store:
        saved = store.get_conversation(conv)
    assert saved is not None
    turn = saved.messages[-1].turn
    assert turn is not None and turn.stopped
    open_full_text(section, switch=len(turn.outline) >= 2)  # a one-step partial shows its text at once
    expect(section.get_by_text(LONG_REASONING_START)).to_be_visible()
    assert turn.reasoning.startswith(LONG_REASONING_START.split(",")[0])
    assert 0 < len(turn.reasoning) < 60_000 and turn.answer == ""


def test_stop_button_keeps_the_partial_reply(page: Page, app: AppProcess, shot: Callable) -> None:
    open_app(page, app)
    choose_model(page, "demo-long")
    send(page, LONG_PROMPT)
    live = live_section(page)
    expect(label_of(live)).to_have_text(re.compile(r"^Thinking… \d+s( · \d+ steps?)?$"), timeout=STREAM_TIMEOUT)
    expect(live.get_by_text(LONG_REASONING_START)).to_be_visible()
    page.get_by_role("button", name="Stop", exact=True).click()
    conv = conversation_id(page)
    _assert_stopped_partial(page, app.db, conv)
    shot("stopped")

    page.reload()
    _assert_stopped_partial(page, app.db, conv)
    shot("stopped-reloaded")


def test_a_second_send_while_a_reply_streams_is_refused_and_the_text_kept(
    page: Page, app: AppProcess, shot: Callable
) -> None:
    """One reply at a time per conversation: you may type while it streams; sending is refused, text kept."""
    open_app(page, app)
    choose_model(page, "demo-long")
    send(page, LONG_PROMPT)
    live = live_section(page)
    expect(live.get_by_text(LONG_REASONING_START)).to_be_visible(timeout=STREAM_TIMEOUT)
    box = chat_input(page)
    expect(box).to_be_enabled()
    follow_up = "And for n up to 2000?\n  (keep the layout)"
    box.fill(follow_up)
    box.press("Enter")
    expect(page.get_by_role("alert").filter(has_text="already streaming")).to_contain_text("kept in the box")
    expect(box).to_have_value(follow_up)  # the typed text is back in the box, as typed
    expect(label_of(live_section(page))).to_have_text(
        re.compile(r"^Thinking… \d+s( · \d+ steps?)?$")
    )  # still streaming
    shot("refused")
    page.get_by_role("button", name="Stop", exact=True).click()
    _assert_stopped_partial(page, app.db, conversation_id(page), timeout=15_000)
    with Store(app.db) as store:
        conv = store.get_conversation(conversation_id(page))
    assert conv is not None and [m.role for m in conv.messages] == ["user", "assistant"]


# -- 4. pre-filled <think> -----------------------------------------------------------------------------------


def test_prefilled_dialect_lands_in_the_thinking_section(page: Page, app: AppProcess, shot: Callable) -> None:
    trace = next(t for t in load_traces() if t.name == "r1-prefilled-391")
    reasoning, _, answer = trace.text().partition("</think>")
    assert "<think>" not in reasoning  # only the closing marker arrives in this dialect
    phrase = "Check small primes"
    assert phrase in reasoning and phrase not in answer

    open_app(page, app)
    choose_model(page, "demo-r1-prefilled")
    send(page, "Is 391 prime?")
    reply = wait_turn_finished(page)
    expect(reply.get_by_text("No. 391 = 17 × 23, so it is not prime.")).to_be_visible()
    section = saved_section(reply)
    expect(label_of(section)).to_have_text(THOUGHT_LABEL)
    expect(page.get_by_text(phrase)).to_have_count(0)
    assert phrase not in reply.inner_text()
    assert_no_markers(page)
    shot("answer")

    section.locator("summary").click()
    expect(section.get_by_text(phrase)).to_be_visible()
    assert_no_markers(page)
    shot("opened")


# -- 5. XSS ---------------------------------------------------------------------------------------------


def test_model_output_cannot_run_script(page: Page, app: AppProcess, shot: Callable) -> None:
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    open_app(page, app)
    choose_model(page, "demo-xss")
    send(page, "Show me a classic XSS payload.")
    reply = wait_turn_finished(page)
    section = saved_section(reply)
    section.locator("summary").click()
    expect(section.get_by_text("The classic one is")).to_be_visible()
    # The payload is shown as text (at least in the code block), never as markup.
    expect(reply.get_by_text("<img src=x onerror=alert(1)>").first).to_be_visible()
    expect(reply.get_by_text("<script>alert(1)</script>").first).to_be_visible()
    shot("rendered")

    main = main_area(page)
    expect(main.locator("img[onerror]")).to_have_count(0)
    expect(main.locator("img[src='x']")).to_have_count(0)
    expect(main.locator("[data-testid='stChatMessage'] script")).to_have_count(0)
    expect(main.locator("a[href^='javascript:' i]")).to_have_count(0)
    link = main.get_by_text("click me")
    if link.count():
        link.first.click()  # a neutralised javascript: link must not fire either
    assert page.evaluate("() => document.querySelectorAll('[onerror], [onload]').length") == 0
    assert dialogs == []


# -- 6. the user's collapse survives the ticking clock ---------------------------------------------------------


def test_section_collapsed_by_hand_stays_collapsed_while_streaming(page: Page, app: AppProcess, shot: Callable) -> None:
    open_app(page, app)
    # A first, short turn, so that the long one is not the first of a new chat: that case leaves a stale copy
    # of the bubble after a rerun (see test_one_reply_bubble_after_a_rerun_in_a_new_chat).
    send(page, "What is 17 × 23?")
    wait_turn_finished(page)
    choose_model(page, "demo-long")
    send(page, LONG_PROMPT)
    live = live_section(page)
    expect(live.get_by_text(LONG_REASONING_START)).to_be_visible(timeout=STREAM_TIMEOUT)
    expect(live).to_have_attribute("open", "")

    live.locator("summary").click()  # the user folds it while it streams
    expect(live).not_to_have_attribute("open", "")
    label = label_of(live)
    expect(label).to_have_text(re.compile(r"^Thinking… \d+s( · \d+ steps?)?$"))
    seconds = int(re.findall(r"\d+", label.inner_text())[0])
    # Some ticks later (the header re-sent at least twice after the rerun the click caused) it is still folded.
    wait_thinking_label_at_least(page, seconds + 3)
    expect(live).not_to_have_attribute("open", "")
    expect(live.get_by_test_id("stExpanderDetails").first).to_be_hidden()
    expect(page.get_by_text("Stopped. The partial reply is kept.")).to_have_count(0)  # a fold is not a Stop
    shot("still-collapsed")

    page.get_by_role("button", name="Stop", exact=True).click()
    expect(last_reply(page).get_by_text("Stopped. The partial reply is kept.")).to_be_visible(timeout=STREAM_TIMEOUT)


def test_one_reply_bubble_after_a_rerun_in_a_new_chat(page: Page, app: AppProcess, shot: Callable) -> None:
    """Any click while the first reply of a new chat streams reruns the page; the reply must not show twice."""
    open_app(page, app)
    choose_model(page, "demo-long")
    send(page, LONG_PROMPT)
    live = live_section(page)
    expect(live.get_by_text(LONG_REASONING_START)).to_be_visible(timeout=STREAM_TIMEOUT)
    page.get_by_role("button", name="Refresh models").click()  # a rerun, as any widget causes
    # The rerun has drawn the sidebar (it now marks this chat as the current one) and watches the reply again.
    expect(page.get_by_role("button", name=re.compile(r"^▸ For which whole numbers"))).to_be_visible()
    expect(label_of(live.first)).to_have_text(re.compile(r"^Thinking… \d+s( · \d+ steps?)?$"))
    try:
        expect(page.get_by_test_id("stChatMessage")).to_have_count(2, timeout=10_000)  # prompt and reply
        expect(live).to_have_count(1)
    finally:
        shot("after-rerun")
        page.get_by_role("button", name="Stop", exact=True).first.click()


# -- 7. errors in the bubble ----------------------------------------------------------------------------------


def test_server_error_shows_in_the_bubble_with_retry(page: Page, app: AppProcess, shot: Callable) -> None:
    open_app(page, app)
    type_model(page, "demo-r1+status=500")
    send(page, SCENE)
    reply = wait_turn_finished(page)
    expect(reply.get_by_role("button", name="Retry", exact=True)).to_be_visible()
    alert = reply.get_by_role("alert")
    expect(alert).to_contain_text("HTTP 500")
    expect(alert).to_contain_text("The server had an error while processing your request.")
    expect(reply).to_contain_text("demo-r1+status=500")  # the stats line names the model that failed
    shot("error")


def test_broken_stream_keeps_partial_text_and_shows_error(page: Page, app: AppProcess, shot: Callable) -> None:
    open_app(page, app)
    type_model(page, "demo-r1+disconnect=30")
    send(page, SCENE)
    reply = wait_turn_finished(page)
    expect(reply.get_by_role("button", name="Retry", exact=True)).to_be_visible()
    expect(reply.get_by_role("alert")).to_contain_text("broke while the reply was streaming")
    section = saved_section(reply)
    expect(label_of(section)).to_have_text(re.compile(r"^Connection cut after \d+ s of thinking$"))  # what happened
    section.locator("summary").click()
    expect(section.get_by_text("Okay, so the user wants one truly novel insight")).to_be_visible()
    expect(reply.get_by_role("heading", name=SCENE_HEADING)).to_have_count(0)
    shot("broken")
