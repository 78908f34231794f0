"""viewer/labels.py: what a turn is called, the same for `ask`, the app and the exports."""

from __future__ import annotations

import pytest

from viewer.labels import end_notes, ending, reasoning_label, stats_line, thought_label, tidy
from viewer.models import AssistantTurn, ErrorInfo, Timings, Usage

THINKING_6S = Timings(reasoning_start=1.0, end=7.2)  # the stream ended while thinking, 6.2 s in


def turn(**kw) -> AssistantTurn:
    base = dict(reasoning="Let me think.", answer="", status="done", finish_reason="stop", timings=THINKING_6S)
    base.update(kw)
    return AssistantTurn(**base)


def test_thought_label_rounds_with_a_minimum_of_one_second() -> None:
    assert [thought_label(s) for s in (None, 0.2, 1.5, 12.4)] == [
        "Thought",
        "Thought for 1 second",
        "Thought for 2 seconds",
        "Thought for 12 seconds",
    ]


# -- item 1: no reasoning, no label -----------------------------------------------------------------------


@pytest.mark.parametrize("reasoning", ["", "\n", " \n\t "])
def test_blank_reasoning_has_no_label_and_no_thought_in_the_stats(reasoning: str) -> None:
    # timings as a row saved before the fix would have them: a reasoning start for a blank section
    t = turn(reasoning=reasoning, answer="Hello there.", timings=Timings(reasoning_start=0.5, answer_start=1.5, end=2))
    assert reasoning_label(t) is None and t.thought_label == ""
    assert "thought" not in stats_line(t)


# -- item 3: labels say what happened -------------------------------------------------------------------------


@pytest.mark.parametrize("finish", ["stop", "tool_calls", "function_call", "end_turn", "eos"])
def test_a_clean_finish_while_thinking_is_not_cut_off(finish: str) -> None:
    """A turn that ended cleanly (tool call, harmony <|call|>, …) says how long it thought, nothing more."""
    t = turn(finish_reason=finish, unfinished=True)
    assert reasoning_label(t) == "Thought for 6 seconds"
    assert ending(t) == "done"
    assert not [n for n in end_notes(t) if n.level != "info"]


@pytest.mark.parametrize(
    ("fields", "label", "note_kind"),
    [
        (dict(status="stopped", stopped=True, finish_reason=None), "Stopped after 6 s of thinking", "stopped"),
        (dict(finish_reason="length"), "Token budget ran out after 6 s of thinking", "budget"),
        (
            dict(status="error", finish_reason=None, error=ErrorInfo(kind="stream_error", message="boom")),
            "Server error after 6 s of thinking",
            "error",
        ),
        (
            dict(status="error", finish_reason=None, error=ErrorInfo(kind="broken", message="The connection broke.")),
            "Connection cut after 6 s of thinking",
            "error",
        ),
        (
            dict(status="cut_off", cut_off=True, finish_reason=None, error=ErrorInfo(kind="cut_off", message="cut")),
            "Connection cut after 6 s of thinking",
            "error",
        ),
        (
            dict(status="error", finish_reason=None, error=ErrorInfo(kind="read_timeout", message="silence")),
            "Server went silent after 6 s of thinking",
            "error",
        ),
        (dict(finish_reason="content_filter"), "Content filter ended it after 6 s of thinking", "filtered"),
    ],
)
def test_an_abnormal_end_while_thinking_says_what_happened(fields: dict, label: str, note_kind: str) -> None:
    t = turn(unfinished=True, **fields)
    assert reasoning_label(t) == label == t.thought_label
    assert [n.kind for n in end_notes(t)] == [note_kind]


def test_an_abnormal_end_after_thinking_keeps_the_plain_label() -> None:
    t = turn(
        answer="Half an ans",
        status="stopped",
        stopped=True,
        finish_reason=None,
        timings=Timings(reasoning_start=1.0, reasoning_end=4.0, answer_start=4.1, end=5.0),
    )
    assert reasoning_label(t) == "Thought for 3 seconds"
    assert [n.text for n in end_notes(t)] == ["Stopped. The partial reply is kept."]


def test_tool_call_finish_is_explained_not_called_empty() -> None:
    t = turn(reasoning="", finish_reason="tool_calls", timings=Timings(end=1.0))
    [note] = end_notes(t)
    assert note.kind == "tool_call" and "tool_calls" in note.text


def test_budget_note_names_the_budget_and_where_it_ran_out() -> None:
    thinking = turn(finish_reason="length", unfinished=True, request_params={"max_tokens": 300})
    answering = turn(finish_reason="length", answer="The answer is", request_params={})
    assert "max_tokens=300" in end_notes(thinking)[0].text and "still thinking" in end_notes(thinking)[0].text
    assert "server default" in end_notes(answering)[0].text and "before the answer" in end_notes(answering)[0].text


def test_empty_reply_and_clean_reply_notes() -> None:
    assert [n.text for n in end_notes(turn(reasoning=""))] == ["The model returned an empty reply."]
    assert end_notes(turn(answer="Fine.")) == []


# -- stats line and message hygiene ---------------------------------------------------------------------------


def test_stats_line_counts_every_stretch_of_interleaved_thinking() -> None:
    t = turn(
        answer="A",
        model="m",
        timings=Timings(reasoning_start=1.0, answer_start=2.0, end=6.5, reasoning_spans=[(1.0, 2.0), (2.5, 6.5)]),
        usage=Usage(reasoning_tokens=4, answer_tokens=2, approximate=False),
    )
    assert stats_line(t).startswith("waited 1.0s · thought 5.0s · answered 0.5s · 4 reasoning tokens")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Please try again in 1s.. Retry after 1 s.", "Please try again in 1s. Retry after 1 s."),
        ("The request failed: Server disconnected..", "The request failed: Server disconnected."),
        ("Really?. Yes!.", "Really? Yes!"),
        ("Wait... and … then.", "Wait... and … then."),
        ("two\nlines  here.", "two lines here."),
    ],
)
def test_tidy_never_ends_a_sentence_twice(text: str, expected: str) -> None:
    assert tidy(text) == expected
