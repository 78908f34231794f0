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


def _print(pieces: list[str | Delta], **printer_options) -> tuple[str, TurnRecorder]:
    out = io.StringIO()
    rec = TurnRecorder(model="m")
    printer = AskPrinter(out, rec, **printer_options)
    printer.start()
    for piece in pieces:
        printer.on_events(rec.feed(piece if isinstance(piece, Delta) else Delta(content=piece)))
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


def test_blank_reasoning_prints_no_label_and_no_thought_time():
    """Item 1's stream: a whitespace-only reasoning field is no reasoning."""
    text, rec = _print([Delta(reasoning="\n"), Delta(content="Hello"), Delta(content=" there.")])
    assert text.startswith("Hello there.\n") and "Thought" not in text
    assert "thought" not in text.splitlines()[-1]
    assert result_object(rec.snapshot())["timings"]["thought_s"] is None


def test_resumed_reasoning_never_shares_the_answer_line():
    """Item 4: interleaved thinking gets lines of its own; the answer's lines hold only answer text."""
    text, _ = _print(
        [
            Delta(reasoning="I should look this up."),
            Delta(reasoning=" Searching now."),
            Delta(content="Let me check."),
            Delta(reasoning="The results say 18 degrees and cloudy."),
            Delta(reasoning=" That answers it."),
            Delta(content=" It is 18 °C and cloudy."),
        ]
    )
    lines = text.splitlines()
    answer_lines = [line for line in lines if "Let me check" in line or "18 °C" in line]
    assert len(answer_lines) == 2
    assert not any("results" in line or "answers it" in line for line in answer_lines)
    assert any(line.startswith("The results say") for line in lines)
    assert text.index("Thought for") < text.index("Let me check.") < text.index("The results")


def test_final_stats_line_is_the_apps():
    text, rec = _print(["<think>", "r", "</think>", "a"])
    from viewer.labels import stats_line

    assert text.rstrip("\n").splitlines()[-1] == stats_line(rec.snapshot())


def test_terminal_gets_a_live_status_line_and_the_screen_back():
    """On a TTY: the last row shows Waiting…/Thinking… Ns while text streams above (a scroll region)."""
    text, _ = _print(["<think>", "pondering", "</think>", "\n\nAnswer."], tty=True, rows=24)
    assert "\x1b[1;23r" in text, "rows 1-23 scroll, row 24 is the status"
    assert "Waiting for the model… 0s" in text and "Thinking… 0s" in text
    assert text.index("Thinking… 0s") < text.index("Thought for")
    assert text.rindex("\x1b[r") > text.rindex("Thinking…"), "the full screen is given back at the end"
    assert "Answer." in text


def test_no_status_line_off_a_terminal():
    text, _ = _print(["<think>", "pondering", "</think>", "Answer."], tty=False)
    assert "\x1b" not in text and "Thinking…" not in text


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


def test_no_color_turns_dim_and_bold_off_on_a_terminal(monkeypatch) -> None:
    """NO_COLOR (no-color.org): set to anything, the terminal view adds no styling escapes."""
    from viewer.ask import BOLD, DIM, AskPrinter
    from viewer.turn import TurnRecorder

    def run() -> str:
        out = io.StringIO()
        rec = TurnRecorder(model="m")
        printer = AskPrinter(out, rec, tty=True, rows=0)
        for piece in ["<think>Let me think.", "</think>", "Answer."]:
            printer.on_events(rec.feed(Delta(content=piece)))
        printer.on_events(rec.finish())
        printer.finish(rec.snapshot())
        return out.getvalue()

    monkeypatch.delenv("NO_COLOR", raising=False)
    styled = run()
    assert DIM in styled and BOLD in styled
    monkeypatch.setenv("NO_COLOR", "1")
    plain = run()
    assert "\x1b" not in plain
    assert "Let me think." in plain and "Answer." in plain and "Thought for" in plain
