"""Pydantic data models shared by the CLI, the UI, the store and the exports.

These are the *finished* shapes. The streaming hot path (SSE, splitter, turn
runner) works on plain strings and small dataclasses and only builds these at
save points, because constructing a validated model per token would dominate
the cost of a fast stream.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from viewer.labels import reasoning_label, thought_label
from viewer.outline import ReasoningStats, Step, outline_and_stats, stats_of

__all__ = [
    "AssistantTurn",
    "Conversation",
    "EndpointProfile",
    "ErrorInfo",
    "Message",
    "Timings",
    "Usage",
    "thought_label",  # re-exported: callers that only know a duration (the live view) use it
]

Role = Literal["system", "user", "assistant"]
TurnStatus = Literal["streaming", "done", "stopped", "error", "cut_off"]
HistoryPolicy = Literal["strip", "inline", "reasoning_content", "reasoning"]


def new_id() -> str:
    """Short random ids: safe in URLs, unique enough for one person's history."""
    return uuid.uuid4().hex[:12]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", validate_assignment=False)


class Usage(_Model):
    """Token counts. `approximate` is True when counted from deltas, not reported by the server."""

    prompt_tokens: int | None = None
    reasoning_tokens: int | None = None
    answer_tokens: int | None = None
    total_tokens: int | None = None
    approximate: bool = True

    @property
    def completion_tokens(self) -> int | None:
        if self.reasoning_tokens is None and self.answer_tokens is None:
            return None
        return (self.reasoning_tokens or 0) + (self.answer_tokens or 0)


class Timings(_Model):
    """Moments of a turn, in seconds after the request was sent (monotonic clock).

    Kept as offsets rather than wall-clock times so that the durations stay right
    even if the system clock jumps during a long generation.

    `reasoning_spans` lists every stretch of thinking as (start, end): more than one when the model
    thinks again after it began answering (interleaved thinking). Rows saved before spans were
    recorded have none; then `reasoning_start`..`reasoning_end` is the one stretch.
    """

    started_at: datetime = Field(default_factory=utc_now)
    first_byte: float | None = None
    reasoning_start: float | None = None
    reasoning_end: float | None = None
    answer_start: float | None = None
    end: float | None = None
    reasoning_spans: list[tuple[float, float]] = Field(default_factory=list)

    @property
    def first_token(self) -> float | None:
        marks = [m for m in (self.reasoning_start, self.answer_start) if m is not None]
        return min(marks) if marks else None

    @property
    def waited_s(self) -> float | None:
        """Time to the first token: prefill, queueing, network. Not thinking."""
        return self.first_token if self.first_token is not None else self.end

    @property
    def thought_s(self) -> float | None:
        """Time spent thinking: every stretch of reasoning added up."""
        if self.reasoning_spans:
            return sum(max(0.0, end - start) for start, end in self.reasoning_spans)
        if self.reasoning_start is None:
            return None
        stop = self.reasoning_end if self.reasoning_end is not None else self.end
        return None if stop is None else max(0.0, stop - self.reasoning_start)

    @property
    def answered_s(self) -> float | None:
        """First answer token → end, less the thinking done after the answer began."""
        if self.answer_start is None or self.end is None:
            return None
        a0, end = self.answer_start, self.end
        thinking = sum(max(0.0, min(e, end) - max(s, a0)) for s, e in self.reasoning_spans)
        return max(0.0, end - a0 - thinking)

    @property
    def total_s(self) -> float | None:
        return self.end

    def summary(self) -> dict[str, float | None]:
        """The four durations the CLI's JSON and the stats line report."""

        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 3)

        return {
            "waited_s": r(self.waited_s),
            "thought_s": r(self.thought_s),
            "answered_s": r(self.answered_s),
            "total_s": r(self.total_s),
        }


class ErrorInfo(_Model):
    """A failure, already phrased for a person (`message` is one line)."""

    kind: str
    message: str
    status: int | None = None
    server_message: str | None = None


class AssistantTurn(_Model):
    id: str = Field(default_factory=new_id)
    reasoning: str = ""
    answer: str = ""
    raw: str = ""
    family: str | None = None
    model: str | None = None
    finish_reason: str | None = None
    status: TurnStatus = "streaming"
    stopped: bool = False
    unfinished: bool = False
    """The stream ended while still inside the reasoning section."""
    cut_off: bool = False
    """The stream ended without `[DONE]` or a finish reason."""
    error: ErrorInfo | None = None
    timings: Timings = Field(default_factory=Timings)
    usage: Usage = Field(default_factory=Usage)
    malformed_chunks: int = 0
    request_params: dict = Field(default_factory=dict)
    outline: list[Step] = Field(default_factory=list)
    """The reasoning's steps (`viewer.outline`); computed on load for turns stored before outlines existed."""
    reasoning_stats: ReasoningStats | None = None
    """Counts over the steps; None only transiently (filled in by the validator below)."""
    step_titles: dict[str, str] = Field(default_factory=dict)
    """Titles written by a titler model (`viewer.titler`), keyed by the step's `start` as a string."""
    titler_note: str | None = None
    """Why model-written titles are missing (one quiet line), if the titler failed or was too slow."""

    @model_validator(mode="after")
    def _fill_outline(self) -> AssistantTurn:
        """Old rows (and turns built without an outline) get theirs from the reasoning text: one linear pass."""
        if self.reasoning_stats is None:
            if self.reasoning and not self.outline:
                self.outline, self.reasoning_stats = outline_and_stats(self.reasoning, self.usage.reasoning_tokens)
            else:
                self.reasoning_stats = stats_of(self.outline, len(self.reasoning), self.usage.reasoning_tokens)
        return self

    def step_title(self, step: Step) -> str:
        """The title to show for `step`: the model-written one if there is one, else the heuristic one."""
        return self.step_titles.get(str(step.start)) or step.title

    @property
    def reasoning_cut_by_budget(self) -> bool:
        """The token budget ran out while the model was still thinking."""
        return (
            self.finish_reason == "length"
            and (self.unfinished or not self.answer.strip())
            and bool(self.reasoning.strip())
        )

    @property
    def thought_label(self) -> str:
        """The label over the reasoning ("" when there is none); see `viewer.labels.reasoning_label`."""
        return reasoning_label(self) or ""


class Message(_Model):
    id: str = Field(default_factory=new_id)
    role: Role
    content: str = ""
    turn: AssistantTurn | None = None
    versions: list[AssistantTurn] = Field(default_factory=list)
    """Earlier replies in this assistant message's place, oldest first: Regenerate and Retry keep them
    (issue 10, item 7). The message's `turn` is the newest, shown by default."""
    created_at: datetime = Field(default_factory=utc_now)


class Conversation(_Model):
    id: str = Field(default_factory=new_id)
    title: str = "New chat"
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)
    endpoint: str | None = None
    model: str | None = None
    system_prompt: str | None = None
    messages: list[Message] = Field(default_factory=list)


class EndpointProfile(_Model):
    """Where to send requests. Holds the *name* of the key's environment variable, never the key."""

    name: str
    base_url: str
    api_key_env: str = "OPENAI_API_KEY"
    default_model: str | None = None
    history_policy: HistoryPolicy = "strip"
    reasoning_start_marker: str | None = None
    reasoning_end_marker: str | None = None
