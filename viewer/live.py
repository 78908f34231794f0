"""Turns that stream in a background thread, outliving the page that started them.

A Streamlit script run dies whenever the user reloads, closes the tab or
clicks anything. If the HTTP stream lived inside the script run, each of those
would lose the reply. So each turn streams in its own thread, saves itself to
the store as it goes, and the page merely *watches* it: a reloaded page finds
the running turn in the registry and picks up where the old one was.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from viewer.client import ChatClient, ChatStream
from viewer.models import AssistantTurn, thought_label
from viewer.reasoning import SplitEvent
from viewer.store import Store
from viewer.turn import TurnOptions, TurnRecorder, run_turn, safe_params

SAVE_EVERY_S = 3.0


@dataclass
class LiveView:
    """What a watcher needs, copied under the lock: pieces appended since it last looked."""

    reasoning_new: list[str]
    answer_new: list[str]
    answer_reset: bool
    reasoning_open: bool
    reasoning_done: bool
    done: bool
    elapsed: float
    thinking_for: float | None
    thought_label: str


@dataclass
class LiveTurn:
    """One assistant reply being generated for `conversation_id`, message `message_id`."""

    conversation_id: str
    message_id: str
    client: ChatClient
    request: dict
    store: Store
    options: TurnOptions = field(default_factory=TurnOptions)
    on_reclassified: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self.recorder = TurnRecorder(
            model=self.request.get("model"), options=self.options, request_params=safe_params(self.request)
        )
        self._lock = threading.RLock()  # held by the worker while it feeds, by watchers while they read
        self._stop = threading.Event()
        self._stream: ChatStream | None = None
        self.reasoning_parts: list[str] = []
        self.answer_parts: list[str] = []
        self.answer_generation = 0  # bumped when provisional answer text moves into reasoning
        self.reasoning_started = False
        self.reasoning_ended = False
        self.done = threading.Event()
        self.final: AssistantTurn | None = None
        self._last_save = 0.0
        self.save_error: str | None = None
        self.watchers = 0  # bumped each time a page starts watching; see `stop_unless_watched`
        self._thread = threading.Thread(target=self._run, name=f"turn-{self.message_id}", daemon=True)

    # -- control -------------------------------------------------------------------

    def start(self) -> LiveTurn:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop now: close the connection so the server aborts and frees its slot; keep what came."""
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.close()

    def attach(self) -> int:
        """A page starts (or restarts) watching this turn."""
        self.watchers += 1
        return self.watchers

    def stop_unless_watched(self, seen: int, delay: float, still_wanted: Callable[[], bool]) -> None:
        """Stop after `delay` unless another page run attached meanwhile or `still_wanted()` says no.

        Streamlit ends a script run the same way whether the user pressed Stop
        or merely touched a widget (the run is stopped, then a new one starts).
        Waiting a moment tells the two apart: a rerun re-attaches at once.
        """

        def decide() -> None:
            if self.watchers == seen and still_wanted():
                self.stop()

        timer = threading.Timer(delay, decide)
        timer.daemon = True
        timer.start()

    def wait(self, timeout: float | None = None) -> bool:
        return self.done.wait(timeout)

    # -- the worker ----------------------------------------------------------------

    def _run(self) -> None:
        try:
            run_turn(
                self.client,
                self.request,
                recorder=self.recorder,
                on_events=self._on_events,
                on_stream=self._on_stream,
                stop=self._stop,
                lock=self._lock,
            )
        finally:
            try:
                with self._lock:
                    self.final = self.recorder.snapshot()
                self._save(force=True)
            except Exception as exc:  # the page must never wait forever on a turn that cannot be saved
                self.save_error = f"The reply could not be saved: {exc}"
            finally:
                self.client.close()
                self.done.set()

    def _on_stream(self, stream: object) -> None:
        self._stream = stream  # type: ignore[assignment]
        if self._stop.is_set():
            self._stream.close()  # type: ignore[union-attr]

    def _on_events(self, events: list[SplitEvent]) -> None:
        """Called by the worker with the lock held (see run_turn's `lock`)."""
        save_now = reclassified = False
        for ev in events:
            kind = ev.kind
            if kind == "reasoning":
                self.reasoning_parts.append(ev.text)
                self.reasoning_started = True
            elif kind in ("answer", "provisional"):
                self.answer_parts.append(ev.text)
            elif kind == "reclassified":
                self.answer_parts.clear()
                self.answer_generation += 1
                self.reasoning_parts.append(ev.text)
                self.reasoning_started = reclassified = True
            elif kind == "reasoning_start":
                self.reasoning_started = True
            elif kind == "reasoning_end":
                self.reasoning_ended = save_now = True
        if reclassified and self.on_reclassified is not None:
            self.on_reclassified()
        if save_now or time.monotonic() - self._last_save >= SAVE_EVERY_S:
            self._save()

    def _save(self, force: bool = False) -> None:
        with self._lock:
            turn = self.final if self.final is not None else self.recorder.snapshot()
        self._last_save = time.monotonic()
        try:
            self.store.save_turn(self.conversation_id, self.message_id, turn)
        except Exception:
            if force:
                raise

    # -- watching ------------------------------------------------------------------

    def view(self, reasoning_from: int, answer_from: int, answer_generation: int) -> tuple[LiveView, int]:
        """Pieces after the given indexes. If the answer was reset (reclassified), it restarts at 0."""
        with self._lock:
            reset = answer_generation != self.answer_generation
            a_from = 0 if reset else answer_from
            t = self.recorder.timings
            elapsed = self.recorder.elapsed if self.final is None else (self.final.timings.end or 0.0)
            thinking_for = None
            if t.reasoning_start is not None:
                end = t.reasoning_end if t.reasoning_end is not None else elapsed
                thinking_for = max(0.0, end - t.reasoning_start)
            return (
                LiveView(
                    reasoning_new=self.reasoning_parts[reasoning_from:],
                    answer_new=self.answer_parts[a_from:],
                    answer_reset=reset,
                    reasoning_open=self.reasoning_started and not self.reasoning_ended,
                    reasoning_done=self.reasoning_ended,
                    done=self.done.is_set(),
                    elapsed=elapsed,
                    thinking_for=thinking_for,
                    thought_label=thought_label(thinking_for),
                ),
                self.answer_generation,
            )


class LiveRegistry:
    """Process-wide map conversation id → its latest turn, so any page (or a reloaded one) can find it.

    Holding only the latest turn per conversation bounds what it keeps; a new turn replaces the old one.
    """

    def __init__(self) -> None:
        self._lock = threading.RLock()  # held by the worker while it feeds, by watchers while they read
        self._turns: dict[str, LiveTurn] = {}

    def start(self, turn: LiveTurn) -> LiveTurn:
        with self._lock:
            current = self._turns.get(turn.conversation_id)
            if current is not None and not current.done.is_set():
                raise RuntimeError("a reply is already streaming in this conversation")
            self._turns[turn.conversation_id] = turn
        return turn.start()

    def get(self, conversation_id: str) -> LiveTurn | None:
        with self._lock:
            return self._turns.get(conversation_id)

    def running(self, conversation_id: str) -> LiveTurn | None:
        turn = self.get(conversation_id)
        return turn if turn is not None and not turn.done.is_set() else None
