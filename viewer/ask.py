"""The terminal view of a turn for `reasoning-viewer ask`: request building, live printing, the JSON result.

Kept apart from cli.py so the launcher stays a launcher, and free of Streamlit
so `ask` starts fast and runs on machines without a browser.
"""

from __future__ import annotations

import argparse
from typing import TextIO

from viewer.models import AssistantTurn, Conversation, Message
from viewer.outline import ReasoningStats
from viewer.reasoning import SplitEvent
from viewer.request_builder import GenerationSettings
from viewer.request_builder import build_request as build_conversation_request
from viewer.turn import TurnRecorder, tokens_per_second

DIM = "\x1b[2m"
BOLD = "\x1b[1m"
RESET = "\x1b[0m"


def build_request(args: argparse.Namespace) -> dict:
    """The chat-completions body, built by the same code as the app's (optional knobs only when set)."""
    conv = Conversation(messages=[Message(role="user", content=args.prompt)])
    settings = GenerationSettings(
        model=args.model,
        system_prompt=args.system,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        reasoning_effort=args.reasoning_effort,
    )
    return build_conversation_request(conv, settings, args.base_url or "")


def result_object(turn: AssistantTurn) -> dict:
    """The one JSON object `ask --json` prints: always complete, even after an error."""
    usage = turn.usage
    tps = tokens_per_second(turn)
    return {
        "reasoning": turn.reasoning,
        "answer": turn.answer,
        "finish_reason": turn.finish_reason,
        "error": turn.error.message if turn.error else None,
        "timings": turn.timings.summary(),
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "reasoning_tokens": usage.reasoning_tokens,
            "answer_tokens": usage.answer_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "approximate": usage.approximate,
            "tokens_per_s": None if tps is None else round(tps, 2),
        },
        "outline": [step.to_dict() | {"model_title": turn.step_titles.get(str(step.start))} for step in turn.outline],
        "reasoning_stats": (turn.reasoning_stats or ReasoningStats()).to_dict(),
    }


class AskPrinter:
    """Streams a turn to a terminal: reasoning dimmed, then 'Thought for N seconds', then the answer.

    A terminal cannot take text back, so provisional text (which may turn out
    to be reasoning once a closing marker arrives) is printed as it comes and,
    if reclassified, a note says so before the label.
    """

    def __init__(self, out: TextIO, recorder: TurnRecorder, *, outline: bool = False) -> None:
        self.out = out
        self.recorder = recorder
        self.outline = outline  # print numbered step titles instead of the reasoning text (`ask --outline`)
        self._steps_printed = 0
        self.tty = bool(getattr(out, "isatty", lambda: False)())
        self._dimmed = False
        self._labelled = False
        self._printed_any = False

    def _style(self, code: str) -> str:
        return code if self.tty else ""

    def _undim(self) -> None:
        if self._dimmed:
            self.out.write(self._style(RESET))
            self._dimmed = False

    def _print_steps(self) -> None:
        """Print the steps whose titles can no longer change (a terminal cannot take a line back)."""
        builder = self.recorder.outline
        steps = builder.steps
        ready = len(steps) if builder.title_final else builder.final_count
        if ready <= self._steps_printed:
            return
        if not self._dimmed:
            self.out.write(self._style(DIM))
            self._dimmed = True
        for i in range(self._steps_printed, ready):
            self.out.write(f"{i + 1}. {steps[i].title}\n")
        self._steps_printed = ready
        self._printed_any = True

    def _label(self, note: str = "") -> None:
        if self.outline:
            self._print_steps()
        self._undim()
        turn = self.recorder.snapshot()
        self.out.write(f"\n{note}{self._style(BOLD)}{turn.thought_label}{self._style(RESET)}\n\n")
        self._labelled = True

    def on_events(self, events: list[SplitEvent]) -> None:
        w = self.out.write
        for ev in events:
            kind = ev.kind
            if kind == "reasoning" and self.outline:
                self._print_steps()
            elif kind == "reasoning":
                if not self._dimmed:
                    w(self._style(DIM))
                    self._dimmed = True
                w(ev.text)
                self._printed_any = True
            elif kind in ("answer", "provisional"):
                self._undim()
                w(ev.text)
                self._printed_any = True
            elif kind == "reclassified":
                self._label(note="(the text above was the model's reasoning)\n")
            elif kind == "reasoning_end" and not self._labelled:
                self._label()
        self.out.flush()

    def finish(self, turn: AssistantTurn) -> None:
        if turn.reasoning and not self._labelled:
            self._label()
        self._undim()
        if self._printed_any and not turn.answer.endswith("\n"):
            self.out.write("\n")
        self.out.flush()
