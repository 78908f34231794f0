"""viewer/ui/chat.py: the pure helpers, and finished turns rendered through Streamlit's AppTest.

The rendering tests build a turn by hand (every status a stored turn can have) and draw it with
`render_turn` / `render_conversation` in a tiny AppTest script, so each warning, caption and
button can be checked without a server. The full page, with real streaming, is in test_app.py.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from streamlit.testing.v1 import AppTest

from viewer.models import AssistantTurn, Conversation, ErrorInfo, Message, Timings, Usage
from viewer.ui.chat import is_long_trace, split_paragraphs, stats_line

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def make_turn(**kwargs) -> AssistantTurn:
    defaults = {
        "reasoning": "First I add.\n\nThen I check.",
        "answer": "The answer is **42**.",
        "status": "done",
        "finish_reason": "stop",
        "model": "demo-r1",
        "timings": Timings(
            started_at=T0, first_byte=0.2, reasoning_start=0.5, reasoning_end=3.0, answer_start=3.1, end=4.1
        ),
        "usage": Usage(reasoning_tokens=100, answer_tokens=20),
    }
    defaults.update(kwargs)
    return AssistantTurn(**defaults)


# -- stats_line ---------------------------------------------------------------------------------


def test_stats_line_full() -> None:
    line = stats_line(make_turn())
    # 120 tokens over end - first token = 4.1 - 0.5 = 3.6 s
    assert line == (
        "waited 0.5s · thought 2.5s · answered 1.0s · ≈100 reasoning tokens · ≈20 answer tokens"
        " · 33.3 tok/s · demo-r1 · finish: stop"
    )


def test_stats_line_reported_usage_has_no_approximation_mark() -> None:
    line = stats_line(make_turn(usage=Usage(reasoning_tokens=7, answer_tokens=3, approximate=False)))
    assert "7 reasoning tokens" in line and "3 answer tokens" in line
    assert "≈" not in line


def test_stats_line_without_reasoning_has_no_thought_part() -> None:
    turn = make_turn(
        reasoning="",
        timings=Timings(started_at=T0, answer_start=0.4, end=1.4),
        usage=Usage(answer_tokens=10),
    )
    line = stats_line(turn)
    assert line.startswith("waited 0.4s · answered 1.0s · ≈10 answer tokens · 10.0 tok/s")
    assert "thought" not in line and "reasoning tokens" not in line


def test_stats_line_of_a_turn_that_never_produced_anything() -> None:
    turn = AssistantTurn(status="error", timings=Timings(started_at=T0, end=0.25))
    assert stats_line(turn) == "waited 0.2s"  # waited falls back to the end time; :.1f rounds half to even
    assert stats_line(AssistantTurn(timings=Timings(started_at=T0))) == ""


def test_stats_line_thinking_cut_off_counts_thought_until_the_end() -> None:
    turn = make_turn(
        answer="",
        finish_reason="length",
        unfinished=True,
        timings=Timings(started_at=T0, reasoning_start=1.0, end=6.0),
        usage=Usage(reasoning_tokens=50),
    )
    line = stats_line(turn)
    assert "thought 5.0s" in line and "answered" not in line
    assert "answer tokens" not in line
    assert line.endswith("finish: length")


# -- split_paragraphs ----------------------------------------------------------------------------


def test_split_paragraphs_on_blank_lines() -> None:
    assert split_paragraphs("One.\n\nTwo\nstill two.\n\nThree.") == ["One.", "Two\nstill two.", "Three."]


def test_split_paragraphs_keeps_a_fenced_code_block_whole() -> None:
    code = "```python\ndef f():\n\n    return 1\n\n\nprint(f())\n```"
    text = f"Before.\n\n{code}\n\nAfter."
    assert split_paragraphs(text) == ["Before.", code, "After."]


def test_split_paragraphs_two_fences_in_one_block_do_not_open_a_block() -> None:
    text = "Inline ```a``` and ```b```.\n\nNext."
    assert split_paragraphs(text) == ["Inline ```a``` and ```b```.", "Next."]


def test_split_paragraphs_unclosed_fence_runs_to_the_end() -> None:
    text = "Intro.\n\n```\ncode\n\nmore code"
    assert split_paragraphs(text) == ["Intro.", "```\ncode\n\nmore code"]


@pytest.mark.parametrize("text", ["", "\n\n", "   \n\n\n\n  "])
def test_split_paragraphs_drops_blank_paragraphs(text: str) -> None:
    assert split_paragraphs(text) == []


def test_split_paragraphs_loses_no_text() -> None:
    text = "a\n\nb\n\n```\nc\n\nd\n```\n\ne"
    assert "\n\n".join(split_paragraphs(text)) == text


# -- render_turn, through AppTest ----------------------------------------------------------------


def _turn_script(msg, is_last, live_exists):
    from viewer.ui.chat import render_turn

    render_turn(msg, is_last=is_last, live_exists=live_exists)


def render(turn: AssistantTurn, *, is_last: bool = True, live_exists: bool = False) -> tuple[AppTest, Message]:
    msg = Message(role="assistant", turn=turn)
    at = AppTest.from_function(_turn_script, args=(msg, is_last, live_exists), default_timeout=30)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at, msg


def labels(at: AppTest) -> list[str]:
    return [b.label for b in at.button]


def values(elements) -> list[str]:
    return [e.value for e in elements]


def test_done_turn_has_closed_thought_section_answer_stats_and_regenerate() -> None:
    turn = make_turn()
    at, msg = render(turn)
    [section] = at.expander
    assert section.label == "Thought for 2 seconds"
    assert not section.children  # lazy: nothing inside until opened
    assert values(at.markdown) == ["The answer is **42**."]
    assert at.markdown[0].proto.allow_html is False
    assert values(at.caption) == [stats_line(turn)]
    assert labels(at) == ["Regenerate"]
    assert not at.warning and not at.error

    at.session_state[f"think-{msg.id}"] = True
    at.run()
    assert values(at.expander[0].markdown) == ["First I add.", "Then I check."]


def component_data(at: AppTest, key: str) -> dict:
    """The data a `viewer.ui.clientside` control was given (its element is unknown to AppTest)."""
    [element] = [e for e in at.get("bidi_component") if e.key == key]
    return json.loads(element.proto.json)


def component_keys(at: AppTest) -> list[str]:
    return [e.key for e in at.get("bidi_component")]


def test_not_the_last_turn_has_no_regenerate() -> None:
    at, msg = render(make_turn(), is_last=False)
    assert labels(at) == []
    assert component_keys(at) == [f"copy-{msg.id}"]  # but it can be copied


def test_copy_icons_carry_the_exact_answer_and_send_the_reasoning_when_asked() -> None:
    at, msg = render(make_turn())
    assert component_data(at, f"copy-{msg.id}")["items"] == [
        ["Copy answer", "Answer", "The answer is **42**."],  # the Markdown source, as written
        ["Copy reasoning", "Reasoning", None],  # not sent with the page…
    ]
    assert not at.code and not at.toggle  # one click, no reveal step
    at.session_state[f"copy-{msg.id}-wanted"] = True  # what a click on "Copy reasoning" sets
    at.run()
    assert component_data(at, f"copy-{msg.id}")["items"][1][2] == "First I add.\n\nThen I check."  # …but then
    at.run()
    assert component_data(at, f"copy-{msg.id}")["items"][1][2] is None  # and only once


def test_a_reply_without_reasoning_copies_only_its_answer() -> None:
    at, msg = render(make_turn(reasoning="", timings=Timings()))
    assert not at.expander
    assert [item[0] for item in component_data(at, f"copy-{msg.id}")["items"]] == ["Copy answer"]


def test_an_opened_long_trace_offers_jump_to_answer_and_fold() -> None:
    reasoning = "\n\n".join(f"Step {i}: " + "check it. " * 40 for i in range(12))
    assert is_long_trace(reasoning)
    at, msg = render(make_turn(reasoning=reasoning))
    assert not any(k.startswith(("jump-", "fold-")) for k in component_keys(at))  # folded: nothing drawn
    at.session_state[f"think-{msg.id}"] = True
    at.run()
    keys = component_keys(at)
    assert keys[0] == f"jump-{msg.id}" and keys[-2] == f"fold-{msg.id}", keys  # the trace between them
    assert component_data(at, f"jump-{msg.id}")["target"] == f"st-key-answer-{msg.id}"
    assert component_data(at, f"fold-{msg.id}") == {
        "label": "Fold reasoning ↑",
        "target": f"st-key-think-{msg.id}",
        "fold": True,
    }
    assert len(at.expander[0].markdown) == 12


def test_an_opened_short_trace_has_no_jump_or_fold() -> None:
    at, msg = render(make_turn())
    at.session_state[f"think-{msg.id}"] = True
    at.run()
    assert component_keys(at) == [f"copy-{msg.id}"]


def test_a_long_trace_without_an_answer_has_fold_but_no_jump() -> None:
    reasoning = "word " * 1000
    at, msg = render(
        make_turn(reasoning=reasoning, answer="", status="error", error=ErrorInfo(kind="server", message="boom"))
    )
    at.session_state[f"think-{msg.id}"] = True
    at.run()
    keys = component_keys(at)
    assert f"fold-{msg.id}" in keys and f"jump-{msg.id}" not in keys


def test_interrupted_turn_is_marked_and_keeps_partial_text() -> None:
    at, _ = render(make_turn(status="streaming", answer="Partial", finish_reason=None))
    assert [e.label for e in at.expander] == ["Thought for 2 seconds"]  # it had finished thinking
    assert "Partial" in values(at.markdown)
    assert any("interrupted" in w for w in values(at.warning))
    timings = Timings(started_at=T0, reasoning_start=0.5, end=6.4)  # saved mid-thought, never answered
    at, _ = render(make_turn(status="streaming", answer="", finish_reason=None, timings=timings))
    assert [e.label for e in at.expander] == ["Interrupted after 6 s of thinking"]


def test_streaming_turn_that_is_still_live_is_not_called_interrupted() -> None:
    at, _ = render(make_turn(status="streaming", finish_reason=None), live_exists=True)
    assert [e.label for e in at.expander] == ["Thought for 2 seconds"]
    assert not at.warning


def test_error_turn_shows_the_message_and_retry() -> None:
    error = ErrorInfo(kind="http", message="The server failed with HTTP 500: boom.", status=500)
    at, _ = render(make_turn(status="error", answer="half an ans", finish_reason=None, error=error))
    assert values(at.error) == ["The server failed with HTTP 500: boom."]
    assert "half an ans" in values(at.markdown)
    assert labels(at) == ["Retry"]


def test_stopped_turn_says_so_and_offers_retry() -> None:
    at, _ = render(make_turn(status="stopped", stopped=True, finish_reason=None))
    assert "Stopped. The partial reply is kept." in values(at.caption)
    assert labels(at) == ["Retry"]


def test_cut_off_turn_warns_and_offers_retry() -> None:
    at, _ = render(make_turn(status="cut_off", cut_off=True, finish_reason=None))
    assert any("cut off" in w for w in values(at.warning))
    assert labels(at) == ["Retry"]


def test_empty_reply_warns() -> None:
    at, _ = render(make_turn(reasoning="", answer=""))
    assert values(at.warning) == ["The model returned an empty reply."]
    assert not at.expander


@pytest.mark.parametrize(
    ("params", "shown", "offered"), [({"max_tokens": 300}, "300", 600), ({}, "server default", 2048)]
)
def test_budget_cut_warns_and_offers_twice_the_budget(params: dict, shown: str, offered: int) -> None:
    turn = make_turn(answer="", finish_reason="length", unfinished=True, request_params=params)
    assert turn.reasoning_cut_by_budget
    at, _ = render(turn)
    [warning] = values(at.warning)
    assert f"max\\_tokens={shown}" in warning  # escaped Markdown: shows as max_tokens
    assert at.expander[0].label == "Token budget ran out after 2 s of thinking"
    assert labels(at) == ["Regenerate", f"Retry with {offered} tokens", "Retry without a limit"]


def _conversation_script(conv):
    from viewer.replies import ReplyService
    from viewer.ui.chat import render_conversation

    render_conversation(conv, ReplyService(None), None)


def test_render_conversation_only_the_last_reply_has_actions() -> None:
    first = Message(role="assistant", turn=make_turn(answer="first answer"))
    last = Message(role="assistant", turn=make_turn(answer="second answer"))
    conv = Conversation(
        messages=[
            Message(role="system", content="SYSTEM TEXT"),
            Message(role="user", content="q1"),
            first,
            Message(role="user", content="q2 with <b>tags</b>"),
            last,
        ]
    )
    at = AppTest.from_function(_conversation_script, args=(conv,), default_timeout=30)
    at.run()
    assert not at.exception
    assert [m.name for m in at.chat_message] == ["user", "assistant", "user", "assistant"]
    assert "SYSTEM TEXT" not in values(at.markdown)
    # The prompt is shown as typed: its markup escaped, not rendered (issue 10, item 2).
    assert values(at.markdown) == ["q1", "first answer", "q2 with \\<b\\>tags\\</b\\>", "second answer"]
    assert all(m.proto.allow_html is False for m in at.markdown)
    assert [b.key for b in at.button] == [f"regen-{last.id}"]


def test_an_opened_conversation_scrolls_to_its_end_once() -> None:
    """Streamlit no longer keeps the page at its end (the chat box is in `st.bottom`, D5): the page goes to the
    latest reply when a conversation is opened, and stays where the reader is on later reruns."""
    msg = Message(role="assistant", turn=make_turn())
    conv = Conversation(messages=[Message(role="user", content="q"), msg])
    at = AppTest.from_function(_conversation_script, args=(conv,), default_timeout=30)
    at.run()
    assert component_keys(at) == [f"copy-{msg.id}", f"arrive-{conv.id}"]
    at.run()
    assert component_keys(at) == [f"copy-{msg.id}"]


# -- the live reasoning view, through AppTest ------------------------------------------------------


def _live_view_script(pieces, fold_label):
    import streamlit as st

    from viewer.ui.chat import _ReasoningView

    view = _ReasoningView(st.empty(), key="live-test")
    view.ensure("Thinking… 0s")
    view.label("Thinking… 1s")
    for i, piece in enumerate(pieces):
        view.add(piece, now=i / 15)
    view.flush(len(pieces) / 15, force=True)
    if fold_label:
        view.fold(fold_label, now=len(pieces) / 15)
        view.label("Thinking… 9s")  # a late tick must not undo the fold


LIVE_TEXT = "First paragraph.\n\n```python\nx = 1\n\n\ny = 2\n```\n\nThird, still being writ"


@pytest.mark.parametrize("size", [1, 3, 7, len(LIVE_TEXT)])
def test_live_reasoning_grows_by_paragraph_like_the_finished_rendering(size: int) -> None:
    pieces = [LIVE_TEXT[i : i + size] for i in range(0, len(LIVE_TEXT), size)]
    at = AppTest.from_function(_live_view_script, args=(pieces, None), default_timeout=30)
    at.run()
    assert not at.exception
    [section] = at.expander
    assert section.label == "Thinking… 1s"
    assert section.proto.expanded is True
    assert values(section.markdown) == split_paragraphs(LIVE_TEXT), "the text's own paragraphs, none split"


def test_live_reasoning_folds_to_its_final_label() -> None:
    at = AppTest.from_function(_live_view_script, args=(["A.\n\nB."], "Thought for 3 seconds"), default_timeout=30)
    at.run()
    assert not at.exception
    [section] = at.expander
    assert section.label == "Thought for 3 seconds"
    assert section.proto.expanded is False
    assert values(section.markdown) == ["A.", "B."]


class _Piece:
    """Stands in for a Streamlit element: keeps what the browser would show and counts what was sent."""

    def __init__(self, sent: list[int]) -> None:
        self.sent = sent
        self.text = ""

    def markdown(self, text: str) -> None:
        self.sent.append(len(text))
        self.text = text


class _Section:
    def __init__(self) -> None:
        self.container = self
        self.pieces: list[_Piece] = []
        self.sent: list[int] = []

    def empty(self) -> _Piece:
        self.pieces.append(_Piece(self.sent))
        return self.pieces[-1]


@pytest.mark.parametrize(("chars_per_update", "bound"), [(15, None), (250, 2.2), (2, None)])
def test_live_reasoning_sends_little_more_than_the_text(chars_per_update: int, bound: float | None) -> None:
    """At a fast model's pace the re-sent text stays within ~2x the trace; at a slow pace at most
    RESEND_BYTES_PER_S of the paragraph being written is added per second (never the whole trace)."""
    from viewer.ui.chat import RESEND_BYTES_PER_S, UPDATES_PER_S, _ReasoningView

    paragraph = "Wait, maybe the answer depends on the base case. Let me check it again carefully. " * 12
    text = "\n\n".join([paragraph] * 20)
    view = _ReasoningView(None, key="k")
    section = _Section()
    view.section = section  # type: ignore[assignment]
    view.piece = section.empty()
    updates = 0
    for i in range(0, len(text), chars_per_update):
        view.add(text[i : i + chars_per_update], now=updates / UPDATES_PER_S)
        updates += 1
    view.flush(1e9, force=True)
    assert [p.text for p in section.pieces] == text.split("\n\n"), "each paragraph whole, in order"
    total = sum(section.sent)
    seconds = updates / UPDATES_PER_S
    limit = bound * len(text) if bound else 2 * len(text) + seconds * RESEND_BYTES_PER_S
    assert total <= limit, f"sent {total / len(text):.2f}x the trace"
