"""viewer/wire.py: chat-completion payloads → Delta / Completion, on their own (no HTTP)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from viewer.wire import (
    Completion,
    Delta,
    ErrorPayload,
    MalformedChunk,
    chunk_delta,
    completion_of,
    loads,
    merge_reasoning,
)


def chunk(delta: dict | None = None, finish: object = None, **top: object) -> dict:
    choice: dict = {"index": 0, "delta": delta if delta is not None else {}, "finish_reason": finish}
    return {"id": "x", "object": "chat.completion.chunk", "choices": [choice], **top}


def test_the_common_text_chunk() -> None:
    assert chunk_delta(chunk({"content": "Hi"}, model="m")) == Delta("Hi", "", None, None, "m")
    assert chunk_delta(chunk({"role": "assistant", "content": "Hi"})) == Delta("Hi")


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning", "thinking"])
def test_every_reasoning_field_is_read(field: str) -> None:
    assert chunk_delta(chunk({field: "think", "content": None})) == Delta("", "think")


def test_the_same_reasoning_in_two_fields_counts_once_and_details_only_as_a_fallback() -> None:
    assert merge_reasoning({"reasoning_content": "a", "reasoning": "a"}) == "a"
    assert merge_reasoning({"reasoning_content": "a", "reasoning": "b"}) == "ab"
    details = [{"type": "reasoning.text", "text": "t"}, {"type": "reasoning.summary", "summary": "s"}, 5]
    assert merge_reasoning({"reasoning_details": details}) == "ts"
    assert merge_reasoning({"reasoning": "r", "reasoning_details": details}) == "r"


def test_finish_usage_and_empty_chunks() -> None:
    assert chunk_delta(chunk({}, finish="length")) == Delta(finish_reason="length")
    usage = {"completion_tokens": 3}
    assert chunk_delta({"choices": [], "usage": usage}) == Delta(usage=usage)
    assert chunk_delta(chunk({"role": "assistant"})) is None  # role only: nothing to split
    assert chunk_delta(chunk({"content": "x"}, finish=1)) == Delta("x")  # an ill-typed finish is ignored


@pytest.mark.parametrize(
    "obj",
    [[1], {"id": "x"}, {"choices": "no"}, {"choices": [5]}, {"choices": [{"delta": "no"}]}, chunk({"content": 5})],
)
def test_json_that_is_not_a_chunk_is_malformed(obj: object) -> None:
    with pytest.raises(MalformedChunk):
        chunk_delta(obj)


def test_an_error_object_is_reported_as_such() -> None:
    with pytest.raises(ErrorPayload) as info:
        chunk_delta({"error": {"message": "boom"}})
    assert info.value.payload == {"error": {"message": "boom"}}
    with pytest.raises(ErrorPayload):
        completion_of({"error": "boom"})


def test_a_whole_reply_from_message_or_delta() -> None:
    payload = {
        "model": "m",
        "choices": [{"message": {"content": "A", "reasoning_content": "R"}, "finish_reason": "stop"}],
        "usage": {"total_tokens": 5},
    }
    assert completion_of(payload) == Completion("A", "R", "stop", {"total_tokens": 5}, "m")
    assert completion_of({"choices": [{"delta": {"content": "A"}}]}).content == "A"
    with pytest.raises(MalformedChunk):
        completion_of({"choices": []})


def test_loads_falls_back_for_what_orjson_refuses() -> None:
    assert loads('{"a": NaN}')["a"] != loads('{"a": NaN}')["a"]  # NaN, which orjson rejects
    assert loads('"\\ud800"') == "\ud800"  # a lone surrogate escape
    with pytest.raises(ValueError):
        loads("{not json")


@given(st.text(min_size=1), st.text())
def test_content_and_reasoning_round_trip_through_a_chunk(content: str, reasoning: str) -> None:
    delta = chunk_delta(chunk({"content": content, "reasoning_content": reasoning}))
    assert delta is not None and delta.content == content and delta.reasoning == reasoning
