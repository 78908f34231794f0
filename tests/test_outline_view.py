"""The skim view of a finished turn (viewer/ui/outline_view.py), through Streamlit's AppTest."""

from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest

from viewer.models import AssistantTurn, Conversation, Message, Timings
from viewer.outline import step_text
from viewer.ui.outline_view import PREFERENCE_KEY, escape_label, folded_label, step_label, thinking_label

REASONING = """Okay, so the user wants 17 × 23. Let me break it up.

17 × 20 = 340, and 17 × 3 = 51.

Wait, I should double-check that. 17 × 3 = 51, yes.

Alternatively, 23 × 17 = 23 × 10 + 23 × 7 = 230 + 161.

Let me verify: 340 + 51 = 391.

So the answer is 391."""


def make_turn(reasoning: str = REASONING, **kwargs) -> AssistantTurn:
    return AssistantTurn(
        reasoning=reasoning,
        answer="391",
        status="done",
        timings=Timings(first_byte=0.1, reasoning_start=0.2, reasoning_end=47.2, answer_start=47.3, end=48.0),
        **kwargs,
    )


def _conversation_script(conv):
    from viewer.replies import ReplyService
    from viewer.ui.chat import render_conversation

    render_conversation(conv, ReplyService(None), None)


def render(*turns: AssistantTurn) -> tuple[AppTest, list[Message]]:
    msgs = [Message(role="assistant", turn=t) for t in turns]
    conv = Conversation(messages=msgs)
    at = AppTest.from_function(_conversation_script, args=(conv,), default_timeout=30)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at, msgs


def _open(at: AppTest, key: str) -> AppTest:
    at.session_state[key] = True
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_folded_label_counts_steps_and_the_section_stays_lazy():
    at, _ = render(make_turn())
    [section] = at.expander
    assert section.label == "Thought for 47 seconds · 5 steps"
    assert not section.children


def test_opened_section_shows_the_outline_by_default_and_each_step_opens_onto_its_text():
    turn = make_turn()
    at, [msg] = render(turn)
    _open(at, f"think-{msg.id}")
    assert [b.value for b in at.button_group] == ["Outline"]
    outer = at.expander[0]
    steps = [e for e in at.expander if e.label != outer.label]
    assert [e.label for e in steps] == [step_label(i, s.title) for i, s in enumerate(turn.outline, 1)]
    assert steps[1].label == "2\\. Wait, I should double-check that."
    assert not at.markdown or all(m.value == "391" for m in at.markdown)  # no step text until a step is opened
    _open(at, f"step-{msg.id}-{turn.outline[1].start}")
    texts = [m.value for m in at.markdown if m.value != "391"]
    assert texts == [step_text(turn.reasoning, turn.outline[1]).strip()]


def test_full_text_choice_is_remembered_for_other_turns():
    first, second = make_turn(), make_turn()
    at, [m1, m2] = render(first, second)
    _open(at, f"think-{m1.id}")
    at.button_group[0].set_value("Full text").run()
    assert at.session_state[PREFERENCE_KEY] == "Full text"
    paragraphs = [m.value for m in at.markdown if m.value != "391"]
    assert paragraphs[0].startswith("Okay, so the user wants") and len(paragraphs) == 6
    _open(at, f"think-{m2.id}")
    assert [b.value for b in at.button_group] == ["Full text", "Full text"]  # the second turn opens onto it too
    assert len([e for e in at.expander if e.label.startswith("1\\.")]) == 0


def test_a_one_step_trace_shows_its_text_without_a_switch_or_count():
    turn = make_turn("Just one thought here.\n\nAnd a second paragraph.")
    at, [msg] = render(turn)
    assert at.expander[0].label == "Thought for 47 seconds"
    _open(at, f"think-{msg.id}")
    assert not at.button_group
    assert [m.value for m in at.expander[0].markdown] == ["Just one thought here.", "And a second paragraph."]


def test_titles_are_escaped_and_model_titles_and_note_are_shown():
    hostile = "Okay, so ![x](http://evil.example/i.png) <img src=x onerror=alert(1)> **bold** :red[hi]"
    reasoning = hostile + "\n\nWait, second step.\n\nBut third."
    turn = make_turn(reasoning, titler_note="Model titles unavailable: the titler timed out.")
    turn.step_titles = {str(turn.outline[1].start): "Rechecking the sum"}
    at, [msg] = render(turn)
    _open(at, f"think-{msg.id}")
    labels = [e.label for e in at.expander[1:]]
    assert labels[0] == "1\\. " + escape_label(turn.outline[0].title)
    assert not re.search(r"(?<!\\)[!\[\]<>*]", labels[0])  # every Markdown/HTML character is escaped
    assert labels[1] == "2\\. Rechecking the sum"
    assert "Model titles unavailable: the titler timed out." in [c.value for c in at.caption]


def test_label_helpers():
    assert folded_label("Thought for 3 seconds", 1) == "Thought for 3 seconds"
    assert folded_label("Thought for 3 seconds", 9) == "Thought for 3 seconds · 9 steps"
    assert step_label(4, "a*b", current=True) == "4\\. a\\*b …"
    assert escape_label("x\n[y](z)") == "x \\[y\\](z)"  # no link without its brackets
    assert thinking_label(12.7, 4) == "Thinking… 12s · 4 steps"
    assert thinking_label(3, 1) == "Thinking… 3s · 1 step" and thinking_label(None, 0) == "Thinking… 0s"


# -- the titler's settings block (viewer/ui/sidebar.py) --------------------------------------------------------


def _titler_script():
    import streamlit as st

    from viewer.models import EndpointProfile
    from viewer.ui.sidebar import step_titles_section, titler_settings

    profile = EndpointProfile(name="demo", base_url="http://127.0.0.1:9/v1", api_key_env="DEMO_API_KEY")
    step_titles_section(profile)
    st.session_state["picked"] = titler_settings(profile, "sk-session")


def test_titler_settings_are_off_by_default_and_a_key_only_goes_to_the_chat_endpoint():
    at = AppTest.from_function(_titler_script, default_timeout=30)
    at.run()
    assert not at.exception
    assert at.session_state["picked"] is None and not at.text_input  # off: nothing else shown
    at.toggle[0].set_value(True).run()
    assert [t.label for t in at.text_input] == ["Titler base URL", "Titler model"]
    assert at.session_state["picked"] is None  # no model yet
    at.text_input[1].input("demo-titler").run()
    picked = at.session_state["picked"]
    assert (picked.base_url, picked.model, picked.api_key_env, picked.api_key) == (
        "http://127.0.0.1:9/v1",
        "demo-titler",
        "DEMO_API_KEY",
        "sk-session",
    )
    at.text_input[0].input("http://elsewhere.example:8000/v1").run()
    picked = at.session_state["picked"]
    assert picked.base_url == "http://elsewhere.example:8000/v1" and picked.api_key is None
    assert picked.api_key_env is None
    at.text_input[0].input("not a url").run()
    assert at.session_state["picked"] is None and at.warning
