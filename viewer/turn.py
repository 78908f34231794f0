"""One assistant turn in the making: deltas + the reasoning splitter + a clock.

This is the single place that decides what "waited", "thought" and "answered"
mean, so the CLI, the UI and the store all report the same numbers:

* waited   = request sent → first token (reasoning or answer). Prefill and queueing, not thinking.
* thought  = the sum of every stretch of reasoning: a stretch runs from its first reasoning token to the
             closing marker, the first answer token after it, or the end of the stream.
* answered = first answer token → end of stream, less the stretches of reasoning after it (interleaved
             thinking: reasoning, a bit of answer, reasoning again, the rest of the answer).

Reasoning that trims to nothing is no reasoning: it has no stretch, so `thought_s` stays None. Text that
arrives provisionally (no opening marker yet) counts as reasoning from its first character once it is
reclassified, because that is when the model started thinking.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field

from viewer.client import ChatClient, Delta
from viewer.errors import ViewerError
from viewer.labels import tokens_per_second
from viewer.models import AssistantTurn, Timings, Usage
from viewer.outline import OutlineBuilder, ReasoningStats, Step
from viewer.reasoning import ReasoningSplitter, SplitEvent
from viewer.redact import redact_value
from viewer.titler import Titler

__all__ = ["TurnOptions", "TurnRecorder", "run_turn", "safe_params", "tokens_per_second"]

EventCallback = Callable[[list[SplitEvent]], None]


@dataclass
class TurnOptions:
    """What the splitter should know in advance about this model."""

    markers: list[tuple[str, str]] | None = None
    assume_open: bool = False


@dataclass
class TurnRecorder:
    """Feeds deltas to the splitter and notes when each phase started and ended.

    Per delta it does O(len(delta)) work and builds no pydantic objects; the
    `AssistantTurn` is only assembled by `snapshot()` at save points.
    """

    model: str | None = None
    options: TurnOptions = field(default_factory=TurnOptions)
    request_params: dict = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic
    titler: Titler | None = None
    """Optional: asks a model for each finished step's title in the background (viewer/titler.py)."""

    def __post_init__(self) -> None:
        self.splitter = ReasoningSplitter(self.options.markers, assume_open=self.options.assume_open, clock=self.clock)
        self.t0 = self.clock()
        self.timings = Timings()
        self._raw: list[str] = []
        self._reasoning_deltas = 0
        self._answer_deltas = 0
        self._provisional_deltas = 0
        self._server_usage: dict | None = None
        self.finish_reason: str | None = None
        self.finished = False
        self.stopped = False
        self.cut_off = False
        self.error: ViewerError | None = None
        self.malformed_chunks = 0
        self._provisional_start: float | None = None
        self._stretch_start: float | None = None  # the reasoning stretch under way (offset), if any
        self.outline = OutlineBuilder()  # the reasoning's steps, fed in `_note` (viewer/outline.py)
        self._titled = 0  # steps handed to the titler

    # -- streaming -----------------------------------------------------------------

    def mark_first_byte(self, at: float | None = None) -> None:
        if self.timings.first_byte is None:
            self.timings.first_byte = (at if at is not None else self.clock()) - self.t0

    def feed(self, delta: Delta) -> list[SplitEvent]:
        """Split one delta; returns the splitter's events (their `t` is absolute monotonic time)."""
        if delta.usage:
            self._server_usage = delta.usage
        if delta.finish_reason:
            self.finish_reason = delta.finish_reason
        if delta.model and not self.model:
            self.model = delta.model
        content = delta.content
        if content:
            self._raw.append(content)
        elif not delta.reasoning:
            return []
        if self.timings.first_byte is None:
            self.mark_first_byte()
        events = self.splitter.feed(content, delta.reasoning)
        if len(events) == 1:  # most deltas: more text on the side that is already under way
            kind = events[0].kind
            if kind == "reasoning" and self._stretch_start is not None:
                self._reasoning_deltas += 1
                self.outline.feed(events[0].text)
                return events
            if kind == "answer" and self._stretch_start is None and self.timings.answer_start is not None:
                if not events[0].text.isspace():
                    self._answer_deltas += 1
                return events
        self._note(events)
        return events

    def feed_many(self, deltas: list[Delta]) -> list[SplitEvent]:
        """Split the deltas of one network read. A run of plain text deltas (one field, no finish reason, no
        usage) whose text crosses no marker goes to the splitter as one piece: the same split (it never
        depends on chunking), at a fraction of the cost per delta, with fewer events; the run's deltas are
        counted on the side their text went to.
        """
        if len(deltas) == 1:
            return self.feed(deltas[0])
        events: list[SplitEvent] = []
        i, n = 0, len(deltas)
        while i < n:
            first = deltas[i]
            j = i + 1
            field = _plain_field(first)
            if field is not None:
                while j < n and _plain_field(deltas[j]) == field:
                    j += 1
            if field is not None and j - i > 1:
                texts: list[str] = [getattr(d, field) for d in deltas[i:j]]
                text = "".join(texts)
                whole = (
                    self.splitter.takes_whole(content=text)
                    if field == "content"
                    else self.splitter.takes_whole(reasoning=text)
                )
                if whole:
                    if first.model and not self.model:
                        self.model = first.model
                    events += self._feed_text(text, field, texts)
                    i = j
                    continue
            for k in range(i, j):
                events += self.feed(deltas[k])
            i = j
        return events

    def _feed_text(self, text: str, field: str, texts: list[str]) -> list[SplitEvent]:
        if field == "content":
            self._raw.append(text)
        if self.timings.first_byte is None:
            self.mark_first_byte()
        events = self.splitter.feed(content=text) if field == "content" else self.splitter.feed(reasoning=text)
        self._note(events, sum(1 for t in texts if not t.isspace()))  # as one by one: blank deltas don't count
        return events

    def _note(self, events: list[SplitEvent], deltas: int = 1) -> None:
        """Record phase boundaries and count deltas per side (the ≈ token count when the server sends no usage)."""
        reasoning_text = answer_text = provisional_text = reclassified = False
        timings = self.timings
        for ev in events:
            kind = ev.kind
            if kind == "reasoning":
                self.outline.feed(ev.text)
            elif kind == "reclassified":  # the provisional text was reasoning all along (as shown: trim it)
                self.outline.feed(ev.text.strip())
            elif kind == "reasoning_end":
                self.outline.close()
            if kind == "reasoning":
                reasoning_text = True
                if self._stretch_start is None:
                    self._stretch_start = ev.t - self.t0
                    if timings.reasoning_start is None:
                        timings.reasoning_start = self._stretch_start
            elif kind == "answer":
                answer_text = answer_text or not ev.text.isspace()
                if self._stretch_start is not None:
                    self._close_stretch(ev.t - self.t0)
                if timings.answer_start is None:
                    timings.answer_start = ev.t - self.t0
            elif kind == "provisional":
                provisional_text = provisional_text or not ev.text.isspace()
                if self._provisional_start is None:
                    self._provisional_start = ev.t - self.t0
                if timings.answer_start is None:
                    timings.answer_start = ev.t - self.t0
            elif kind == "reclassified":
                reclassified = True
                if ev.text.strip():
                    # The provisional text was thinking all along: thinking began with it.
                    start = self._provisional_start if self._provisional_start is not None else ev.t - self.t0
                    timings.reasoning_start = self._stretch_start = start
                    timings.answer_start = None
                self._reasoning_deltas += self._provisional_deltas
                self._provisional_deltas = 0
            elif kind == "reasoning_start":
                if timings.reasoning_start is None and self._provisional_start is None:
                    timings.reasoning_start = self._stretch_start = ev.t - self.t0
            elif kind == "reasoning_end":
                timings.reasoning_end = ev.t - self.t0
                if self._stretch_start is not None:
                    self._close_stretch(timings.reasoning_end)
        # One delta is one (approximate) token, counted on the side its text ended up on; a delta that shows
        # nothing there (a marker, whitespace) is not counted.
        if reasoning_text or (provisional_text and reclassified):
            self._reasoning_deltas += deltas
        elif answer_text:
            self._answer_deltas += deltas
        elif provisional_text:
            self._provisional_deltas += deltas

    def _close_stretch(self, end: float) -> None:
        start = self._stretch_start
        if start is not None:
            self.timings.reasoning_spans.append((start, max(end, start)))
        self._stretch_start = None

    def finish(
        self,
        *,
        error: ViewerError | None = None,
        stopped: bool = False,
        cut_off: bool = False,
    ) -> list[SplitEvent]:
        """Close the splitter and stamp the end. Safe to call once; later calls are no-ops."""
        if self.finished:
            return []
        self.finished = True
        self.error = error
        self.stopped = stopped
        self.cut_off = cut_off or (error is not None and error.kind == "cut_off")
        events = self.splitter.close()
        self._note(events)
        self.outline.close()
        self._answer_deltas += self._provisional_deltas
        self._provisional_deltas = 0
        self.timings.end = self.clock() - self.t0
        if self._stretch_start is not None:  # thinking until the stream stopped
            self._close_stretch(self.timings.end)
        if self.splitter.in_reasoning or self.splitter.unfinished:
            # Thinking never closed: it lasted until the stream stopped.
            self.timings.reasoning_end = None
        return events

    # -- reading -------------------------------------------------------------------

    @property
    def reasoning(self) -> str:
        return self.splitter.reasoning

    @property
    def answer(self) -> str:
        return self.splitter.answer

    @property
    def elapsed(self) -> float:
        return self.clock() - self.t0

    @property
    def thinking(self) -> bool:
        """A stretch of reasoning is under way (its text has started and no answer followed yet)."""
        return self._stretch_start is not None

    def thought_so_far(self) -> float | None:
        """Seconds of thinking up to now (all stretches), without building a snapshot: for a ticking clock."""
        stretch = self._stretch_start  # read once: the worker thread may close the stretch meanwhile
        spans = list(self.timings.reasoning_spans)
        if not spans and stretch is None:
            return None
        total = sum(end - start for start, end in spans)
        if stretch is not None and (not spans or spans[-1][0] != stretch):  # not counted twice if just closed
            total += max(0.0, self.elapsed - stretch)
        return total

    def usage(self) -> Usage:
        """Server-reported counts when sent (exact); otherwise counts of deltas (approximate)."""
        approx_r = self._reasoning_deltas
        approx_a = self._answer_deltas + self._provisional_deltas
        u = self._server_usage or {}
        completion = _count(u.get("completion_tokens"))
        details = u.get("completion_tokens_details") or {}
        reasoning_tokens = _count(details.get("reasoning_tokens")) if isinstance(details, dict) else None
        prompt = _count(u.get("prompt_tokens"))
        total = _count(u.get("total_tokens"))
        if completion is None:
            reasoning, answer, approximate = approx_r, approx_a, True
        elif reasoning_tokens is not None:
            reasoning, answer, approximate = reasoning_tokens, max(0, completion - reasoning_tokens), False
        elif approx_r == 0:
            reasoning, answer, approximate = 0, completion, False
        else:  # the server gave a total but no split: share it out in proportion to the deltas
            reasoning = round(completion * approx_r / max(1, approx_r + approx_a))
            answer, approximate = completion - reasoning, True
        return Usage(
            prompt_tokens=prompt,
            reasoning_tokens=reasoning,
            answer_tokens=answer,
            total_tokens=total if completion is not None else None,
            approximate=approximate,
        )

    def status(self) -> str:
        if not self.finished:
            return "streaming"
        if self.stopped:
            return "stopped"
        if self.error is not None and not self.cut_off:
            return "error"
        if self.cut_off:
            return "cut_off"
        return "done"

    def snapshot(self) -> AssistantTurn:
        """The turn as it stands now (streaming or finished), as a model to save or render."""
        timings = self.timings.model_copy()
        timings.reasoning_spans = list(timings.reasoning_spans)
        if not self.finished:
            timings.end = self.clock() - self.t0  # still streaming: durations so far
            if self._stretch_start is not None:
                timings.reasoning_spans.append((self._stretch_start, timings.end))
        s = self.splitter
        steps, stats = self.outline_now(s.reasoning)
        return AssistantTurn(
            reasoning=s.reasoning,
            answer=s.answer,
            raw="".join(self._raw),
            family=s.family,
            model=self.model,
            finish_reason=self.finish_reason,
            status=self.status(),  # type: ignore[arg-type]
            stopped=self.stopped,
            unfinished=bool(self.finished and s.unfinished),
            cut_off=self.cut_off,
            error=self.error.to_info() if self.error is not None else None,
            timings=timings,
            usage=self.usage(),
            malformed_chunks=self.malformed_chunks,
            request_params=self.request_params,
            outline=steps,
            reasoning_stats=stats,
            step_titles=self.titler.titles() if self.titler is not None else {},
            titler_note=self.titler.note if self.titler is not None else None,
        )

    def outline_now(self, reasoning: str) -> tuple[list[Step], ReasoningStats]:
        """Copies of the outline's steps and the stats, as of now (the builder keeps growing its last step).

        If the builder saw different text from the splitter's reasoning (reasoning resumed after its end),
        the outline is rebuilt from the reasoning once, so it always describes the stored text.
        """
        if self.outline.characters != len(reasoning):
            self.outline = OutlineBuilder()
            self.outline.feed(reasoning)
            if self.finished or not self.splitter.in_reasoning:
                self.outline.close()
        steps = [dataclasses.replace(step) for step in self.outline.steps]
        if self.titler is not None:  # hand over the steps that became final since the last save point
            for step in steps[self._titled : self.outline.final_count]:
                self.titler.submit(step.start, reasoning[step.start : step.start + step.size])
            self._titled = max(self._titled, self.outline.final_count)
        return steps, self.outline.stats(self.usage().reasoning_tokens)


def run_turn(
    client: ChatClient,
    request: dict,
    *,
    options: TurnOptions | None = None,
    on_events: EventCallback | None = None,
    on_stream: Callable[[object], None] | None = None,
    stop: threading.Event | None = None,
    recorder: TurnRecorder | None = None,
    lock: AbstractContextManager | None = None,
) -> TurnRecorder:
    """Stream one chat completion through a recorder until it ends, fails or is stopped.

    Errors never escape: they are recorded on the turn, with the partial text
    kept, because losing what the model already wrote is worse than any error.
    `on_stream` receives the open stream so another thread can close it at once
    (Stop button): closing the connection is what makes vLLM or llama.cpp
    abort the generation and free the slot. `lock`, if given, is held while
    each delta is split and handed to `on_events`, so that another thread can
    read the recorder consistently.
    """
    guard = lock if lock is not None else contextlib.nullcontext()
    rec = recorder or TurnRecorder(
        model=request.get("model"), options=options or TurnOptions(), request_params=safe_params(request)
    )
    stream = None
    error: ViewerError | None = None
    timings, feed = rec.timings, rec.feed_many
    try:
        stream = client.stream_chat(request)
        if on_stream is not None:
            on_stream(stream)
        for deltas in stream.batches():  # all that one network read brought: split at once
            if stop is not None and stop.is_set():
                break
            if timings.first_byte is None and stream.first_byte_at is not None:
                rec.mark_first_byte(stream.first_byte_at)
            with guard:
                events = feed(deltas)
                if events and on_events is not None:
                    on_events(events)
    except ViewerError as exc:
        error = exc
    except Exception as exc:  # a closed-by-Stop stream may raise anything from httpx internals
        if stop is None or not stop.is_set():
            error = ViewerError("broken", f"The stream failed unexpectedly: {exc}")
    finally:
        if stream is not None:
            rec.malformed_chunks = stream.malformed_chunks  # the transport skipped them; the turn records how many
            stream.close()
    stopped = stop is not None and stop.is_set()
    if stopped:
        error = None
    with guard:
        events = rec.finish(error=error, stopped=stopped)
        if events and on_events is not None:
            on_events(events)
    return rec


def _plain_field(delta: Delta) -> str | None:
    """The one field ("content" or "reasoning") a delta carries text in, if it carries nothing else."""
    if delta.usage or delta.finish_reason:
        return None
    if delta.content:
        return None if delta.reasoning else "content"
    return "reasoning" if delta.reasoning else None


def _count(value: object) -> int | None:
    """A token count as servers should send it; anything else (a string, a float, a bool) is dropped."""
    return value if type(value) is int and value >= 0 else None


def safe_params(request: dict) -> dict:
    """The request as it is worth remembering: without messages (stored separately) or anything secret.

    Extra request JSON is free-form, so credentials are dropped at any depth by the one rule set for
    secrets, `viewer.redact.redact_value`.
    """
    cleaned: dict = redact_value({k: v for k, v in request.items() if k not in {"messages", "stream"}})
    return cleaned
