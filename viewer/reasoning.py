"""Split a streamed model reply into reasoning and answer, one delta at a time.

Servers deliver a model's chain of thought either in a separate delta field (``reasoning_content`` /
``reasoning``) or inline in ``content`` between family-specific markers (``<think>``, ``[THINK]``,
harmony channels, ...). ``ReasoningSplitter`` is the one state machine that turns either into two growing
strings a UI can show as they are. The normative rules are "Conventions chosen" 1-14 in the project's
research notes (formats.md); the rule numbers are cited below.

Design choices that matter for the callers:

* Marker families are data (``FAMILIES``); the machine only knows "opener", "closer", "terminator" and
  "answer wrapper". gpt-oss harmony is the one family that needs a small sub-state (header vs body).
* Work per delta is O(len(delta)): only the new chunk plus a held-back tail shorter than the longest
  marker is ever scanned, and only at characters that can start a marker of the current phase.
* ``reasoning`` and ``answer`` only ever grow (prefix-extensions), except that ``answer`` is emptied once
  when provisional text is reclassified as reasoning (rule 4). Whitespace that a later rule could strip
  is held back instead of shown, so nothing the UI has drawn is ever taken back otherwise.
* Harmony ``commentary`` bodies (tool calls and preambles) go to the reasoning side: they are not the final
  answer, but hiding them would hide text the model produced.
* Reasoning that resumes after the answer started (interleaved field reasoning, harmony analysis after a
  final message) is appended to ``reasoning`` with plain "reasoning" events; where the two stretches would
  be glued ("now.The") a paragraph break is put between them. "reasoning_start" and "reasoning_end" are
  each emitted at most once per stream, and only around reasoning that has text: a section that trims to
  nothing (``<think>\n\n</think>``, a whitespace-only field delta) is no reasoning and emits neither.
* A marker counts only where it stands (rules 3, 4, 6): an opener after text is literal and only makes its
  own family's closers literal too; a closer of another prefill-capable family still proves reasoning.
* After a terminator ended a section (rule 14), that family's own closer, when it follows, is structure:
  it and the whitespace around it are dropped, never shown as answer text.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["FAMILIES", "HARMONY_TOKENS", "EventKind", "Family", "MarkerOp", "ReasoningSplitter", "SplitEvent"]

EventKind = Literal["reasoning_start", "reasoning", "reasoning_end", "answer", "provisional", "reclassified"]
"""What a `SplitEvent` says. Text kinds (`reasoning`, `answer`, `provisional`) append their text to that side;
`reclassified` moves all provisional answer text (its `text`) into the reasoning at once (rule 4);
`reasoning_start` / `reasoning_end` mark the section's bounds and carry no text."""

MarkerOp = Literal[
    "open",  # an opener: the reasoning section starts
    "close",  # the section's closer: the answer starts
    "reclassify",  # a prefill-capable closer with no opener: what came was reasoning (rule 4)
    "terminate",  # a terminator (<tool_call>) ends the section; it is answer-side text (rule 14)
    "absorb",  # the section's own closer after its terminator: structure, dropped (rule 14)
    "mark",  # a terminator met in provisional text: remembered in case a closer follows
    "settle",  # an opener after text: literal, and so is its family from then on (rule 6)
    "wrap_open",  # an answer wrapper opens: unwrap and trim (rule 11)
    "wrap_close",  # the wrapper closes
    "h_open",  # a harmony header starts (rule 12)
    "h",  # any other harmony control token (rule 12)
]
"""What a matched marker does in the current phase (the machine's operations; see docs/splitter-rules.md)."""


@dataclass(slots=True)
class SplitEvent:
    """One change to the split. Text kinds append; start/end kinds carry ``""``. `t`: monotonic seconds."""

    kind: EventKind
    text: str
    t: float


@dataclass(frozen=True, slots=True)
class Family:
    """How one model family marks its reasoning inside ``content``.

    ``prefill``: chat templates pre-fill the opener, so the closer alone proves that the text before it was
    reasoning (rule 4). ``terminators`` end reasoning and belong to the answer (rule 14). ``wrappers`` are
    (open, close, renamed family or None) pairs removed from the start of the answer (rule 11).
    """

    name: str
    openers: tuple[str, ...]
    closers: tuple[str, ...]
    prefill: bool = False
    terminators: tuple[str, ...] = ()
    wrappers: tuple[tuple[str, str, str | None], ...] = ()


FAMILIES: tuple[Family, ...] = (
    Family(
        "think",
        ("<think>",),
        ("</think>",),
        prefill=True,
        terminators=("<tool_call>",),
        wrappers=(("<answer>", "</answer>", "hunyuan"),),
    ),
    Family("thinking", ("<thinking>",), ("</thinking>",)),
    Family("reasoning", ("<reasoning>",), ("</reasoning>",)),
    Family("reason", ("<reason>",), ("</reason>",)),
    Family("thought", ("<thought>",), ("</thought>",)),
    Family(
        "begin_of_thought",
        ("<|begin_of_thought|>",),
        ("<|end_of_thought|>",),
        wrappers=(("<|begin_of_solution|>", "<|end_of_solution|>", None),),
    ),
    Family("mistral", ("[THINK]",), ("[/THINK]",), prefill=True),
    Family("seed", ("<seed:think>",), ("</seed:think>",), prefill=True),
    Family("kimi", ("◁think▷",), ("◁/think▷",)),
    Family("minimax_m3", ("<mm:think>",), ("</mm:think>",), prefill=True),
    # The word "thought" belongs to the marker; the newline after it is leading reasoning whitespace (rule 8).
    Family("gemma4", ("<|channel>thought",), ("<channel|>",)),
    Family(
        "granite",
        ("Here is my thought process:", "Here's my thought process:"),
        ("Here is my response:", "Here's my response:"),
    ),
)

HARMONY_TOKENS = (
    "<|start|>",
    "<|channel|>",
    "<|message|>",
    "<|constrain|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
)
_HARMONY_REASONING = frozenset({"analysis", "commentary"})
_HARMONY_END = frozenset({"<|end|>", "<|return|>", "<|call|>"})
_HEADER_CAP = 64  # a channel name is a word; never keep more of a header than this
_NON_WS = re.compile(r"\S")
_TEXT_KINDS = frozenset({"reasoning", "answer", "provisional"})

Action = tuple[MarkerOp, Any]  # (op, argument: a Family, a wrapper triple or a harmony token)


class _Matcher:
    """Exact matching of a small marker set at one position, with partial (held-back) tails.

    Markers are grouped by first character so that only positions holding such a character are examined,
    and the candidates there are tried longest first: a marker that might still become a longer one is
    held back rather than committed (so ``<think>`` never eats the start of ``<thinking>``).
    """

    __slots__ = ("actions", "by_first", "first")

    def __init__(self, actions: dict[str, Action]) -> None:
        self.actions = actions
        self.by_first: dict[str, list[str]] = {}
        for marker in sorted(actions, key=len, reverse=True):
            self.by_first.setdefault(marker[0], []).append(marker)
        self.first = re.compile("[" + "".join(re.escape(c) for c in self.by_first) + "]")

    def at(self, text: str, i: int, final: bool) -> tuple[str | None, bool]:
        """(full marker at i or None, whether text[i:] must be held because it may still grow into one)."""
        rest = len(text) - i
        full = None
        for marker in self.by_first.get(text[i], ()):
            if rest >= len(marker):
                if full is None and text.startswith(marker, i):
                    full = marker
            elif not final and marker.startswith(text[i:]):
                return None, True
        return full, False


def _matcher(actions: dict[str, Action]) -> _Matcher | None:
    return _Matcher(actions) if actions else None


# Phases of the content machine.
_START, _PROV, _REASON, _ANSWER_START, _ANSWER, _H_HEADER, _H_BODY = range(7)


class ReasoningSplitter:
    """Incremental splitter: ``feed()`` each streamed delta, ``close()`` at the end, read the two texts.

    ``markers``: user (start, end) pairs, tried before the built-in families (family ``"custom"``) and
    treated as prefill-capable. ``assume_open``: the template pre-filled the opener, so the stream is
    reasoning from its first character until a prefill-capable closer (an explicit opener at the start is
    still accepted and dropped).
    """

    def __init__(
        self,
        markers: list[tuple[str, str]] | None = None,
        *,
        assume_open: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        custom = []
        for start, end in markers or ():
            if not start or not end:
                raise ValueError("custom reasoning markers must be non-empty strings")
            custom.append(Family("custom", (start,), (end,), prefill=True))
        families = tuple(FAMILIES) + tuple(custom)  # later entries override: user pairs take priority
        prefill = [f for f in families if f.prefill]
        self._clock = clock
        self._assume_open = assume_open

        at_start: dict[str, Action] = {}
        if assume_open:
            for f in prefill:
                at_start.update({m: ("open", f) for m in f.openers})
                at_start.update({m: ("close", f) for m in f.closers})
        else:
            at_start["<|channel|>"] = ("h_open", "<|channel|>")
            at_start["<|start|>"] = ("h_open", "<|start|>")
            for f in families:
                at_start.update({m: ("open", f) for m in f.openers})
            for f in prefill:
                at_start.update({m: ("reclassify", f) for m in f.closers})
        any_close: dict[str, Action] = {}
        for f in prefill:
            any_close.update({m: ("terminate", f) for m in f.terminators})
            any_close.update({m: ("close", f) for m in f.closers})
        self._m_start = _matcher(at_start)
        # Families whose markers still count in provisional text (rule 6 removes one at a time).
        self._prov_families = [] if assume_open else [f for f in families if f.name != "granite"]
        self._m_prov = self._provisional_matcher()
        self._m_any_close = _matcher(any_close)
        self._m_harmony = _matcher({m: ("h", m) for m in HARMONY_TOKENS})
        self._m_reason: dict[Family, _Matcher | None] = {}
        self._m_wrap: dict[Family, _Matcher | None] = {}
        self._m_absorb: dict[Family, _Matcher | None] = {}
        for f in families:
            acts: dict[str, Action] = {m: ("terminate", f) for m in f.terminators}
            acts.update({m: ("close", f) for m in f.closers})
            self._m_reason[f] = _matcher(acts)
            self._m_wrap[f] = _matcher({w[0]: ("wrap_open", w) for w in f.wrappers})
            self._m_absorb[f] = _matcher({m: ("absorb", f) for m in f.closers})

        self.family: str | None = None
        self.in_reasoning = False
        self.reasoning_closed = False
        self.provisional = False
        self.provisional_confirmed = False  # provisional text turned out to be answer
        self.unfinished = False
        self.closed = False

        self._phase = _START
        self._matcher: _Matcher | None = self._m_start
        self._anchored = True  # markers count only at the first non-whitespace position of the phase
        self._ws: str | None = "stash"  # leading whitespace: "stash" (keep for later), "drop", or None
        self._sink: Callable[[str], None] = self._emit_provisional
        self._held = ""
        self._lead_ws = ""
        self._content_nonws = False
        self._field_seen = False
        self._r_started = False  # a reasoning section was entered (even one that stays empty)
        self._r_text_started = False  # reasoning text was shown ("reasoning_start" was emitted)
        self._r_gap = False  # answer text came after the last reasoning text
        self._r_pending = ""
        self._r_parts: list[str] = []
        self._r_cache = ""
        self._a_parts: list[str] = []
        self._a_cache = ""
        self._a_hold_ws = False
        self._a_pending = ""
        self._a_release_ws = False  # held answer whitespace is kept at close (no closer came to drop it)
        self._term_at: tuple[Family, int] | None = None  # first terminator in provisional text, answer offset
        self._h_capture = False
        self._h_channel = ""
        self._events: list[SplitEvent] = []
        self._t = 0.0

    # ------------------------------------------------------------------ public surface

    @property
    def reasoning(self) -> str:
        """Reasoning so far, markers removed, edge whitespace not shown (rule 8).

        Free when nothing changed; otherwise the new parts are appended to the cached string, which CPython
        extends in place unless the caller still holds the previous value (then it is one copy per read,
        which is why views should read at UI rate and use the events for per-delta work).
        """
        if self._r_parts:
            text = self._r_cache
            self._r_cache = ""  # drop our reference so the concatenation below can extend in place
            text += "".join(self._r_parts)
            self._r_parts.clear()
            self._r_cache = text
        return self._r_cache

    @property
    def answer(self) -> str:
        """Answer so far (possibly provisional, see ``provisional``), markers and wrappers removed."""
        if self._a_parts:
            text = self._a_cache
            self._a_cache = ""
            text += "".join(self._a_parts)
            self._a_parts.clear()
            self._a_cache = text
        return self._a_cache

    @property
    def held_back(self) -> int:
        """Length of the tail kept back because it may still become a marker (bounded by marker length)."""
        return len(self._held)

    def takes_whole(self, content: str = "", reasoning: str = "") -> bool:
        """Would this text all go to one side, past no marker and no phase rule? (Give one of the two.)

        Splitting never depends on how text is chunked; this tells a caller that counts deltas per side
        (≈ tokens) that it may feed a run of deltas as one piece and credit them all to the side it lands on.
        """
        if reasoning:
            return self._field_seen and not content
        if self._held or self._ws is not None or self._anchored or not self._content_nonws:
            return False
        if self._assume_open and not self._r_started:
            return False
        matcher = self._matcher
        return matcher is None or matcher.first.search(content) is None

    def feed(self, content: str | None = "", reasoning: str | None = "") -> list[SplitEvent]:
        """Take one streamed delta; return what changed. Field reasoning precedes content (rule 1)."""
        if self.closed:
            raise RuntimeError("feed() after close()")
        events: list[SplitEvent] = []
        self._events = events
        self._t = self._clock()
        if reasoning:
            self._field(reasoning)
        if content:
            if not self._content_nonws and _NON_WS.search(content):
                self._content_nonws = True
            if self._assume_open and not self._r_started:
                self._start_reasoning()
            if self._held:
                content = self._held + content
                self._held = ""
            elif self._ws is None and not self._anchored:  # most deltas: no marker can start in them
                matcher = self._matcher
                if matcher is None or matcher.first.search(content) is None:
                    self._sink(content)
                    return events
            self._run(content, final=False)
        return events

    def close(self) -> list[SplitEvent]:
        """End of stream: release held-back text verbatim, settle provisional text, flag truncation."""
        if self.closed:
            return []
        events: list[SplitEvent] = []
        self._events = events
        self._t = self._clock()
        if self._held:
            text, self._held = self._held, ""
            self._run(text, final=True)
        if self._phase == _START:
            self._leave_anchor()
        if self._phase == _PROV:
            self.provisional_confirmed = self.provisional
            self.provisional = False
        if self._a_release_ws and self._a_pending:  # rule 8: whitespace at the end of the answer is kept
            self._a_parts.append(self._a_pending)
            self._ev("answer", self._a_pending)
            self._a_pending = ""
        if self.in_reasoning:  # rule 9: the stream stopped while thinking (if it had said anything)
            self.unfinished = self._r_text_started
            self.in_reasoning = False
        self.closed = True
        return events

    # ------------------------------------------------------------------ the content machine

    def _run(self, text: str, final: bool) -> None:
        pos, n = 0, len(text)
        while pos < n:
            if self._ws is not None:
                found = _NON_WS.search(text, pos)
                k = found.start() if found else n
                if self._ws == "stash":
                    self._lead_ws += text[pos:k]
                if k == n:
                    return
                self._ws, pos = None, k
            matcher = self._matcher
            if matcher is None:  # a phase with no markers (the answer): the rest is text
                self._sink(text[pos:] if pos else text)
                return
            if self._anchored:
                marker, partial = matcher.at(text, pos, final)
                if partial:
                    self._held = text[pos:]
                    return
                if marker is None:
                    self._leave_anchor()
                    continue
            else:
                found = matcher.first.search(text, pos)
                if found is None:
                    self._sink(text[pos:] if pos else text)
                    return
                j = found.start()
                if j > pos:
                    self._sink(text[pos:j])
                marker, partial = matcher.at(text, j, final)
                if partial:
                    self._held = text[j:]
                    return
                if marker is None:
                    self._sink(text[j])
                    pos = j + 1
                    continue
                pos = j
            pos += len(marker)
            self._on_marker(marker, matcher.actions[marker])

    def _enter(
        self,
        phase: int,
        matcher: _Matcher | None,
        sink: Callable[[str], None],
        ws: str | None = None,
        anchored: bool = False,
    ) -> None:
        self._phase, self._matcher, self._sink, self._ws = phase, matcher, sink, ws
        self._anchored = anchored and matcher is not None

    def _leave_anchor(self) -> None:
        """The first non-whitespace text of an anchored phase is not a marker."""
        if self._phase == _ANSWER_START:
            self._enter(_ANSWER, None, self._emit_answer)
        elif self._assume_open:
            self._lead_ws = ""
            self._enter(_REASON, self._m_any_close, self._emit_reasoning)
        else:
            lead, self._lead_ws = self._lead_ws, ""
            if self._field_seen:  # the server splits: content is answer (rule 2)
                self._enter(_ANSWER, None, self._emit_answer)
            else:  # rule 4/5: answer for now, reasoning if a prefill-capable closer follows
                self._enter(_PROV, self._m_prov, self._emit_provisional)
            if lead:
                self._sink(lead)

    def _on_marker(self, marker: str, action: Action) -> None:
        op, arg = action
        if op == "open":
            self.family = arg.name
            self._lead_ws = ""
            self._start_reasoning()
            self._enter(_REASON, self._m_reason[arg], self._emit_reasoning)
        elif op == "close" or op == "reclassify":
            tail = ""
            if op == "reclassify":
                self._lead_ws = ""
                tail = self._reclassify(arg)
            if self.family is None or op == "reclassify":
                self.family = arg.name
            self._end_reasoning()
            if tail:  # rule 14 in provisional text: the tool call was answer-side text all along
                self._after_terminator(arg, closed=True)
                self._emit_answer(tail)
                self._a_pending = ""  # whitespace before the closer goes with it
            else:
                self._enter(_ANSWER_START, self._m_wrap[arg], self._emit_answer, "drop", anchored=True)
        elif op == "terminate":  # rule 14: e.g. <tool_call> ends <think>; the call is answer-side text
            self.family = self.family or arg.name
            self._end_reasoning()
            self._after_terminator(arg, closed=False)
            self._emit_answer(marker)
        elif op == "absorb":  # the section's own closer after its terminator: structure, not answer
            self._a_pending = ""
            self._after_terminator(arg, closed=True)
        elif op == "mark":  # a terminator in provisional text: remembered in case a closer follows
            if self._term_at is None:
                self._term_at = (arg, len(self.answer))
            self._emit_provisional(marker)
        elif op == "settle":  # rule 6: an opener after text is literal, and so is its family from here on
            self._prov_families = [f for f in self._prov_families if f is not arg]
            self._m_prov = self._matcher = self._provisional_matcher()
            if self._matcher is None or not any(f.prefill for f in self._prov_families):
                self.provisional, self.provisional_confirmed = False, self.provisional
                self._enter(_ANSWER, None, self._emit_answer)
                self._emit_answer(marker)
            else:
                self._emit_provisional(marker)
        elif op == "wrap_open":  # rule 11: unwrap the answer and trim its inside
            _, close, rename = arg
            self.family = rename or self.family
            self._a_hold_ws = True
            self._enter(_ANSWER, _Matcher({close: ("wrap_close", None)}), self._emit_answer, "drop")
        elif op == "wrap_close":
            self._a_pending = ""
            self._enter(_ANSWER, None, self._emit_answer)
        else:
            self._harmony(arg)

    def _after_terminator(self, family: Family, *, closed: bool) -> None:
        """Answer after a terminator: trailing whitespace is held, since the family's closer may follow it.

        Until that closer comes (``closed`` False) held whitespace is released at close (rule 8); once it
        came, the whitespace around it is dropped and later text is literal (rule 7).
        """
        self._a_hold_ws = True
        self._a_release_ws = not closed
        self._enter(_ANSWER, None if closed else self._m_absorb[family], self._emit_answer)

    def _provisional_matcher(self) -> _Matcher | None:
        """Markers that count in provisional text: openers (rule 6), prefill closers (rule 4), terminators."""
        acts: dict[str, Action] = {}
        for f in self._prov_families:  # later families override earlier ones (user pairs come last)
            acts.update({m: ("settle", f) for m in f.openers})
            if f.prefill:
                acts.update({m: ("mark", f) for m in f.terminators})
                acts.update({m: ("reclassify", f) for m in f.closers})
        return _matcher(acts)

    def _harmony(self, token: str) -> None:
        """Rule 12: headers and control tokens are never shown; bodies go where their channel says."""
        if self.family != "harmony":  # the opening token at the start of the stream
            self.family = "harmony"
            self._lead_ws = ""
        if token == "<|message|>" and self._phase == _H_HEADER:
            words = self._h_channel.split()
            channel = words[0] if words else ""
            if channel in _HARMONY_REASONING:
                self._start_reasoning()
                self._enter(_H_BODY, self._m_harmony, self._emit_reasoning)
            else:
                self._end_reasoning()
                self._enter(_H_BODY, self._m_harmony, self._emit_answer, "drop")
        elif token == "<|channel|>":
            self._h_capture, self._h_channel = True, ""
            self._enter(_H_HEADER, self._m_harmony, self._emit_header)
        elif token == "<|start|>" or token in _HARMONY_END:
            self._h_capture, self._h_channel = False, ""
            self._enter(_H_HEADER, self._m_harmony, self._emit_header)
        elif token == "<|constrain|>" and self._phase == _H_HEADER:
            self._h_capture = False
        # any other control token inside a body is dropped

    # ------------------------------------------------------------------ reasoning field (rules 1-2)

    def _field(self, text: str) -> None:
        first = not self._field_seen
        self._field_seen = True
        if first and self._phase == _START and not self._content_nonws:
            self.family = self.family or "field"
            self._lead_ws = ""
            self._enter(_ANSWER_START, None, self._emit_answer, "drop")
        elif self._phase == _PROV:  # a server that splits reasoning out means content is answer
            self.provisional, self.provisional_confirmed = False, self.provisional
            self._enter(_ANSWER, None, self._emit_answer)
        self._start_reasoning()
        self._emit_reasoning(text)

    # ------------------------------------------------------------------ sinks and events

    def _ev(self, kind: EventKind, text: str) -> None:
        events = self._events
        if events and kind in _TEXT_KINDS and events[-1].kind == kind:
            events[-1].text += text
        else:
            events.append(SplitEvent(kind, text, self._t))

    def _start_reasoning(self) -> None:
        """Enter the reasoning section. Its "reasoning_start" event waits for its first non-blank text."""
        if not self._r_started:
            self._r_started = True
            self.in_reasoning = True

    def _end_reasoning(self) -> None:
        if self.in_reasoning:
            self.in_reasoning = False
            self.reasoning_closed = True
            if self._r_text_started:
                self._ev("reasoning_end", "")

    def _emit_reasoning(self, text: str, event: bool = True) -> None:
        """Append reasoning; leading whitespace dropped, trailing held until more text follows (rule 8)."""
        if not self._r_text_started:
            text = text.lstrip()
            if not text:
                return
            self._r_text_started = True
            if event:
                self._ev("reasoning_start", "")
        core = text.rstrip()
        if not core:
            self._r_pending += text
            return
        pending = self._r_pending
        self._r_pending = text[len(core) :] if len(core) != len(text) else ""
        if self._r_gap:  # reasoning resumes after answer text: never glue the two stretches together
            self._r_gap = False
            if not pending and not core[0].isspace():
                pending = "\n\n"
        out = pending + core if pending else core
        self._r_parts.append(out)
        if event:
            events = self._events  # _ev inlined: this runs once per reasoning delta
            if events and events[-1].kind == "reasoning":
                events[-1].text += out
            else:
                events.append(SplitEvent("reasoning", out, self._t))

    def _emit_answer(self, text: str) -> None:
        if self.in_reasoning:  # field reasoning ends when answer text arrives
            self._end_reasoning()
        if self._a_hold_ws:  # inside/after an answer wrapper the edges are trimmed (rule 11)
            core = text.rstrip()
            if not core:
                self._a_pending += text
                return
            core, self._a_pending = self._a_pending + core, text[len(core) :]
            text = core
        self._a_parts.append(text)
        events = self._events  # _ev inlined: this runs once per answer delta
        if events and events[-1].kind == "answer":
            events[-1].text += text
        else:
            events.append(SplitEvent("answer", text, self._t))
        if self._r_text_started:
            self._r_gap = True

    def _emit_provisional(self, text: str) -> None:
        self.provisional = True
        self._a_parts.append(text)
        self._ev("provisional", text)

    def _emit_header(self, text: str) -> None:
        if self._h_capture and len(self._h_channel) < _HEADER_CAP:
            self._h_channel += text[: _HEADER_CAP - len(self._h_channel)]

    def _reclassify(self, family: Family) -> str:
        """Rule 4: a prefill-capable closer proves the provisional text so far was reasoning.

        Except from a terminator of the same family on (rule 14), which is returned: answer-side text. The
        "reclassified" event (emitted only when shown text changes) carries the part that became reasoning.
        """
        text = self.answer
        tail = ""
        if self._term_at is not None and self._term_at[0] is family:
            text, tail = text[: self._term_at[1]], text[self._term_at[1] :]
        self._a_parts.clear()
        self._a_cache = ""
        self.provisional = False
        self._start_reasoning()
        if text or tail:
            if text.strip():
                self._ev("reasoning_start", "")
            self._ev("reclassified", text)
            self._emit_reasoning(text, event=False)
        return tail
