"""Data models: labels and durations derived from a turn's timings, and lossless JSON."""

from __future__ import annotations

import pytest

from viewer.models import AssistantTurn, Conversation, ErrorInfo, Message, Timings, Usage


@pytest.mark.parametrize(
    ("timings", "unfinished", "expected"),
    [
        (Timings(reasoning_start=1.0, reasoning_end=13.4), False, "Thought for 12 seconds"),
        (Timings(reasoning_start=1.0, reasoning_end=1.2), False, "Thought for 1 second"),
        (Timings(reasoning_start=1.0, end=3.6), False, "Thought for 3 seconds"),  # no end marker: stream end
        (Timings(), False, "Thought"),
        (Timings(reasoning_start=1.0, end=9.0), True, "Thought for 8 seconds"),  # ended cleanly while thinking
    ],
)
def test_thought_label(timings: Timings, unfinished: bool, expected: str) -> None:
    turn = AssistantTurn(reasoning="x", timings=timings, unfinished=unfinished, status="done", finish_reason="stop")
    assert turn.thought_label == expected
    assert AssistantTurn(reasoning=" \n", timings=timings, status="done").thought_label == ""


def test_durations_from_timings():
    t = Timings(first_byte=0.5, reasoning_start=2.0, reasoning_end=7.0, answer_start=7.5, end=10.0)
    assert t.summary() == {"waited_s": 2.0, "thought_s": 5.0, "answered_s": 2.5, "total_s": 10.0}


def test_reasoning_cut_by_budget():
    assert AssistantTurn(reasoning="r", finish_reason="length", unfinished=True).reasoning_cut_by_budget
    assert not AssistantTurn(reasoning="r", answer="a", finish_reason="stop").reasoning_cut_by_budget


def test_conversation_json_round_trip():
    conv = Conversation(
        title="Ünïcode ✓",
        messages=[
            Message(role="user", content="Q"),
            Message(
                role="assistant",
                turn=AssistantTurn(
                    reasoning="r",
                    answer="a",
                    error=ErrorInfo(kind="broken", message="m"),
                    timings=Timings(reasoning_start=1.0, end=2.0),
                    usage=Usage(reasoning_tokens=3, approximate=False),
                ),
            ),
        ],
    )
    assert Conversation.model_validate_json(conv.model_dump_json()) == conv
