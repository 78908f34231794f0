"""An outline of a reasoning trace, built incrementally while it streams: one entry per reasoning *step*.

Reasoning models move from step to step with recognisable pivots at the start of a paragraph
("Okay, so…", "Wait,…", "Alternatively,…", "Let me verify…", "So the answer…"), and models trained on
thought summaries open a step with a bold heading line (``**Identifying the third…**``). The rules:

* A step starts at the first non-blank character of the reasoning (kind ``start``, or ``heading`` if that
  line is a heading), at a line that opens with a pivot phrase from `PIVOTS`, and at a heading line
  (a line that opens with a bold span, or a Markdown ``#`` heading). Lines inside fenced code never start a
  step. The line right after a heading belongs to the heading's step (the heading already named it).
* Lines, not only blank-line paragraphs, are considered, because smaller models often separate their
  paragraphs with a single newline; a pivot phrase must still open the line.
* A step's ``title`` is the heading's text, else the first sentence of its first line (ended by ``.``,
  ``?`` or ``!`` followed by whitespace, by ``。？！``, or by the end of the line), with Markdown emphasis
  and list markers removed, whitespace collapsed, and shortened at a word boundary to at most
  `TITLE_MAX_CHARS` characters (ending in ``…`` when shortened).
* ``start`` is an offset (in characters, i.e. Python string indices) into the reasoning text; ``size`` is
  the number of characters up to the next step's start (or to the end of the text).

Cost: `OutlineBuilder.feed` does work proportional to the chunk plus a constant (it keeps only the first
`HEAD_CHARS` characters of the line being written, and never rescans earlier text), so a 1M-character
trace is outlined in linear time (figure in ``tests/benchmarks/bench_engine.py``). The result depends only
on the text, never on how it was cut into chunks (property-tested in ``tests/test_outline.py``).

Finality, for a live viewer: every step but the last is final (title, kind, start and size never change
again). The last step is provisional until `OutlineBuilder.close`: its ``size`` grows with every chunk and
its ``title`` may change until its first sentence has ended (`OutlineBuilder.title_final`). `version`
increases whenever a step is added or a title changes (not on size growth alone), so a viewer can redraw
only when it changed. See `OutlineBuilder` for the consuming pattern.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, replace
from typing import Literal, get_args

StepKind = Literal["start", "check", "backtrack", "alternative", "pivot", "conclusion", "heading"]
"""What opened a step: ``start`` (the reasoning's first step), ``check`` (a self-check: verify,
double-check), ``backtrack`` (the model catches itself: "Wait", "Actually", "Hold on"), ``alternative``
(another approach), ``pivot`` (any other turn: "Okay, so", "Hmm", "But"), ``conclusion`` ("So the
answer", "Therefore"), ``heading`` (a bold or ``#`` heading line)."""

STEP_KINDS: tuple[str, ...] = get_args(StepKind)

TITLE_MAX_CHARS = 100
HEAD_CHARS = 400
"""How much of the line being written is kept: enough for a heading and a first sentence."""
TITLE_SCAN_CHARS = 300
"""A first sentence longer than this (raw characters) is cut here; the title is final at that point."""
HEADING_MAX_CHARS = 120
"""A bold span longer than this at the start of a line is emphasis, not a heading."""

# Pivot phrases that open a step, by kind. English: the openers of R1/QwQ/Qwen3-style traces (the captures
# in seeds/), and the reflective words the DeepSeek-R1 paper tracks ("wait", "however", "but", "verify",
# "check"; Nature 645, 2025, Extended Data Fig. 1). Chinese: R1's usual openers when it thinks in Chinese
# ("嗯", "等等", "或者", "不过", "所以"); no public capture was at hand to check them against, so they are
# a best guess, kept short. Matching is case-sensitive at the start of a line (after
# leading whitespace and list markers); a phrase ending in a Latin letter must be followed by a non-letter
# ("But" matches "But 5…", not "Butter"). Longer phrases win ("But wait" is a backtrack, "But" a pivot).
# To extend: add a phrase to a kind's tuple.
PIVOTS: dict[str, tuple[str, ...]] = {
    "check": (
        "Let me verify",
        "Let me check",
        "Let me double-check",
        "Let me double check",
        "Let me confirm",
        "Let me recheck",
        "Let me re-check",
        "Let me make sure",
        "Let me test",
        "Let's verify",
        "Let's check",
        "Let's double-check",
        "Let's confirm",
        "To verify",
        "To double-check",
        "To check",
        "Double-checking",
        "Checking",
        "Verifying",
        "Sanity check",
        "Hmm, let me check",
        "Hmm, let me verify",
        "Hmm, let me double-check",
        "Hmm, let me make sure",
        "验证一下",
        "检查一下",
        "让我验证",
        "让我检查",
        "再检查",
        "再确认",
    ),
    "backtrack": (
        "Wait",
        "But wait",
        "Hmm, wait",
        "Hmm wait",
        "Oh wait",
        "No, wait",
        "Hold on",
        "Actually",
        "Oops",
        "No,",
        "Hmm, that",
        "That's not right",
        "That doesn't",
        "等等",
        "等一下",
        "不对",
        "不，",
    ),
    "alternative": (
        "Alternatively",
        "Another approach",
        "Another way",
        "Another option",
        "Or maybe",
        "Or perhaps",
        "Maybe another",
        "Let me try another",
        "Let me try a different",
        "Let's try another",
        "Let's try a different",
        "Instead",
        "或者",
        "另一种",
        "换个",
    ),
    "conclusion": (
        "So the answer",
        "So, the answer",
        "So the final answer",
        "So, the final answer",
        "So my answer",
        "So the result",
        "Therefore",
        "Thus",
        "Hence",
        "In conclusion",
        "To summarize",
        "To sum up",
        "Putting it all together",
        "So, putting it all together",
        "Final answer",
        "The answer is",
        "I think that's it",
        "I think that covers",
        "所以答案",
        "所以，答案",
        "因此",
        "综上",
        "总结",
    ),
    "pivot": (
        "Okay, so",
        "Okay,",
        "Okay",
        "OK, so",
        "Ok, so",
        "Alright",
        "All right",
        "Hmm",
        "But",
        "However",
        "Now,",
        "Now let",
        "Next",
        "First",
        "Then,",
        "Let me think",
        "Let me start",
        "Let me see",
        "Let's see",
        "Let's think",
        "Let's start",
        "Well,",
        "So,",
        "So let",
        "好的",
        "嗯",
        "不过",
        "但是",
        "首先",
        "那么",
        "接下来",
        "所以",
    ),
}

SELF_CHECK_KINDS: frozenset[str] = frozenset({"check", "backtrack"})
"""Kinds counted as self-checks in `ReasoningStats` (Wait / double-check / verify)."""

_LEAD = re.compile(r"[ \t\r]*(?:(?:[-*+]|\d{1,3}[.)])[ \t]+)?")
_MD_HEADING = re.compile(r"#{1,6}[ \t]")
_SENTENCE_END = re.compile(r"[.?!](?=\s)|[。？！]")
_SPACES = re.compile(r"\s+")
_EMPHASIS = re.compile(r"\*\*|__|`")


def _pivot_table() -> tuple[tuple[str, str, bool], ...]:
    """(phrase, kind, needs a word boundary) sorted longest first, so the most specific phrase wins."""
    rows = [
        (phrase, kind, phrase[-1].isascii() and phrase[-1].isalpha()) for kind, ps in PIVOTS.items() for phrase in ps
    ]
    return tuple(sorted(rows, key=lambda r: -len(r[0])))


_TABLE = _pivot_table()
_LONGEST = max(len(p) for p, _, _ in _TABLE)
_PREFIXES = frozenset(p[:i] for p, _, _ in _TABLE for i in range(1, len(p) + 1))
"""A line body in here could still grow into a pivot phrase (or needs its boundary character): wait."""
_PARTIAL_MARK = re.compile(r"(?:[-*+]|\d{1,3}[.)]?|#{1,6})")


@dataclass
class Step:
    """One reasoning step: `title` (≤ 100 characters), `start` and `size` in characters of the reasoning
    text, `kind` (what opened it, see `StepKind`)."""

    title: str
    start: int
    kind: StepKind
    size: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ReasoningStats:
    """Counts over one turn's reasoning: `steps` (== len(outline)), `self_checks` (steps of kind check or
    backtrack), `backtracks`, `alternatives`, `characters` of reasoning text, and `tokens` (reasoning
    tokens as reported or counted by the caller; None if unknown)."""

    steps: int = 0
    self_checks: int = 0
    backtracks: int = 0
    alternatives: int = 0
    characters: int = 0
    tokens: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def match_pivot(line: str) -> StepKind | None:
    """The kind of step a line opens with a pivot phrase, or None. `line` needs only its first ~60 chars."""
    body = line[_LEAD.match(line).end() :]  # type: ignore[union-attr]
    for phrase, kind, boundary in _TABLE:
        if body.startswith(phrase):
            if boundary and len(body) > len(phrase) and body[len(phrase)].isalpha():
                continue
            return kind  # type: ignore[return-value]
    return None


def shorten(text: str, limit: int = TITLE_MAX_CHARS) -> str:
    """`text` with whitespace collapsed, cut at a word boundary to at most `limit` characters (``…`` added)."""
    text = _SPACES.sub(" ", text).strip()
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit)
    if cut < limit // 2:  # no space (e.g. Chinese) or a very long word: cut hard
        cut = limit - 1
    return text[:cut].rstrip(" ,;:") + "…"


def _clean(text: str) -> str:
    return _EMPHASIS.sub("", text)


@dataclass
class OutlineUpdate:
    """`OutlineBuilder.since`: `final` steps to append (they never change again), the `current` step still
    being written (redraw it in one slot; None once closed or before the first step), the new `cursor`,
    whether the current title is final, and the builder's `version`."""

    final: list[Step]
    current: Step | None
    cursor: int
    title_final: bool
    version: int


class OutlineBuilder:
    """Builds the outline of a reasoning text fed in chunks of any size.

    ``feed(text)`` appends reasoning text; ``close()`` ends it (the last step becomes final). Read
    ``steps`` (a list of `Step` in order) at any time; ``stats(tokens)`` gives `ReasoningStats`.

    Consuming it live (e.g. on every redraw of a streaming turn)::

        with lock:                                  # the lock that guards feed (run_turn's `lock`)
            update = builder.since(shown)           # copies: use them after releasing the lock
        for step in update.final:
            draw_final(step)                        # drawn once: a final step never changes again
        shown = update.cursor
        if update.current is not None:              # the step being written: one slot, redrawn
            draw_current(update.current)            # (only when update.version changed, to save bytes)

    ``final_count`` is ``len(steps) - 1`` while open (the last step may still change) and ``len(steps)``
    once closed. The last step's title is final once ``title_final`` is True (its first sentence ended),
    even while its size still grows. Not thread-safe: feed and read under the caller's lock.
    """

    def __init__(self) -> None:
        self._steps: list[Step] = []
        self._pos = 0  # characters fed so far
        self._line_start = 0  # offset of the current line
        self._head = ""  # the current line's first HEAD_CHARS characters
        self._decided = False  # whether the current line's role is settled
        self._heading_scan = 0  # where to look next for a bold heading's closing '**'
        self._in_fence = False
        self._after_heading = False  # the next non-blank line continues a heading's step
        self._title_line = False  # the current line provides the last step's title, still provisional
        self._title_begin = 0  # where in `_head` the title text begins
        self._title_end: int | None = None  # where it ends, once final
        self._sentence_scan = 0  # where to look next for the end of the first sentence
        self._title_dirty = False
        self._closed = False
        self.version = 0

    # -- feeding ------------------------------------------------------------------------

    def feed(self, text: str) -> None:
        """Append reasoning text. O(len(text)) plus a constant; ignored after `close`."""
        if not text or self._closed:
            return
        i, n = 0, len(text)
        while i < n:
            nl = text.find("\n", i)
            end = n if nl < 0 else nl
            if end > i:
                self._extend_line(text, i, end)
            if nl < 0:
                break
            self._end_line()
            i = nl + 1
            self._pos += 1
            self._line_start = self._pos
        if self._steps:
            self._steps[-1].size = self._pos - self._steps[-1].start

    def close(self) -> None:
        """End of the reasoning: the line being written is settled and the last step becomes final."""
        if self._closed:
            return
        self._end_line()
        self._closed = True
        if self._steps:
            self._steps[-1].size = self._pos - self._steps[-1].start
        self.version += 1

    def _extend_line(self, text: str, i: int, end: int) -> None:
        room = HEAD_CHARS - len(self._head)
        if room > 0:
            self._head += text[i : min(end, i + room)]
        self._pos += end - i
        if not self._decided:
            self._decide(complete=False)
        if self._title_line:
            self._check_title(complete=False)

    def _end_line(self) -> None:
        if not self._decided and self._head:
            self._decide(complete=True)
        if self._title_line:
            self._check_title(complete=True)
        body = self._head.lstrip()
        if body.startswith(("```", "~~~")):
            self._in_fence = not self._in_fence
        self._head = ""
        self._decided = False
        self._heading_scan = 0

    # -- deciding what a line is --------------------------------------------------------------

    def _decide(self, *, complete: bool) -> None:
        head = self._head
        body = head.lstrip()
        lead = len(head) - len(body)
        if not body:  # blank so far
            self._decided = complete
            return
        if self._in_fence or body.startswith(("```", "~~~")):
            self._decided = True
            if not self._steps:
                self._open_step("start", lead, lead)
            self._after_heading = False
            return
        heading = self._heading(body, lead, complete)
        if heading is None or heading:
            return  # undecided (wait for more of the line), or a heading step was opened
        lead_end = _LEAD.match(head).end()  # type: ignore[union-attr]
        rest = head[lead_end : lead_end + _LONGEST + 1]
        if not complete and (not rest or rest in _PREFIXES or _PARTIAL_MARK.fullmatch(body)):
            return  # the line could still open with a pivot phrase (or a list marker / heading mark)
        self._decided = True
        kind = match_pivot(head[: lead_end + _LONGEST + 1])
        if not self._steps:
            self._open_step("start", lead, lead)
        elif kind is not None and not self._after_heading:
            self._open_step(kind, lead, lead)
        self._after_heading = False

    def _heading(self, body: str, lead: int, complete: bool) -> bool | None:
        """True if the line is a heading (its step is opened), False if not, None if it cannot tell yet."""
        if _MD_HEADING.match(body):
            self._decided = True
            col = lead + len(body) - len(body.lstrip("#").lstrip())
            self._open_step("heading", lead, col)
            self._after_heading = True
            return True
        if not body.startswith("**"):
            return None if body == "*" and not complete else False  # "*" may become "**"
        head = self._head
        close = head.find("**", max(lead + 2, self._heading_scan - 1))
        if close >= 0:
            inner = head[lead + 2 : close]
            if close - lead - 2 <= HEADING_MAX_CHARS and inner.strip():
                self._decided = True
                self._open_step("heading", lead, None, title=shorten(_clean(inner)))
                self._after_heading = True
                return True
            return False
        self._heading_scan = len(head)
        if len(head) - lead - 2 <= HEADING_MAX_CHARS and not complete:
            return None
        return False

    def _open_step(self, kind: StepKind, lead: int, title_col: int | None, *, title: str = "") -> None:
        start = self._line_start + lead
        if self._steps:
            self._steps[-1].size = start - self._steps[-1].start
        self._steps.append(Step(title=title, start=start, kind=kind, size=self._pos - start))
        self.version += 1
        self._title_line = title_col is not None
        if title_col is not None:
            begin = _LEAD.match(self._head, title_col).end()  # type: ignore[union-attr]
            self._title_begin = self._sentence_scan = begin
            self._title_end = None
            self._title_dirty = True
            self._check_title(complete=False)

    # -- titles ---------------------------------------------------------------------------

    def _check_title(self, *, complete: bool) -> None:
        """Notice when the first sentence has ended (the title is then final). Scans only new text."""
        head, begin = self._head, self._title_begin
        limit = begin + TITLE_SCAN_CHARS
        m = _SENTENCE_END.search(head, max(begin, self._sentence_scan - 1), limit)
        if m is not None:
            end: int | None = m.end()
        elif len(head) >= limit:
            end = limit
        elif complete or len(head) >= HEAD_CHARS:
            end = len(head)
        else:
            end = None
        self._title_dirty = True
        if end is None:
            self._sentence_scan = len(head)
            return
        self._title_end = end
        self._refresh_title()
        self._title_line = False

    def _refresh_title(self) -> None:
        if not self._steps or not self._title_dirty:
            return
        end = self._title_end if self._title_end is not None else self._title_begin + TITLE_SCAN_CHARS
        title = shorten(_clean(self._head[self._title_begin : end]))
        step = self._steps[-1]
        if title != step.title:
            step.title = title
            self.version += 1
        self._title_dirty = False

    # -- reading --------------------------------------------------------------------------

    @property
    def steps(self) -> list[Step]:
        """The steps so far, in order (the builder's own list: read it, do not modify it)."""
        if self._title_dirty and self._title_line:
            self._refresh_title()
        return self._steps

    def since(self, cursor: int) -> OutlineUpdate:
        """What a live viewer that has drawn `cursor` final steps needs now, as copies (safe to use after the
        caller's lock is released): the steps that became final since, the step still being written (or
        None), and the new cursor (== `final_count`). O(new steps)."""
        steps = self.steps
        final = self.final_count
        new = [replace(step) for step in steps[cursor:final]]
        current = replace(steps[-1]) if final < len(steps) else None
        return OutlineUpdate(new, current, final, self.title_final, self.version)

    @property
    def final_count(self) -> int:
        """How many leading steps can no longer change."""
        return len(self._steps) if self._closed else max(0, len(self._steps) - 1)

    @property
    def title_final(self) -> bool:
        """Whether the last step's title can no longer change."""
        return self._closed or not self._title_line

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def characters(self) -> int:
        """Characters fed so far."""
        return self._pos

    def stats(self, reasoning_tokens: int | None = None) -> ReasoningStats:
        """Counts over the steps so far; `reasoning_tokens` is passed through as `tokens`."""
        return stats_of(self._steps, self._pos, reasoning_tokens)


def stats_of(steps: list[Step], characters: int, tokens: int | None = None) -> ReasoningStats:
    """`ReasoningStats` of an outline: steps, self-checks (check + backtrack), backtracks, alternatives."""
    kinds = [s.kind for s in steps]
    return ReasoningStats(
        steps=len(kinds),
        self_checks=sum(1 for k in kinds if k in SELF_CHECK_KINDS),
        backtracks=kinds.count("backtrack"),
        alternatives=kinds.count("alternative"),
        characters=characters,
        tokens=tokens,
    )


def outline(text: str) -> list[Step]:
    """The outline of a finished reasoning text (one `OutlineBuilder` pass)."""
    builder = OutlineBuilder()
    builder.feed(text)
    builder.close()
    return builder.steps


def outline_and_stats(text: str, reasoning_tokens: int | None = None) -> tuple[list[Step], ReasoningStats]:
    """Outline and stats of a finished reasoning text, in one pass."""
    builder = OutlineBuilder()
    builder.feed(text)
    builder.close()
    return builder.steps, builder.stats(reasoning_tokens)


def step_text(reasoning: str, step: Step) -> str:
    """The part of `reasoning` that `step` covers."""
    return reasoning[step.start : step.start + step.size]
