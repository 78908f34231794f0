"""What a turn is called: the label over its reasoning, the notes under it, and its stats line.

One module so that `reasoning-viewer ask`, the app and the exports say the same thing about the same turn.
No Streamlit here (the terminal view imports it), and no pydantic model is built: these functions only read
an `AssistantTurn`.

A label says what happened. A turn that ended cleanly is "Thought for N seconds", whatever its finish
reason (`stop`, `tool_calls`, `function_call`, harmony's `<|call|>`), even if the reasoning section never
closed: the model ended its turn. Only when the turn ended abnormally while the model was still thinking
does the label say how: "Stopped after 6 s of thinking", "Token budget ran out after …", "Server error
after …", "Connection cut after …". A turn whose reasoning trims to nothing has no label at all.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from viewer.models import AssistantTurn

__all__ = [
    "Note",
    "end_notes",
    "ending",
    "reasoning_label",
    "stats_line",
    "thought_label",
    "tidy",
    "tokens_per_second",
]

# Error kinds (errors.KINDS) by what a person would call them.
_CONNECTION_KINDS = frozenset({"cut_off", "broken", "connect", "connect_timeout", "dns"})
_SILENT_KINDS = frozenset({"read_timeout"})
TOOL_FINISHES = frozenset({"tool_calls", "function_call", "tool_use"})

# How an abnormal ending reads while the model was still thinking: "<this> after 6 s of thinking".
_CUT_SHORT = {
    "stopped": "Stopped",
    "budget": "Token budget ran out",
    "filtered": "Content filter ended it",
    "server_error": "Server error",
    "connection": "Connection cut",
    "silent": "Server went silent",
    "interrupted": "Interrupted",
}


class Note(NamedTuple):
    """One line under a turn. `level` is how loudly to show it: "error", "warning" or "info"."""

    kind: str
    level: str
    text: str


def minutes_seconds(n: int) -> str:
    """A duration of a minute or more in whole seconds, as '3m 49s' ('4m' on the minute; '1h 2m 5s' past an
    hour): "229 seconds" makes the reader divide by 60 (issue 10, item 10)."""
    hours, rest = divmod(n, 3600)
    minutes, secs = divmod(rest, 60)
    parts = (
        ([f"{hours}h"] if hours else [])
        + ([f"{minutes}m"] if minutes or hours else [])
        + ([f"{secs}s"] if secs else [])
    )
    return " ".join(parts)


def thought_label(seconds: float | None) -> str:
    """'Thought for N seconds', the DeepSeek app's wording, rounded to whole seconds with a minimum of 1;
    from a minute on, 'Thought for 3m 49s' (`minutes_seconds`).

    "Thought for 0 seconds" reads as if nothing happened when the model did reason.
    """
    if seconds is None:
        return "Thought"
    n = max(1, round(seconds))
    if n >= 60:
        return f"Thought for {minutes_seconds(n)}"
    return f"Thought for {n} second{'' if n == 1 else 's'}"


def ending(turn: AssistantTurn) -> str:
    """How the turn ended, in one word: streaming, stopped, server_error, connection, silent, budget,
    filtered or done (a clean finish, whatever the finish reason)."""
    if turn.status == "streaming":
        return "streaming"
    if turn.stopped:
        return "stopped"
    if turn.error is not None:
        if turn.error.kind in _CONNECTION_KINDS:
            return "connection"
        return "silent" if turn.error.kind in _SILENT_KINDS else "server_error"
    if turn.cut_off:
        return "connection"
    if turn.finish_reason == "length":
        return "budget"
    if turn.finish_reason == "content_filter":
        return "filtered"
    return "done"


def _still_thinking(turn: AssistantTurn) -> bool:
    """The stream ended inside the reasoning section (an interrupted turn never got to an answer)."""
    return turn.unfinished or (turn.status == "streaming" and turn.timings.answer_start is None)


def reasoning_label(turn: AssistantTurn, *, interrupted: bool = False) -> str | None:
    """The label over the reasoning section, or None when there is no reasoning to show.

    `interrupted`: the turn was saved mid-stream by an app that is gone (the UI knows; the turn does not).
    """
    if not turn.reasoning.strip():
        return None
    seconds = turn.timings.thought_s
    how = "interrupted" if interrupted else ending(turn)
    if how in _CUT_SHORT and _still_thinking(turn):
        if seconds is None:
            return f"{_CUT_SHORT[how]} while thinking"
        n = max(1, round(seconds))
        return f"{_CUT_SHORT[how]} after {minutes_seconds(n) if n >= 60 else f'{n} s'} of thinking"
    return thought_label(seconds)


def _budget(turn: AssistantTurn) -> str:
    value = turn.request_params.get("max_tokens") or turn.request_params.get("max_completion_tokens")
    return f"max_tokens={value or 'server default'}"


def end_notes(turn: AssistantTurn, *, interrupted: bool = False) -> list[Note]:
    """What to say under a turn about how it ended (nothing for a plain, complete reply)."""
    notes: list[Note] = []
    if interrupted:
        text = "This reply was interrupted (the app stopped while it streamed). The partial text is kept."
        notes.append(Note("interrupted", "warning", text))
    elif turn.error is not None:
        notes.append(Note("error", "error", tidy(turn.error.message)))
    elif turn.stopped:
        notes.append(Note("stopped", "info", "Stopped. The partial reply is kept."))
    elif turn.cut_off:
        text = "The reply was cut off: the stream ended without a finish reason. The partial text is kept."
        notes.append(Note("cut_off", "warning", text))
    if notes or turn.status == "streaming":
        return notes
    finish = turn.finish_reason
    if finish == "length":
        if turn.reasoning_cut_by_budget:
            text = (
                f"The token budget ({_budget(turn)}) ran out while the model was still thinking, "
                "so there is no answer yet."
            )
        else:
            text = f"The token budget ({_budget(turn)}) ran out before the answer was finished."
        notes.append(Note("budget", "warning", text))
    elif finish == "content_filter":
        notes.append(Note("filtered", "warning", "The server's content filter ended the reply."))
    elif finish in TOOL_FINISHES:
        text = f"The model ended its turn to call a tool (finish reason: {finish}); this viewer does not run tools."
        notes.append(Note("tool_call", "info", text))
    elif not turn.answer and not turn.reasoning:
        notes.append(Note("empty", "warning", "The model returned an empty reply."))
    return notes


def tokens_per_second(turn: AssistantTurn) -> float | None:
    """Generation speed after the first token: (reasoning + answer tokens) / time spent producing them."""
    t = turn.timings
    if t.end is None or t.first_token is None:
        return None
    span = t.end - t.first_token
    tokens = turn.usage.completion_tokens
    if not tokens or span <= 0:
        return None
    return tokens / span


def stats_line(turn: AssistantTurn) -> str:
    """waited · thought · answered · tokens · tok/s · model · finish reason, in one quiet line."""
    t = turn.timings
    parts = []
    if t.waited_s is not None:
        parts.append(f"waited {t.waited_s:.1f}s")
    thought = t.thought_s if turn.reasoning.strip() else None  # rows saved before blank reasoning meant none
    if thought is not None:
        parts.append(f"thought {thought:.1f}s")
    if t.answered_s is not None:
        parts.append(f"answered {t.answered_s:.1f}s")
    u = turn.usage
    approx = "≈" if u.approximate else ""
    if u.reasoning_tokens:
        parts.append(f"{approx}{u.reasoning_tokens} reasoning tokens")
    if u.answer_tokens is not None:
        parts.append(f"{approx}{u.answer_tokens} answer tokens")
    tps = tokens_per_second(turn)
    if tps:
        parts.append(f"{tps:.1f} tok/s")
    if turn.model:
        parts.append(turn.model)
    if turn.finish_reason:
        parts.append(f"finish: {turn.finish_reason}")
    return " · ".join(parts)


_DOUBLED_STOP = re.compile(r"(?<![.…])([.!?])\.(?!\.)")


def tidy(text: str) -> str:
    """A message as one clean line: a sentence that already ended gets no second full stop ("1s.." → "1s.").

    Messages are often built from a server's sentence plus ours; "..." and "…" are left alone.
    """
    return _DOUBLED_STOP.sub(r"\1", " ".join(text.split()))
