"""The reasoning outline: step rules on hand-written and seed traces, chunking invariance, the recorder hook."""

from __future__ import annotations

import io
import itertools
import json
import os
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from viewer.ask import DIM, RESET, AskPrinter
from viewer.client import Delta
from viewer.demo.seeds import load_traces
from viewer.export import from_json, to_html, to_json, to_markdown
from viewer.models import AssistantTurn, Conversation, Message
from viewer.outline import (
    PIVOTS,
    TITLE_MAX_CHARS,
    OutlineBuilder,
    match_pivot,
    outline,
    outline_and_stats,
    shorten,
    step_text,
)
from viewer.reasoning import ReasoningSplitter
from viewer.store import Store
from viewer.turn import TurnOptions, TurnRecorder

R1_STYLE = """Okay, so the user wants 17 × 23. Let me break it up.

17 × 20 = 340, and 17 × 3 = 51.

Wait, I should double-check that. 17 × 3 = 51, yes.

Alternatively, 23 × 17 = 23 × 10 + 23 × 7 = 230 + 161.

Let me verify: 340 + 51 = 391.

So the answer is 391."""


def _titles_kinds(text: str) -> list[tuple[str, str]]:
    return [(s.kind, s.title) for s in outline(text)]


def test_r1_style_pivots_start_steps_with_their_first_sentence_as_title():
    assert _titles_kinds(R1_STYLE) == [
        ("start", "Okay, so the user wants 17 × 23."),
        ("backtrack", "Wait, I should double-check that."),
        ("alternative", "Alternatively, 23 × 17 = 23 × 10 + 23 × 7 = 230 + 161."),
        ("check", "Let me verify: 340 + 51 = 391."),
        ("conclusion", "So the answer is 391."),
    ]


def test_steps_tile_the_text_from_the_first_step_to_the_end():
    steps = outline(R1_STYLE)
    assert steps[0].start == 0
    for a, b in itertools.pairwise(steps):
        assert a.start + a.size == b.start
    assert steps[-1].start + steps[-1].size == len(R1_STYLE)
    assert step_text(R1_STYLE, steps[1]).startswith("Wait, I should")
    assert step_text(R1_STYLE, steps[1]).rstrip().endswith("yes.")


def test_bold_headings_start_steps_and_own_the_next_paragraph():
    text = (
        "**Identifying the third planet**\n\nWait, this paragraph belongs to the heading.\n\n"
        "Some detail.\n\n**Checking the orbit**\nIt is 1 AU.\n\n## Final tally\n\nDone."
    )
    assert _titles_kinds(text) == [
        ("heading", "Identifying the third planet"),
        ("heading", "Checking the orbit"),
        ("heading", "Final tally"),
    ]


def test_bold_that_is_only_emphasis_or_in_code_starts_no_step():
    text = "Start here.\n\n**bold** words in a sentence count as a heading span.\n\n```\nWait, code\nBut code\n```\n"
    kinds = [s.kind for s in outline(text)]
    assert kinds == ["start", "heading"]  # a line opening with a short bold span is a heading; code is never a step
    long_bold = "Start.\n\n**" + "x " * 100 + "** trailing"
    assert [s.kind for s in outline(long_bold)] == ["start"]


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("Wait, that is wrong", "backtrack"),
        ("But wait, 5 is odd", "backtrack"),
        ("But 5 is odd", "pivot"),
        ("Butter is not a pivot", None),
        ("Hmm, maybe", "pivot"),
        ("Let me double-check 17 × 3", "check"),
        ("So the answer is 4", "conclusion"),
        ("So 4", None),
        ("- Alternatively, use a table", "alternative"),
        ("等等，这里不对", "backtrack"),
        ("或者用另一种方法", "alternative"),
        ("嗯，用户问的是", "pivot"),
        ("所以答案是 391", "conclusion"),
        ("The sum is 4", None),
    ],
)
def test_pivot_table(line: str, kind: str | None):
    assert match_pivot(line) == kind


def test_every_pivot_phrase_opens_a_step_of_its_kind():
    for kind, phrases in PIVOTS.items():
        for phrase in phrases:
            steps = outline(f"Begin.\n\n{phrase} and then some words follow here.")
            assert len(steps) == 2, phrase
            # a longer phrase of another kind may win ("But wait" over "But"), never no match
            assert steps[1].kind == match_pivot(phrase + " and"), phrase
            assert steps[1].kind in PIVOTS, (kind, phrase)


def test_titles_are_shortened_at_a_word_boundary():
    long = "Okay, so " + " ".join(f"word{i}" for i in range(60)) + "."
    (step,) = outline(long)
    assert len(step.title) <= TITLE_MAX_CHARS
    assert step.title.endswith("…")
    assert long.startswith(step.title[:-1])
    assert step.title[:-1].split()[-1] in long.split()  # whole words only
    assert len(shorten("字" * 300)) == TITLE_MAX_CHARS


def test_title_is_provisional_until_the_first_sentence_ends():
    b = OutlineBuilder()
    b.feed("Okay, so")
    assert b.steps == []  # "Okay, so" could still grow into a longer pivot phrase: undecided
    b.feed(" the user")
    assert [s.title for s in b.steps] == ["Okay, so the user"]  # the step shows as soon as it is known
    b.feed(" wants a number and more words")
    assert b.steps[0].title == "Okay, so the user wants a number and more words"
    assert not b.title_final and b.final_count == 0
    v = b.version
    b.feed(" here. Then more text")
    assert b.steps[0].title == "Okay, so the user wants a number and more words here."
    assert b.title_final and b.version > v
    b.feed("\n\nWait, a second step.")
    assert b.final_count == 1 and len(b.steps) == 2
    first = (b.steps[0].title, b.steps[0].size)
    b.feed(" More of it.")
    assert (b.steps[0].title, b.steps[0].size) == first  # final steps never change
    assert b.steps[1].size == len("Wait, a second step. More of it.")
    b.close()
    assert b.final_count == 2


def test_since_hands_a_live_viewer_each_final_step_once():
    b = OutlineBuilder()
    cursor, drawn, currents = 0, [], []
    for piece in [R1_STYLE[i : i + 7] for i in range(0, len(R1_STYLE), 7)]:
        b.feed(piece)
        update = b.since(cursor)
        drawn += update.final
        cursor = update.cursor
        if update.current is not None:
            currents.append(update.current.title)
            update.current.title = "scribbled"  # a copy: the builder is not affected
    b.close()
    last = b.since(cursor)
    drawn += last.final
    assert last.current is None and last.cursor == len(b.steps)
    assert drawn == outline(R1_STYLE)
    assert "Wait, I sho" in currents  # the step being written shows at once, its title growing
    assert "Wait, I should double-check that." in currents
    assert b.since(last.cursor).final == []


def test_stats_count_self_checks_backtracks_alternatives():
    steps, stats = outline_and_stats(R1_STYLE, 120)
    assert stats.steps == len(steps) == 5
    assert (stats.self_checks, stats.backtracks, stats.alternatives) == (2, 1, 1)
    assert stats.characters == len(R1_STYLE) and stats.tokens == 120


def test_empty_and_blank_reasoning_have_no_steps():
    assert outline("") == []
    assert outline("\n\n  \n") == []
    b = OutlineBuilder()
    b.feed("\n\n")
    b.feed("Hi there.")
    b.close()
    assert [(s.start, s.title) for s in b.steps] == [(2, "Hi there.")]


def _seed_reasonings() -> list[tuple[str, str]]:
    out = []
    for trace in load_traces():
        sp = ReasoningSplitter(assume_open=trace.dialect == "prefilled")
        for d in trace.deltas:
            sp.feed(content=d.content, reasoning=d.reasoning_content or d.reasoning)
        sp.close()
        out.append((trace.name, sp.reasoning))
    return out


SEEDS = dict(_seed_reasonings())


def test_seed_traces_outline_at_their_pivots():
    long = outline(SEEDS["long-residues"])
    assert len(long) > 50
    assert long[0].kind == "start" and long[0].title.startswith("Okay, so I need every n")
    assert {s.kind for s in long} >= {"backtrack", "alternative", "pivot"}
    text = SEEDS["long-residues"]
    for s in long[1:]:
        assert text[s.start - 1] == "\n"  # every step opens a line
        assert match_pivot(text[s.start : s.start + 60]) == s.kind
    novel = _titles_kinds(SEEDS["scene-novel-insight"])
    assert novel[0] == ("start", "Okay, so the user wants one truly novel insight about humans.")
    assert ("backtrack", 'Wait, is "the future self is a stranger" already known?') in novel
    assert [k for k, _ in _titles_kinds(SEEDS["r1-multiply"])] == ["start", "check"]


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_every_seed_outline_is_consistent(name: str):
    text = SEEDS[name]
    steps = outline(text)
    assert bool(steps) == bool(text.strip())
    assert sum(s.size for s in steps) == len(text) - (steps[0].start if steps else len(text))
    assert all(0 < len(s.title) <= TITLE_MAX_CHARS for s in steps)


def _chunked(text: str, cuts: list[int], whole: list | None = None) -> OutlineBuilder:
    """Feed `text` cut at `cuts`; with `whole` (its outline), check the finality promises after every chunk."""
    b = OutlineBuilder()
    prev = 0
    for c in sorted(set(min(c, len(text)) for c in cuts)):
        b.feed(text[prev:c])
        steps = b.steps  # reading mid-stream must not change the result
        if whole is not None:
            final = b.final_count
            assert steps[:final] == whole[:final]  # final steps never change again
            if steps and b.title_final:
                assert steps[-1].title == whole[len(steps) - 1].title  # nor does a final title
            assert [s.start for s in steps] == [s.start for s in whole[: len(steps)]]
        prev = c
    b.feed(text[prev:])
    b.close()
    return b


PIECES = [
    "Okay, so ",
    "Wait, ",
    "**Head**",
    "# H ",
    "But ",
    "x",
    "y. ",
    "\n",
    "\n\n",
    "```",
    "等等，",
    " ",
    "So the answer",
]


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(st.sampled_from(PIECES) | st.text(max_size=8), max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=30),
)
def test_any_rechunking_gives_the_same_outline(parts: list[str], cuts: list[int]):
    text = "".join(parts)
    whole = outline(text)
    assert _chunked(text, cuts, whole).steps == whole
    assert _chunked(text, list(range(len(text))), whole).steps == whole  # one character at a time


@settings(max_examples=20, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(SEEDS["scene-novel-insight"])), max_size=60))
def test_seed_rechunking_gives_the_same_outline(cuts: list[int]):
    text = SEEDS["scene-novel-insight"]
    assert _chunked(text, cuts, outline(text)).steps == outline(text)


def test_recorder_outlines_reasoning_including_reclassified_text():
    rec = TurnRecorder(model="m", options=TurnOptions())
    for piece in ["Okay, so this is provisional text.\n\n", "Wait, it was reasoning.", "</think>", "The answer."]:
        rec.feed(Delta(content=piece))
    rec.finish()
    turn = rec.snapshot()
    assert turn.reasoning.startswith("Okay, so")
    assert [(s.kind, s.title) for s in turn.outline] == [
        ("start", "Okay, so this is provisional text."),
        ("backtrack", "Wait, it was reasoning."),
    ]
    assert turn.reasoning_stats is not None and turn.reasoning_stats.steps == 2
    assert turn.reasoning_stats.backtracks == 1


def test_recorder_snapshot_while_streaming_copies_steps():
    rec = TurnRecorder(model="m", options=TurnOptions())
    rec.feed(Delta(reasoning="Okay, so a first step is here.\n\nBut a second one"))
    mid = rec.snapshot()
    rec.feed(Delta(reasoning=" keeps growing."))
    assert mid.outline[-1].size == len("But a second one")  # the snapshot does not move with the builder
    rec.feed(Delta(content="Answer."))
    rec.finish()
    end = rec.snapshot()
    assert end.outline[-1].title == "But a second one keeps growing."
    assert end.outline == outline(end.reasoning)


def test_old_rows_get_their_outline_on_load():
    old = AssistantTurn.model_validate_json('{"reasoning": "' + R1_STYLE.replace("\n", "\\n") + '", "answer": "391"}')
    assert [s.kind for s in old.outline] == ["start", "backtrack", "alternative", "check", "conclusion"]
    assert old.reasoning_stats is not None and old.reasoning_stats.steps == 5
    again = AssistantTurn.model_validate_json(old.model_dump_json())
    assert again.outline == old.outline and again.reasoning_stats == old.reasoning_stats
    assert AssistantTurn(answer="no thinking").outline == []
    given = AssistantTurn(reasoning=R1_STYLE, outline=old.outline[:2])  # an outline without stats: counted
    assert given.reasoning_stats is not None and given.reasoning_stats.backtracks == 1


# -- the CLI: ask --json and ask --outline, against the replay server ----------------------------------------

NOVEL = "Tell me one truly novel insight about humans."


def _ask(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_BASE_URL"}
    cmd = [sys.executable, "-m", "viewer.cli", "ask", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)


@pytest.mark.parametrize("model", ["demo-r1", "demo-r1-prefilled", "demo-qwen3-field"])
def test_ask_json_has_the_outline_and_stats(replay_server, model: str):
    result = _ask(NOVEL, "--base-url", replay_server.base_url, "--model", model, "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["outline"] and out["reasoning_stats"]["steps"] == len(out["outline"])
    expected = outline(out["reasoning"])
    assert [(s["title"], s["start"], s["kind"], s["size"]) for s in out["outline"]] == [
        (s.title, s.start, s.kind, s.size) for s in expected
    ]
    for s in out["outline"][1:]:
        assert out["reasoning"][s["start"] - 1] == "\n"  # every step after the first opens a line
        assert match_pivot(out["reasoning"][s["start"] : s["start"] + 60]) == s["kind"]
    stats = out["reasoning_stats"]
    assert stats["self_checks"] == sum(s["kind"] in ("check", "backtrack") for s in out["outline"]) >= 1
    assert stats["alternatives"] == 1 and stats["characters"] == len(out["reasoning"])
    assert stats["tokens"] == out["usage"]["reasoning_tokens"]


def test_ask_json_without_reasoning_has_an_empty_outline(replay_server):
    result = _ask(NOVEL, "--base-url", replay_server.base_url, "--model", "demo-v3", "--json")
    out = json.loads(result.stdout)
    assert out["outline"] == [] and out["reasoning_stats"]["steps"] == 0


def test_ask_outline_prints_numbered_titles_instead_of_the_reasoning(replay_server):
    result = _ask(NOVEL, "--base-url", replay_server.base_url, "--model", "demo-r1", "--outline")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    full = json.loads(_ask(NOVEL, "--base-url", replay_server.base_url, "--model", "demo-r1", "--json").stdout)
    steps = outline(full["reasoning"])
    lines = [f"{i}. {s.title}" for i, s in enumerate(steps, 1)]
    assert text.startswith(lines[0] + "\n")
    assert text.index(lines[-1]) < text.index("Thought for") < text.index(full["answer"].strip()[:30])
    assert all(line in text for line in lines)
    assert step_text(full["reasoning"], steps[0]).strip()[:200] not in text  # the full reasoning is not printed


def test_outline_printer_dims_the_titles_on_a_terminal():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Tty()
    rec = TurnRecorder(model="m")
    printer = AskPrinter(out, rec, outline=True)
    for piece in ["<think>Okay, so one.", "\n\nWait, two.\n\n", "</think>", "Answer."]:
        printer.on_events(rec.feed(Delta(content=piece)))
        if piece.startswith("\n\nWait"):
            assert "1. Okay, so one." in out.getvalue()  # printed live, as soon as the title is final
    printer.on_events(rec.finish())
    printer.finish(rec.snapshot())
    text = out.getvalue()
    assert text.startswith(DIM + "1. Okay, so one.\n2. Wait, two.\n" + RESET)
    assert text.index("2. Wait, two.") < text.index("Thought for") < text.index("Answer.")


# -- persistence, search and export --------------------------------------------------------------------------


def _conversation_with_outline() -> Conversation:
    turn = AssistantTurn(reasoning=R1_STYLE + "\n\nBut ![pic](http://evil.example/x.png) <b>bold</b>.", answer="391")
    turn.step_titles = {str(turn.outline[1].start): "Rechecking seventeen times three"}
    messages = [Message(role="user", content="What is 17 × 23?"), Message(role="assistant", turn=turn)]
    return Conversation(title="Multiply", messages=messages)


def test_outline_and_stats_are_stored_with_the_turn(tmp_path):
    conv = _conversation_with_outline()
    with Store(tmp_path / "db.sqlite") as store:
        stored = store.import_conversation(conv)
        back = store.get_conversation(stored.id)
    assert back is not None
    turn = back.messages[1].turn
    assert turn is not None and turn.outline == conv.messages[1].turn.outline  # type: ignore[union-attr]
    assert turn.reasoning_stats == conv.messages[1].turn.reasoning_stats  # type: ignore[union-attr]
    assert turn.step_titles == conv.messages[1].turn.step_titles  # type: ignore[union-attr]


def test_search_matches_model_written_step_titles(tmp_path):
    conv = _conversation_with_outline()
    with Store(tmp_path / "db.sqlite") as store:
        stored = store.import_conversation(conv)
        hits = store.search("seventeen times")
        assert [(h.conversation_id, h.field, h.snippet) for h in hits] == [
            (stored.id, "step", "Rechecking seventeen times three")
        ]
        # a heuristic title is reasoning text: the reasoning hit stands for it, once
        assert [h.field for h in store.search("double-check")] == ["reasoning"]
        assert store.search("no such title anywhere") == []
        assert [h.field for h in store.search("SEVENTEEN")] == ["step"]  # case-insensitive like the rest
        assert [h.field for h in store.search("Rechecking seventeen é")] == []  # the non-ASCII path runs too


def test_exports_list_the_steps_above_the_reasoning():
    conv = _conversation_with_outline()
    turn = conv.messages[1].turn
    assert turn is not None
    md = to_markdown(conv)
    body = md[md.index("<details>") :]
    assert body.index("1. Okay, so the user wants 17 × 23.") < body.index("2. Rechecking seventeen times three")
    assert body.index("2. Rechecking") < body.index("Okay, so the user wants 17 × 23. Let me break it up.")
    assert "6. But \\!\\[pic\\](http://evil.example/x.png) \\<b\\>bold\\</b\\>." in md  # a title stays text
    assert "![pic]" not in md.split("</details>")[0].split("**Steps**")[1].split("\n\n")[1]
    page = to_html(conv)
    outline_html = page[page.index('<ol class="outline">') : page.index("</ol>")]
    assert outline_html.count("<li") == len(turn.outline)
    assert '<li class="step backtrack">Rechecking seventeen times three</li>' in outline_html
    assert "&lt;b&gt;bold&lt;/b&gt;" in outline_html and "<b>" not in outline_html
    assert page.index('<ol class="outline">') < page.index('<div class="body">')
    data = json.loads(to_json(conv))["conversation"]["messages"][1]["turn"]
    assert [s["title"] for s in data["outline"]][:2] == [s.title for s in turn.outline][:2]
    assert data["reasoning_stats"]["steps"] == len(turn.outline) and data["step_titles"] == turn.step_titles
    assert from_json(to_json(conv)).messages[1].turn == turn
    assert "**Steps**" not in to_markdown(conv, include_reasoning=False)
    assert '<ol class="outline">' not in to_html(conv, include_reasoning=False)
