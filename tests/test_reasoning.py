"""Tests for viewer.reasoning: every family, every rule of formats.md "Conventions chosen", chunking.

Every stream goes through ``drive()``, which checks the streaming invariants after each feed (texts only grow,
one shrink at reclassification, events rebuild the texts, event order, clock order), so each case also tests
those.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from viewer.reasoning import FAMILIES, HARMONY_TOKENS, ReasoningSplitter, SplitEvent

REPO = Path(__file__).resolve().parents[1]
SEED_FILES = sorted(REPO.glob("seeds/*.jsonl"))
LONGEST_MARKER = max(
    len(m)
    for m in (
        *HARMONY_TOKENS,
        *(x for f in FAMILIES for x in (*f.openers, *f.closers, *f.terminators)),
        *(w for f in FAMILIES for pair in f.wrappers for w in pair[:2]),
    )
)

Segment = tuple[str, str]  # ("c", content text) or ("r", field reasoning text), in stream order


class Clock:
    """Injected clock: advances one tick per call, so event times are checkable."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def drive(segments: list[Segment] | str, **kw: object) -> tuple[ReasoningSplitter, list[SplitEvent]]:
    """Feed each segment as one delta, checking the streaming invariants after every feed and at close."""
    if isinstance(segments, str):
        segments = [("c", segments)]
    s = ReasoningSplitter(clock=Clock(), **kw)  # type: ignore[arg-type]
    all_events: list[SplitEvent] = []
    rebuilt_r, rebuilt_a = "", ""
    prev_r, prev_a, shrinks = "", "", 0
    for i, (field, text) in enumerate([*segments, ("close", "")]):
        if field == "close":
            events = s.close()
        elif field == "c":
            events = s.feed(content=text)
        else:
            events = s.feed(reasoning=text)
        for e in events:
            if e.kind == "reasoning":
                rebuilt_r += e.text
            elif e.kind in ("answer", "provisional"):
                rebuilt_a += e.text
            elif e.kind == "reclassified":
                assert rebuilt_a.startswith(e.text), "reclassified carries the shown text that became reasoning"
                rebuilt_r += e.text.strip()
                rebuilt_a = ""
        r, a = s.reasoning, s.answer
        assert (r, a) == (rebuilt_r, rebuilt_a), f"events disagree with texts after feed {i}"
        assert r.startswith(prev_r), f"reasoning shrank after feed {i}"
        if not a.startswith(prev_a):
            shrinks += 1
            assert any(e.kind == "reclassified" for e in events)
        assert r == r.strip() or not r, "reasoning edge whitespace must not be shown"
        prev_r, prev_a = r, a
        all_events += events
    kinds = [e.kind for e in all_events]
    assert shrinks <= 1 and kinds.count("reclassified") <= 1
    assert kinds.count("reasoning_start") <= 1 and kinds.count("reasoning_end") <= 1
    if "reasoning_end" in kinds:
        assert kinds.index("reasoning_start") < kinds.index("reasoning_end")
    if "reclassified" in kinds:
        k = kinds.index("reclassified")
        if all_events[k].text.strip():
            assert kinds[k - 1] == "reasoning_start" and kinds[k + 1] == "reasoning_end"
        assert "provisional" not in kinds[k:]
    assert "reasoning" not in kinds or "reasoning_start" in kinds
    # "reasoning_start" comes with the first reasoning text (rule 8: a blank section is no reasoning)
    assert ("reasoning_start" in kinds) == bool(s.reasoning)
    times = [e.t for e in all_events]
    assert times == sorted(times)
    assert s.held_back == 0 and not s.provisional
    return s, all_events


def result(segments: list[Segment] | str, **kw: object) -> tuple[str, str]:
    s, _ = drive(segments, **kw)
    return s.reasoning, s.answer


def chars(text: str) -> list[Segment]:
    return [("c", ch) for ch in text]


def merged(segments: list[Segment]) -> list[Segment]:
    """The same stream in as few deltas as possible (adjacent same-field segments joined)."""
    out: list[Segment] = []
    for field, text in segments:
        if out and out[-1][0] == field:
            out[-1] = (field, out[-1][1] + text)
        elif text:
            out.append((field, text))
    return out


def rechunk(segments: list[Segment], cuts: list[int]) -> list[Segment]:
    """Split the merged stream at the given global character offsets."""
    out: list[Segment] = []
    pos = 0
    for field, text in merged(segments):
        inner = sorted({c - pos for c in cuts if pos < c < pos + len(text)})
        for a, b in itertools.pairwise([0, *inner, len(text)]):
            out.append((field, text[a:b]))
        pos += len(text)
    return out


# ---------------------------------------------------------------------------------------------- families

FAMILY_CASES = [
    ("think", "<think>\nr1\n</think>\n\nA1", "r1", "A1"),
    ("thinking", "<thinking>r</thinking>A", "r", "A"),
    ("reasoning", "<reasoning>r</reasoning>A", "r", "A"),
    ("reason", "<reason>r</reason>A", "r", "A"),
    ("thought", "<thought>r</thought>A", "r", "A"),
    (
        "begin_of_thought",
        "<|begin_of_thought|>\nr\n<|end_of_thought|>\n<|begin_of_solution|>\nA\n<|end_of_solution|>",
        "r",
        "A",
    ),
    ("mistral", "[THINK]r[/THINK]A", "r", "A"),
    ("seed", "<seed:think>r</seed:think>A", "r", "A"),
    ("kimi", "◁think▷r◁/think▷A", "r", "A"),
    ("minimax_m3", "<mm:think>r</mm:think>A", "r", "A"),
    ("gemma4", "<|channel>thought\nr<channel|>A", "r", "A"),
    (
        "harmony",
        "<|channel|>analysis<|message|>r<|end|><|start|>assistant<|channel|>final<|message|>A",
        "r",
        "A",
    ),
    ("granite", "Here is my thought process:\nr\nHere is my response:\nA", "r", "A"),
    ("granite", "Here's my thought process: r Here's my response: A", "r", "A"),
    ("hunyuan", "<think>\nr\n</think>\n<answer>\nA\n</answer>", "r", "A"),
]


@pytest.mark.parametrize(("family", "stream", "reasoning", "answer"), FAMILY_CASES)
def test_family_one_piece_and_per_char(family: str, stream: str, reasoning: str, answer: str) -> None:
    for segments in ([("c", stream)], chars(stream)):
        s, events = drive(segments)
        assert (s.reasoning, s.answer, s.family) == (reasoning, answer, family)
        assert s.reasoning_closed and not s.in_reasoning and not s.unfinished
        assert [e.kind for e in events if e.kind.startswith("reasoning_")] == [
            "reasoning_start",
            "reasoning_end",
        ]


@pytest.mark.parametrize(("family", "stream", "reasoning", "answer"), FAMILY_CASES)
def test_every_pair_of_split_points(family: str, stream: str, reasoning: str, answer: str) -> None:
    """Markers cut at any one or two positions (e.g. `</think>` as `</th` + `ink>`) are still recognised."""
    n = len(stream)
    for i in range(1, n):
        for j in range(i, n):
            parts = [p for p in (stream[:i], stream[i:j], stream[j:]) if p]
            assert result([("c", p) for p in parts]) == (reasoning, answer), (i, j)


def test_think_never_matches_start_of_thinking() -> None:
    s, _ = drive(chars("<thinking>r</think>still reasoning</thinking>A"))
    assert (s.family, s.reasoning, s.answer) == ("thinking", "r</think>still reasoning", "A")


def test_capture_shaped_marker_fragments() -> None:
    """The real tokenizer delivered `</think>` as `<`, `/`, `t`, `hi`, `n`, `k`, `>` (captures/README)."""
    pieces = ["<", "t", "hi", "n", "k", ">", "\nr", "\n", "<", "/", "t", "hi", "n", "k", ">", "\n\n", "A"]
    s, events = drive([("c", p) for p in pieces])
    assert (s.reasoning, s.answer) == ("r", "A")
    assert not any("<" in e.text or ">" in e.text for e in events)


# ---------------------------------------------------------------------------------------------- rules 1-14


def test_rule1_field_reasoning_precedes_content_in_one_delta() -> None:
    s = ReasoningSplitter(clock=Clock())
    events = s.feed(content="The answer", reasoning="thinking first")
    assert [e.kind for e in events] == ["reasoning_start", "reasoning", "reasoning_end", "answer"]
    s.close()
    assert (s.reasoning, s.answer, s.family) == ("thinking first", "The answer", "field")


def test_rule1_empty_and_none_fields_are_no_ops() -> None:
    s = ReasoningSplitter()
    assert s.feed(content=None, reasoning=None) == [] and s.feed("", "") == []
    s.feed(content="<think>r</think>A", reasoning="")
    s.close()
    assert (s.reasoning, s.answer) == ("r", "A")


def test_rule1_interleaved_field_reasoning_resumes_after_content() -> None:
    s, events = drive([("r", "plan"), ("c", "Step one."), ("r", "\nmore thought"), ("c", " Step two.")])
    assert (s.reasoning, s.answer) == ("plan\nmore thought", "Step one. Step two.")
    assert [e.kind for e in events].count("reasoning_end") == 1


def test_rule2_server_split_content_is_verbatim() -> None:
    assert result([("c", "\n"), ("r", "r"), ("c", "\n\n<think>x</think> A")]) == ("r", "<think>x</think> A")


def test_rule2_field_after_text_settles_provisional_as_answer() -> None:
    s, _ = drive([("c", "Hello"), ("r", "r"), ("c", " x </think> y")])
    assert (s.reasoning, s.answer) == ("r", "Hello x </think> y") and s.provisional_confirmed


def test_rule2_empty_field_still_parses_inline() -> None:
    assert result([("r", ""), ("c", "<think>r</think>A")]) == ("r", "A")


def test_field_and_inline_mix() -> None:
    """Content opened inline before any field reasoning: both feed the one reasoning section."""
    s, _ = drive([("c", "<think>inline "), ("r", "field "), ("c", "more</think>A")])
    assert (s.reasoning, s.answer, s.family) == ("inline field more", "A", "think")


def test_rule3_leading_whitespace_before_opener_dropped() -> None:
    assert result(chars(" \n\t<think>r</think>A")) == ("r", "A")


def test_rule4_prefilled_closer_reclassifies_once() -> None:
    s = ReasoningSplitter(clock=Clock())
    answers: list[str] = []
    kinds: list[str] = []
    for p in ["Let me", " think.\n", "</th", "ink>", "\n\nIt is 5."]:
        kinds += [e.kind for e in s.feed(p)]
        answers.append(s.answer)
        if p == "Let me":
            assert s.provisional
    kinds += [e.kind for e in s.close()]
    assert answers == ["Let me", "Let me think.\n", "Let me think.\n", "", "It is 5."]
    assert kinds == [
        "provisional",
        "provisional",
        "reasoning_start",
        "reclassified",
        "reasoning_end",
        "answer",
    ]
    assert (s.reasoning, s.family, s.provisional_confirmed) == ("Let me think.", "think", False)


@pytest.mark.parametrize(("closer", "family"), [("[/THINK]", "mistral"), ("</seed:think>", "seed"),
                                                ("</mm:think>", "minimax_m3")])  # fmt: skip
def test_rule4_every_prefill_capable_closer(closer: str, family: str) -> None:
    s, _ = drive(chars(f"r {closer} A"))
    assert (s.reasoning, s.answer, s.family) == ("r", "A", family)


@pytest.mark.parametrize("closer", ["</thinking>", "</reasoning>", "</reason>", "</thought>", "◁/think▷",
                                     "<channel|>", "Here is my response:", "<|end_of_thought|>"])  # fmt: skip
def test_rule4_generic_closers_are_not_prefill_capable(closer: str) -> None:
    text = f"Use {closer} to close it."
    s, events = drive(chars(text))
    assert (s.reasoning, s.answer, s.provisional_confirmed) == ("", text, True)
    assert "reclassified" not in [e.kind for e in events]


def test_rule4_stray_closer_at_start_minimax_m3() -> None:
    s, events = drive("</mm:think>\nHello")
    assert (s.reasoning, s.answer, s.family) == ("", "Hello", "minimax_m3")
    assert [e.kind for e in events] == ["answer"], "an empty section is no reasoning: no start/end events"


def test_rule5_no_marker_is_answer_verbatim() -> None:
    s, events = drive(chars("  Plain answer, no markers.\n"))
    assert (s.reasoning, s.answer, s.family) == ("", "  Plain answer, no markers.\n", None)
    assert s.provisional_confirmed and {e.kind for e in events} == {"provisional"}


def test_rule6_text_before_opener_makes_everything_answer() -> None:
    text = "Sure. <think>a</think> b"
    s, _ = drive(chars(text))
    assert (s.reasoning, s.answer, s.provisional_confirmed) == ("", text, True)


def test_rule7_one_section_adjacent_blocks_literal() -> None:
    assert result(chars("<think>a</think><think>b</think>c")) == ("a", "<think>b</think>c")


def test_rule7_nested_opener_is_reasoning_text() -> None:
    assert result(chars("<think>a <think> b</think>c </think>")) == ("a <think> b", "c </think>")


def test_rule8_whitespace() -> None:
    s = ReasoningSplitter()
    s.feed("<think>\n\n  First")
    assert s.reasoning == "First"
    s.feed(" line \n\n")
    assert s.reasoning == "First line", "trailing whitespace is held back until more reasoning arrives"
    s.feed("second\n")
    assert s.reasoning == "First line \n\nsecond"
    s.feed("</think> \n\n  Answer  \n\n keeps inner  ")
    s.close()
    assert s.reasoning == "First line \n\nsecond"
    assert s.answer == "Answer  \n\n keeps inner  "


def test_rule8_field_then_content_whitespace_dropped() -> None:
    assert result([("r", "\n r \n"), ("c", "\n\n"), ("c", " A \n")]) == ("r", "A \n")


def test_rule9_truncation_inside_reasoning() -> None:
    s, events = drive(chars("<think>\nhalf a thou"))
    assert (s.reasoning, s.answer, s.unfinished, s.reasoning_closed) == ("half a thou", "", True, False)
    assert "reasoning_end" not in [e.kind for e in events]


def test_rule9_truncation_releases_held_partial_closer_into_reasoning() -> None:
    s, _ = drive([("c", "<think>r </thi")])
    assert (s.reasoning, s.answer, s.unfinished) == ("r </thi", "", True)


def test_rule9_field_only_stream_is_unfinished() -> None:
    s, _ = drive([("r", "still thinking")])
    assert s.unfinished and s.answer == ""


@pytest.mark.parametrize(
    ("stream", "reasoning", "answer"),
    [
        ("<think>a </thinX b</think>c", "a </thinX b", "c"),  # closer fake-out inside reasoning
        ("<think>a </think</think>c", "a </think", "c"),  # fake-out immediately followed by the marker
        ("<thinkX>a", "", "<thinkX>a"),  # opener fake-out at start
        ("<thin", "", "<thin"),  # stream ends inside an opener prefix
        ("Here is my thought, sadly", "", "Here is my thought, sadly"),  # Granite prefix fake-out
        ("<think>r</think><answe", "r", "<answe"),  # wrapper fake-out
        ("x </th", "", "x </th"),  # provisional closer fake-out at the end
        ("x </thinkers> y", "", "x </thinkers> y"),
        ("<think>r<tool_cal>x", "r<tool_cal>x", ""),
    ],
)
def test_rule10_partial_marker_fakeouts_released_verbatim(stream: str, reasoning: str, answer: str) -> None:
    for segments in ([("c", stream)], chars(stream)):
        assert result(segments) == (reasoning, answer)


@pytest.mark.parametrize(("family", "stream"), [(f.name, f"{f.openers[0]}r") for f in FAMILIES])
def test_rule10_holdback_is_bounded(family: str, stream: str) -> None:
    """100k chars of marker-like noise never make the splitter hold back more than one marker."""
    noise = "</<[|◁Here is my <tool_ca</th[/THI<channel<|end_of_ </seed:thin ◁/thin"
    s = ReasoningSplitter()
    s.feed(stream)
    assert s.family == family
    worst = 0
    for i in range(100_000):
        s.feed(noise[i % len(noise)])
        worst = max(worst, s.held_back)
    assert worst < LONGEST_MARKER and s.in_reasoning
    assert len(s.reasoning) > 99_000


def test_rule10_holdback_bounded_while_provisional() -> None:
    s = ReasoningSplitter()
    worst = 0
    for ch in itertools.islice(itertools.cycle("no marker </thin[/THI"), 50_000):
        s.feed(ch)
        worst = max(worst, s.held_back)
    assert worst < LONGEST_MARKER and s.provisional


@pytest.mark.parametrize(
    ("stream", "reasoning", "answer", "family"),
    [
        ("<think>\nr\n</think>\n<answer>\n A \n</answer>\n", "r", "A", "hunyuan"),
        ("<think>\n\n</think>\n<answer>\nfast\n</answer>", "", "fast", "hunyuan"),
        ("<think>r</think><answer>A</answer>\nafter", "r", "A\nafter", "hunyuan"),
        ("<think>r</think><answer>cut", "r", "cut", "hunyuan"),
        ("<think>r</think>x <answer>y</answer>", "r", "x <answer>y</answer>", "think"),  # only at the start
        ("<|begin_of_thought|>r<|end_of_thought|><|begin_of_solution|>\nS\n<|end_of_solution|>", "r", "S",
         "begin_of_thought"),
        ("<|begin_of_thought|>r<|end_of_thought|>S", "r", "S", "begin_of_thought"),
        ("<thinking>r</thinking><answer>A</answer>", "r", "<answer>A</answer>", "thinking"),
    ],
)  # fmt: skip
def test_rule11_answer_wrappers(stream: str, reasoning: str, answer: str, family: str) -> None:
    for segments in ([("c", stream)], chars(stream)):
        s, _ = drive(segments)
        assert (s.reasoning, s.answer, s.family) == (reasoning, answer, family)


def test_rule11_solution_wrapper_alone_is_literal() -> None:
    text = "<|begin_of_solution|>S<|end_of_solution|>"
    assert result(text) == ("", text)


HARMONY = "<|channel|>analysis<|message|>"


@pytest.mark.parametrize(
    ("stream", "reasoning", "answer", "unfinished"),
    [
        (f"{HARMONY}r1<|end|><|start|>assistant<|channel|>final<|message|>A<|return|>", "r1", "A", False),
        (f"{HARMONY}r1<|start|>assistant<|channel|>final<|message|>A", "r1", "A", False),  # no <|end|>
        (f"{HARMONY}a.<|end|><|start|>assistant{HARMONY}b.<|end|>"
         "<|start|>assistant<|channel|>final<|message|>A", "a.b.", "A", False),  # all analysis, in order
        (f"{HARMONY}r<|end|><|start|>assistant<|channel|>final <|constrain|>json<|message|>{{\"x\": 1}}",
         "r", '{"x": 1}', False),
        (f"{HARMONY}r<|end|><|start|>assistant<|channel|>fin", "r", "", True),  # stop inside a header
        (f"{HARMONY}r<|end|><|start|>assistant<|channel|>commentary to=functions.f <|constrain|>json"
         "<|message|>{}<|call|>", "r{}", "", True),  # commentary goes to the reasoning side
        ("<|start|>assistant<|channel|>final<|message|>\n just the answer", "", "just the answer", False),
        ("<|channel|>final<|message|>A<|end|>trailing junk", "", "A", False),  # outside a message: hidden
        ("<|chan", "", "<|chan", False),
        ("analysisWe think.assistantfinalA", "", "analysisWe think.assistantfinalA", False),  # rule 5
    ],
)  # fmt: skip
def test_rule12_harmony(stream: str, reasoning: str, answer: str, unfinished: bool) -> None:
    for segments in ([("c", stream)], chars(stream)):
        s, _ = drive(segments)
        assert (s.reasoning, s.answer, s.unfinished) == (reasoning, answer, unfinished)
        for token in HARMONY_TOKENS:
            assert token not in s.reasoning + s.answer


def test_rule12_harmony_tokens_after_text_are_literal() -> None:
    text = "Hi <|channel|>analysis<|message|>x"
    assert result(text) == ("", text)


def test_rule13_granite_only_at_start() -> None:
    text = "Well. Here is my thought process: r Here is my response: A"
    assert result(chars(text)) == ("", text)
    s, _ = drive("Here is my thought process:\nr\nHere is my response:\nA")
    assert (s.family, s.reasoning, s.answer) == ("granite", "r", "A")
    text2 = "plain text then Here is my response: A"
    assert result(text2) == ("", text2)  # Granite's closer is not prefill-capable


def test_rule14_tool_call_ends_think() -> None:
    stream = '<think>\nI need the weather.\n<tool_call>\n{"name": "w"}\n</tool_call>'
    for segments in ([("c", stream)], chars(stream)):
        s, events = drive(segments)
        assert s.reasoning == "I need the weather."
        assert s.answer == '<tool_call>\n{"name": "w"}\n</tool_call>'
        assert s.reasoning_closed and not s.unfinished
        assert [e.kind for e in events].count("reasoning_end") == 1


def test_rule14_is_think_family_only() -> None:
    assert result("<thinking>r <tool_call>x</thinking>A") == ("r <tool_call>x", "A")


# ---------------------------------------------------------------------------------------------- issue 8


@pytest.mark.parametrize(
    ("segments", "answer", "options"),
    [
        ([("r", "\n"), ("c", "Hello"), ("c", " there.")], "Hello there.", {}),  # the reported stream
        ([("r", " \n\t"), ("r", "\n"), ("c", "Hi")], "Hi", {}),
        ([("c", "<think>\n\n</think>\n\nHello")], "Hello", {}),  # Qwen3 with thinking off
        ([("c", "[THINK]\n[/THINK]Hello")], "Hello", {}),
        ([("c", "<seed:think> </seed:think>Hello")], "Hello", {}),
        ([("c", "<|channel|>analysis<|message|>\n<|end|><|start|>assistant<|channel|>final<|message|>Hello")],
         "Hello", {}),
        ([("c", "\n</think>\n\nHello")], "Hello", {}),  # pre-filled opener, nothing inside
        ([("c", "\n</think>\n\nHello")], "Hello", {"assume_open": True}),
        ([("c", "<think>\n")], "", {}),  # ended right after the opener: nothing was thought
    ],
)  # fmt: skip
def test_reasoning_that_trims_to_nothing_is_no_reasoning(segments, answer, options) -> None:
    """Item 1: no reasoning text, whatever carried it ⇒ no reasoning events, not unfinished."""
    for chunks in (segments, [(f, ch) for f, t in segments for ch in t]):
        s, events = drive(chunks, **options)
        assert (s.reasoning, s.answer, s.unfinished) == ("", answer, False)
        assert not {"reasoning_start", "reasoning", "reasoning_end"} & {e.kind for e in events}


QWEN35_TOOL_CALL = ["<think>", "\nThe user wants me to read the file.\n", "<tool_call>",
                    "\n<function=read>…</function>\n", "</tool_call>", "\n</think>", "\n\n"]  # fmt: skip
TOOL_CALL_ANSWER = "<tool_call>\n<function=read>…</function>\n</tool_call>"


@pytest.mark.parametrize(
    ("pieces", "options", "answer"),
    [
        (QWEN35_TOOL_CALL, {}, TOOL_CALL_ANSWER),  # the reported stream
        (QWEN35_TOOL_CALL[1:], {}, TOOL_CALL_ANSWER),  # template pre-filled <think>: provisional, then reclassified
        (QWEN35_TOOL_CALL[1:], {"assume_open": True}, TOOL_CALL_ANSWER),
        ([*QWEN35_TOOL_CALL[:5], "\n</th", "ink>\n\n", "Reading it now."], {},
         TOOL_CALL_ANSWER + "\n\nReading it now."),
        ([*QWEN35_TOOL_CALL[1:5], "\n</think>\n\nNow </think> is text."], {},
         TOOL_CALL_ANSWER + "\n\nNow </think> is text."),  # only the first closer is structure (rule 7)
        ([*QWEN35_TOOL_CALL[:5], "\n"], {}, TOOL_CALL_ANSWER + "\n"),  # no closer: answer whitespace kept (rule 8)
    ],
)  # fmt: skip
def test_a_sections_own_closer_after_its_terminator_is_structure(pieces, options, answer) -> None:
    """Item 2: `<tool_call>` ended the think section; the `</think>` that follows is dropped, not shown."""
    stream = "".join(pieces)
    for segments in ([("c", p) for p in pieces], chars(stream), [("c", stream)]):
        s, _ = drive(segments, **options)
        assert (s.reasoning, s.answer, s.family) == ("The user wants me to read the file.", answer, "think")
        assert not s.unfinished


@pytest.mark.parametrize(
    ("segments", "reasoning", "answer"),
    [
        ([("r", "I should look this up."), ("r", " Searching now."), ("c", "Let me check."),
          ("r", "The results say 18 degrees and cloudy."), ("r", " That answers it."),
          ("c", " It is 18 °C and cloudy.")],
         "I should look this up. Searching now.\n\nThe results say 18 degrees and cloudy. That answers it.",
         "Let me check. It is 18 °C and cloudy."),  # the reported stream
        ([("r", "a."), ("c", "A"), ("r", " b.")], "a. b.", "A"),  # not glued: nothing added
        ([("r", "a.\n"), ("c", "A"), ("r", "b.")], "a.\nb.", "A"),
        ([("r", "a."), ("c", "A"), ("r", "\n"), ("r", "b."), ("c", "B"), ("r", "c.")], "a.\nb.\n\nc.", "AB"),
        ([("c", f"{HARMONY}r.<|end|><|start|>assistant<|channel|>final<|message|>A<|end|>"
                "<|start|>assistant<|channel|>analysis<|message|>More.")], "r.\n\nMore.", "A"),
    ],
)  # fmt: skip
def test_resumed_reasoning_is_never_glued_to_the_previous_stretch(segments, reasoning, answer) -> None:
    """Item 4: interleaved thinking: stretches that would read "now.The" get a paragraph break."""
    assert result(segments) == (reasoning, answer)


@pytest.mark.parametrize(
    ("stream", "reasoning", "answer", "family"),
    [
        ("Let me use <thinking> tags here.[/THINK]Answer", "Let me use <thinking> tags here.", "Answer", "mistral"),
        ("The user writes [THINK] in the prompt.\n</think>\n\nAnswer", "The user writes [THINK] in the prompt.",
         "Answer", "think"),
        ("So <seed:think> and </seed:think> are literal.</think>A", "So <seed:think> and </seed:think> are literal.",
         "A", "think"),
        ("Maybe ◁think▷ or <reasoning>?[/THINK]A", "Maybe ◁think▷ or <reasoning>?", "A", "mistral"),
        ("Sure. <think>a</think> b", "", "Sure. <think>a</think> b", None),  # rule 6 for the opener's own family
        ("Sure. <think>a</think> b [/THINK] c", "Sure. <think>a</think> b", "c", "mistral"),
    ],
)  # fmt: skip
def test_a_literal_marker_never_stops_another_familys_closer(stream, reasoning, answer, family) -> None:
    """Item 5: an opener after text counts for nothing, so it cannot commit the stream to "answer"."""
    for segments in ([("c", stream)], chars(stream)):
        s, _ = drive(segments)
        assert (s.reasoning, s.answer, s.family) == (reasoning, answer, family)


# ---------------------------------------------------------------------------------------------- options


def test_assume_open() -> None:
    s = ReasoningSplitter(assume_open=True, clock=Clock())
    first = s.feed("\nHmm")
    assert [e.kind for e in first] == ["reasoning_start", "reasoning"] and s.in_reasoning
    s.feed(" ok</think>\n\nA")
    s.close()
    assert (s.reasoning, s.answer, s.family) == ("Hmm ok", "A", "think")


@pytest.mark.parametrize(
    ("stream", "reasoning", "answer", "unfinished"),
    [
        ("r[/THINK]A", "r", "A", False),
        ("<think>r</think>A", "r", "A", False),  # an explicit opener is still accepted
        ("r <tool_call>{}", "r", "<tool_call>{}", False),
        ("never closed", "never closed", "", True),
        ("r </thinking> still", "r </thinking> still", "", True),
    ],
)
def test_assume_open_cases(stream: str, reasoning: str, answer: str, unfinished: bool) -> None:
    for segments in ([("c", stream)], chars(stream)):
        s, _ = drive(segments, assume_open=True)
        assert (s.reasoning, s.answer, s.unfinished) == (reasoning, answer, unfinished)


def test_assume_open_with_field_reasoning_is_server_split() -> None:
    s, _ = drive([("r", "r"), ("c", "A </think> B")], assume_open=True)
    assert (s.reasoning, s.answer) == ("r", "A </think> B")


def test_custom_markers() -> None:
    s, _ = drive(chars("<<plan>>r<</plan>>A"), markers=[("<<plan>>", "<</plan>>")])
    assert (s.reasoning, s.answer, s.family) == ("r", "A", "custom")
    s, _ = drive(chars("r<</plan>>A"), markers=[("<<plan>>", "<</plan>>")])  # user ends are prefill-capable
    assert (s.reasoning, s.answer, s.family) == ("r", "A", "custom")
    s, _ = drive(chars("<think>r</think>A"), markers=[("<<plan>>", "<</plan>>")])  # built-ins still known
    assert s.family == "think"


def test_custom_markers_take_priority_and_prefix_overlap() -> None:
    s, _ = drive(chars("<think>r</think>A"), markers=[("<think>", "</think>")])
    assert s.family == "custom"
    # a user opener that extends a built-in one: longest match wins, the shorter is not committed early
    s, _ = drive(chars("<think>>r<</think>>A"), markers=[("<think>>", "<</think>>")])
    assert (s.reasoning, s.answer, s.family) == ("r", "A", "custom")
    with pytest.raises(ValueError):
        ReasoningSplitter(markers=[("", "x")])


def test_events_use_injected_clock_in_order() -> None:
    _, events = drive(chars("<think>r</think>A"))
    assert [e.t for e in events] == sorted(e.t for e in events) and events[0].t >= 1.0
    kinds = [e.kind for e in events]
    assert kinds == ["reasoning_start", "reasoning", "reasoning_end", "answer"]
    # one clock() per feed; reasoning starts with its first text ('r', feed 8), not with '<think>' (feed 7)
    assert events[0].t == 8.0 and events[-1].t == 17.0


def test_feed_after_close_is_an_error() -> None:
    s = ReasoningSplitter()
    s.close()
    assert s.close() == []
    with pytest.raises(RuntimeError):
        s.feed("x")


# ---------------------------------------------------------------------------------------------- properties

REPRESENTATIVE: list[list[Segment]] = [[("c", stream)] for _, stream, _, _ in FAMILY_CASES] + [
    [("c", "Let me think.\n</think>\n\nIt is 5.")],
    [("c", " plain <think>x</think> y ")],
    [("c", '<think>a <tool_call>{"x": 1}</tool_call>')],
    [("c", "<think>a</think><think>b</think>c")],
    [("c", "<think>\nr\n</think>\n<answer>\nA\n</answer>\n")],
    [("c", f"{HARMONY}r<|end|><|start|>assistant<|channel|>final <|constrain|>json<|message|>{{}}")],
    [("r", "field "), ("c", " \n A <think> "), ("r", "more"), ("c", "B")],
    [("c", "<think>in"), ("r", "fi"), ("c", "line</think>ans")],
    [("c", "<think>cut </thi")],
]

TOKENS = ["<think>", "</think>", "<", "/", ">", "t", "hi", "nk", " ", "\n", "a", "[THINK]", "[/THINK]",
          "<|channel|>", "analysis", "final", "<|message|>", "<|end|>", "<|start|>", "<answer>", "</answer>",
          "<tool_call>", "Here is my thought process:", "Here is my response:", "<|channel>thought",
          "<channel|>", "<|constrain|>", "</mm:think>", "<seed:think>", "◁/think▷", "<thinking>", "</tool_call>",
          "\n\n"]  # fmt: skip


def check_rechunk_invariance(segments: list[Segment], cuts: list[int], **kw: object) -> None:
    whole = drive(merged(segments), **kw)[0]
    parts = drive(rechunk(segments, cuts), **kw)[0]
    assert (parts.reasoning, parts.answer) == (whole.reasoning, whole.answer)
    assert (parts.family, parts.unfinished) == (whole.family, whole.unfinished)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), assume_open=st.booleans())
def test_rechunking_never_changes_the_result(data: st.DataObject, assume_open: bool) -> None:
    segments = data.draw(st.sampled_from(REPRESENTATIVE))
    total = sum(len(t) for _, t in segments)
    cuts = data.draw(st.lists(st.integers(1, max(1, total - 1)), max_size=total))
    check_rechunk_invariance(segments, cuts, assume_open=assume_open)


@settings(max_examples=400, deadline=None)
@given(
    tokens=st.lists(st.tuples(st.sampled_from(["c", "c", "c", "r"]), st.sampled_from(TOKENS)), max_size=30),
    cuts=st.lists(st.integers(1, 400), max_size=60),
    per_char=st.booleans(),
    options=st.sampled_from([{}, {"assume_open": True}, {"markers": [("<th", "</th")]}]),
)
def test_rechunking_random_marker_soup(tokens: list[Segment], cuts: list[int], per_char: bool, options: dict) -> None:
    """Arbitrary marker soup (with the growth invariants checked inside drive) is chunking-independent."""
    if per_char:
        cuts = list(range(1, sum(len(t) for _, t in tokens)))
    check_rechunk_invariance(tokens, cuts, **options)


# ---------------------------------------------------------------------------------------------- seeds


def seed_segments(path: Path) -> tuple[dict, list[Segment]]:
    """A seed trace (seeds/README.md): header line, then one delta per line with content/reasoning fields."""
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    header, segments = lines[0], []
    for delta in lines[1:]:
        reasoning = "".join(delta.get(k) or "" for k in ("reasoning_content", "reasoning", "thinking"))
        if reasoning:
            segments.append(("r", reasoning))
        if delta.get("content"):
            segments.append(("c", delta["content"]))
    return header, segments


def expected_split(dialect: str, text: str) -> tuple[str, str, bool]:
    """Independent, non-streaming reference for the layouts the seeds use: (reasoning, answer, unfinished)."""
    harmony_closer = "<|end|><|start|>assistant<|channel|>final<|message|>"
    pairs = {"think": ("<think>", "</think>"), "mistral": ("[THINK]", "[/THINK]"),
             "seed": ("<seed:think>", "</seed:think>"), "kimi": ("◁think▷", "◁/think▷"),
             "bot": ("<|begin_of_thought|>", "<|end_of_thought|>"), "prefilled": ("", "</think>"),
             "harmony": ("<|channel|>analysis<|message|>", harmony_closer)}  # fmt: skip
    if dialect == "plain":
        return "", text, False
    opener, closer = pairs[dialect]
    assert text.startswith(opener)
    inner, found, answer = text[len(opener) :].partition(closer)
    if not found:
        return inner.strip(), "", True
    answer = answer.strip()
    if dialect == "bot":
        answer = answer.removeprefix("<|begin_of_solution|>").removesuffix("<|end_of_solution|>").strip()
    return inner.strip(), answer, False


def test_seed_files_exist() -> None:
    assert any(p.name.startswith("g-") for p in SEED_FILES), "converted captures expected in seeds/"


@pytest.mark.parametrize("path", SEED_FILES, ids=[p.stem for p in SEED_FILES])
def test_seed_traces_split_as_expected(path: Path) -> None:
    header, segments = seed_segments(path)
    dialect = header.get("dialect", "plain")
    content = "".join(t for f, t in segments if f == "c")
    s, _ = drive(segments)
    if any(f == "r" for f, _ in segments):
        assert s.family == "field" and s.answer == content.lstrip()
        return
    reasoning, answer, unfinished = expected_split(dialect, content)
    assert (s.reasoning, s.answer, s.unfinished) == (reasoning, answer, unfinished)
    if reasoning:
        assert s.family == {"bot": "begin_of_thought", "prefilled": "think"}.get(dialect, dialect)


@pytest.mark.parametrize("path", SEED_FILES, ids=[p.stem for p in SEED_FILES])
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_seed_traces_rechunking_invariance(path: Path, data: st.DataObject) -> None:
    _, segments = seed_segments(path)
    total = sum(len(t) for _, t in segments)
    cuts = data.draw(st.lists(st.integers(1, max(1, total - 1)), max_size=200))
    check_rechunk_invariance(segments, cuts)
    check_rechunk_invariance(segments, list(range(1, total)))  # one char per delta


# ---------------------------------------------------------------------------------------------- cost
# Linear growth is measured by tests/benchmarks/bench_engine.py, not asserted in a timed test.


def test_reading_the_texts_is_cached() -> None:
    """Reading without new text costs nothing: the same string object comes back."""
    s = ReasoningSplitter()
    s.feed("<think>abc</think>xyz")
    r, a = s.reasoning, s.answer
    assert s.reasoning is r and s.answer is a
    s.feed("!")
    assert s.answer == "xyz!" and s.reasoning is r


def test_resumed_reasoning_split_at_a_space_keeps_it() -> None:
    """Found by the marker soup: the paragraph break must not eat the whitespace held back after it."""
    head = [("r", "a."), ("c", "A")]
    assert result([*head, ("r", "thought "), ("r", "process")]) == ("a.\n\nthought process", "A")
