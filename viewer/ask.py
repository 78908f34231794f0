"""The terminal view of a turn for `reasoning-viewer ask`: request building, live printing, the JSON result.

Kept apart from cli.py so the launcher stays a launcher, and free of Streamlit
so `ask` starts fast and runs on machines without a browser.
"""

from __future__ import annotations

import argparse
import os
import threading
from typing import TextIO

from viewer import labels
from viewer.models import AssistantTurn, Conversation, Message
from viewer.outline import ReasoningStats
from viewer.reasoning import SplitEvent
from viewer.request_builder import GenerationSettings
from viewer.request_builder import build_request as build_conversation_request
from viewer.turn import TurnRecorder

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
    tps = labels.tokens_per_second(turn)
    return {
        "reasoning": turn.reasoning,
        "answer": turn.answer,
        "finish_reason": turn.finish_reason,
        "error": labels.tidy(turn.error.message) if turn.error else None,
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


class StatusLine:
    """A live status ("Thinking… 7s") on the terminal's last row, while text streams above it.

    The rows above are made a scroll region (DECSTBM, as apt's progress bar does), so streamed text wraps
    and scrolls there by itself and the status row is redrawn in place, whatever the text looks like.
    `close()` gives the whole screen back. Only ever used on a terminal.
    """

    def __init__(self, out: TextIO, rows: int, *, styled: bool = True) -> None:
        self.out = out
        self.rows = rows
        self.dim, self.reset = (DIM, RESET) if styled else ("", "")
        self.text = ""
        self.active = False

    def open(self) -> None:
        # One new line first, so that shrinking the region never hides the cursor's row; then back up to it.
        self.out.write(f"\n\x1b7\x1b[1;{self.rows - 1}r\x1b8\x1b[1A")
        self.active = True

    def show(self, text: str) -> None:
        if self.active and text != self.text:
            self.text = text
            self.out.write(f"\x1b7\x1b[{self.rows};1H\x1b[2K{self.dim}{text}{self.reset}\x1b8")

    def close(self) -> None:
        if self.active:
            self.active = False
            self.out.write(f"\x1b7\x1b[r\x1b[{self.rows};1H\x1b[2K\x1b8")


class AskPrinter:
    """Streams a turn to a terminal: reasoning dimmed, then 'Thought for N seconds', then the answer.

    A terminal cannot take text back, so provisional text (which may turn out
    to be reasoning once a closing marker arrives) is printed as it comes and,
    if reclassified, a note says so before the label. Reasoning that resumes
    after the answer began (interleaved thinking) gets lines of its own, dimmed,
    never the answer's line. At the end comes the app's stats line. On a
    terminal a status line at the bottom ticks "Waiting…" / "Thinking… Ns".
    """

    def __init__(
        self,
        out: TextIO,
        recorder: TurnRecorder,
        *,
        tty: bool | None = None,
        rows: int | None = None,
        outline: bool = False,
    ) -> None:
        self.out = out
        self.recorder = recorder
        self.tty = bool(getattr(out, "isatty", lambda: False)()) if tty is None else tty
        # Dim and bold only on a terminal, and never when NO_COLOR is set to anything (no-color.org).
        self.styled = self.tty and not os.environ.get("NO_COLOR")
        self.outline = outline  # print numbered step titles instead of the reasoning text (`ask --outline`)
        self._steps_printed = 0
        self._dimmed = False
        self._labelled = False
        self._side: str | None = None  # "reasoning" or "answer": what the last text printed was
        self._tail = "\n\n"  # the last two characters written
        self._lock = threading.Lock()  # the ticker thread writes the status line too
        self._ticker: threading.Thread | None = None
        self._done = threading.Event()
        self.status: StatusLine | None = None
        if self.tty:
            height = rows if rows is not None else _terminal_rows(out)
            if height >= 4:
                self.status = StatusLine(out, height, styled=self.styled)

    # -- output helpers (called with the lock held) ----------------------------------------------

    def _style(self, code: str) -> str:
        return code if self.styled else ""

    def _write(self, text: str) -> None:
        if text:
            self.out.write(text)
            self._tail = (self._tail + text)[-2:]

    def _undim(self) -> None:
        if self._dimmed:
            self.out.write(self._style(RESET))
            self._dimmed = False

    def _newline(self) -> None:
        if not self._tail.endswith("\n"):
            self._write("\n")

    def _blank_line(self) -> None:
        """End the line being written and leave exactly one blank line."""
        self._undim()
        newlines = len(self._tail) - len(self._tail.rstrip("\n"))
        self._write("\n" * (2 - newlines))

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
            self._write(f"{i + 1}. {steps[i].title}\n")
        self._steps_printed = ready

    def _label(self, turn: AssistantTurn, note: str = "") -> None:
        """The label over the reasoning ("Thought for N seconds"), once, on its own with a blank line around."""
        if self.outline:
            self._print_steps()
        label = labels.reasoning_label(turn)
        if label:
            self._blank_line()
            self._write(f"{note}{self._style(BOLD)}{label}{self._style(RESET)}\n\n")
        self._labelled = True

    # -- the live view -------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the status line and start its clock (terminals only)."""
        if self.status is None:
            return
        with self._lock:
            self.status.open()
            self._tick()
            self.out.flush()
        self._ticker = threading.Thread(target=self._tick_every_second, name="ask-status", daemon=True)
        self._ticker.start()

    def _tick_every_second(self) -> None:
        while not self._done.wait(0.25):
            with self._lock:
                self._tick()
                self.out.flush()

    def _tick(self) -> None:
        if self.status is None:
            return
        rec = self.recorder
        if rec.thinking:
            text = f"Thinking… {int(rec.thought_so_far() or 0)}s"
        elif rec.timings.first_token is None:
            text = f"Waiting for the model… {int(rec.elapsed)}s"
        else:
            text = f"Answering… {int(rec.elapsed - rec.timings.first_token)}s"
        self.status.show(text)

    def on_events(self, events: list[SplitEvent]) -> None:
        with self._lock:
            for ev in events:
                kind = ev.kind
                text = ev.text
                if kind == "reasoning" and self.outline:
                    self._print_steps()
                    self._side = "reasoning"
                elif kind == "reasoning":
                    if self._side == "answer":  # thinking again after the answer began: a paragraph of its own
                        self._blank_line()
                        text = text.lstrip()
                    if not self._dimmed:
                        self.out.write(self._style(DIM))
                        self._dimmed = True
                    self._write(text)
                    self._side = "reasoning"
                elif kind in ("answer", "provisional"):
                    if self._side == "reasoning" and self._labelled:  # the answer resumes below it
                        self._blank_line()
                        text = text.lstrip()
                    self._undim()
                    self._write(text)
                    self._side = "answer"
                elif kind == "reclassified":
                    if ev.text.strip():
                        self._label(self.recorder.snapshot(), note="(the text above was the model's reasoning)\n")
                    self._side = None
                elif kind == "reasoning_end" and not self._labelled:
                    self._label(self.recorder.snapshot())
            self._tick()
            self.out.flush()

    def finish(self, turn: AssistantTurn) -> None:
        """The final label (if the reasoning never got one), a line end, the status line gone, the stats."""
        self._done.set()
        if self._ticker is not None:
            self._ticker.join()
        with self._lock:
            if self.status is not None:
                self.status.close()
            if not self._labelled:  # the reasoning never closed: how it ended is in the label
                self._label(turn)
            line = labels.stats_line(turn)
            if line:
                self._blank_line()
                self._write(f"{self._style(DIM)}{line}{self._style(RESET)}\n")
            else:
                self._undim()
                self._newline()
            self.out.flush()


def _terminal_rows(out: TextIO) -> int:
    try:
        return os.get_terminal_size(out.fileno()).lines
    except (AttributeError, OSError, ValueError):
        return 0
