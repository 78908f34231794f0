"""The terminal view of `ask`: request building, the printed layout and the JSON result object."""

from __future__ import annotations

import argparse
import io

from viewer.ask import AskPrinter, build_request, result_object
from viewer.client import Delta
from viewer.turn import TurnRecorder


def _args(**overrides) -> argparse.Namespace:
    base = dict(
        prompt="Q",
        model="m",
        system=None,
        max_tokens=None,
        temperature=None,
        reasoning_effort=None,
        base_url="http://h/v1",
    )
    return argparse.Namespace(**{**base, **overrides})


def test_build_request_sends_only_what_was_set():
    assert build_request(_args()) == {"model": "m", "messages": [{"role": "user", "content": "Q"}]}
    req = build_request(_args(system="S", max_tokens=9, temperature=0.1, reasoning_effort="low"))
    assert req["messages"][0] == {"role": "system", "content": "S"}
    assert (req["max_tokens"], req["temperature"], req["reasoning_effort"]) == (9, 0.1, "low")


def _print(pieces: list[str]) -> tuple[str, TurnRecorder]:
    out = io.StringIO()
    rec = TurnRecorder(model="m")
    printer = AskPrinter(out, rec)
    for piece in pieces:
        printer.on_events(rec.feed(Delta(content=piece)))
    printer.on_events(rec.finish())
    printer.finish(rec.snapshot())
    return out.getvalue(), rec


def test_reasoning_then_label_then_answer():
    text, _ = _print(["<think>", "pondering", "</think>", "\n\nAnswer."])
    assert text.index("pondering") < text.index("Thought for") < text.index("Answer.")
    assert "<think>" not in text and "\x1b[" not in text


def test_reclassified_text_is_announced_before_the_label():
    text, _ = _print(["pondering", "</think>", "Answer."])
    assert text.index("pondering") < text.index("was the model's reasoning") < text.index("Thought for")
    assert text.index("Thought for") < text.index("Answer.")


def test_plain_reply_has_no_label():
    text, _ = _print(["Just an answer."])
    assert "Thought" not in text and text.startswith("Just an answer.")


def test_result_object_is_complete():
    _, rec = _print(["<think>", "r", "</think>", "a"])
    obj = result_object(rec.snapshot())
    assert set(obj) == {
        "reasoning",
        "answer",
        "finish_reason",
        "error",
        "timings",
        "usage",
        "outline",
        "reasoning_stats",
    }
    assert (obj["reasoning"], obj["answer"], obj["error"]) == ("r", "a", None)
    assert obj["usage"]["approximate"] is True and obj["usage"]["reasoning_tokens"] == 1
