"""Tests for viewer.export: Markdown, standalone HTML and JSON (lossless round-trip)."""

from __future__ import annotations

import json
import string
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from viewer.export import (
    CSP,
    FORMAT,
    ViewerImportError,
    from_json,
    to_html,
    to_json,
    to_markdown,
)
from viewer.models import AssistantTurn, Conversation, ErrorInfo, Message, Timings, Usage

XSS_SCRIPT = "<script>alert(1)</script>"
XSS_IMG = "<img src=x onerror=alert(1)>"
T0 = datetime(2025, 6, 7, 8, 9, 10, 123456, tzinfo=timezone.utc)


def _turn(**kw) -> AssistantTurn:
    base = dict(
        reasoning="First, **consider** the tides.\n\n- one\n- two",
        answer="The answer is *42*.",
        model="deepseek-r1",
        status="done",
        finish_reason="stop",
        timings=Timings(started_at=T0, first_byte=0.2, reasoning_start=0.4, reasoning_end=12.6, end=14.0),
        usage=Usage(prompt_tokens=12, reasoning_tokens=300, answer_tokens=8, approximate=False),
    )
    base.update(kw)
    return AssistantTurn(**base)


def _conv(*turns: AssistantTurn, title: str = "Tides & moons", prompt: str = "Why are there tides?") -> Conversation:
    messages: list[Message] = []
    for turn in turns or (_turn(),):
        messages.append(Message(role="user", content=prompt, created_at=T0))
        messages.append(Message(role="assistant", turn=turn, created_at=T0))
    return Conversation(title=title, created_at=T0, updated_at=T0, model="deepseek-r1", messages=messages)


class Tree(HTMLParser):
    """Collects what matters for safety: elements, attributes, and text with the enclosing element stack."""

    VOID: ClassVar[frozenset[str]] = frozenset(
        {"meta", "br", "hr", "img", "input", "link", "area", "base", "col", "embed", "source", "wbr"}
    )

    def __init__(self, page: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.texts: list[tuple[tuple[str, ...], str]] = []
        self.stack: list[str] = []
        self.feed(page)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        if tag in self.stack:
            while self.stack.pop() != tag:
                pass

    def handle_data(self, data: str) -> None:
        self.texts.append((tuple(self.stack), data))

    def tags(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.elements if tag == name]

    def text(self, inside: str | None = None) -> str:
        return "".join(t for stack, t in self.texts if inside is None or inside in stack)


def _assert_inert(tree: Tree) -> None:
    names = {tag for tag, _ in tree.elements}
    assert not names & {"script", "iframe", "object", "embed", "img", "link", "base", "form", "svg", "math"}
    for tag, attrs in tree.elements:
        assert not [a for a in attrs if a.startswith("on")], (tag, attrs)
        assert "src" not in attrs, (tag, attrs)
        assert "srcset" not in attrs, (tag, attrs)


# -- shared label ----------------------------------------------------------------------------------------


# -- Markdown --------------------------------------------------------------------------------------------


def test_markdown_structure() -> None:
    conv = _conv()
    conv.system_prompt = "Be terse."
    md = to_markdown(conv)
    assert md.startswith("# Tides &amp; moons\n")
    assert "### System prompt\n\nBe terse.\n" in md
    assert "### You\n\nWhy are there tides?\n" in md
    assert "### Assistant · deepseek-r1\n" in md
    assert (
        "<details><summary>Thought for 12 seconds</summary>\n\n"
        "First, **consider** the tides.\n\n- one\n- two\n\n</details>\n\nThe answer is *42*.\n"
    ) in md
    assert md.index("### You") < md.index("<details>") < md.index("The answer is")


def test_markdown_without_reasoning() -> None:
    md = to_markdown(_conv(), include_reasoning=False)
    assert "<details>" not in md and "consider" not in md
    assert "The answer is *42*." in md


def test_markdown_notes_and_cut_off_reasoning() -> None:
    stopped = _turn(answer="", status="stopped", stopped=True, unfinished=True)
    failed = _turn(status="error", error=ErrorInfo(kind="http", message="Server returned 500"))
    md = to_markdown(_conv(stopped, failed))
    assert "Stopped after 12 s of thinking</summary>" in md
    assert "Stopped by the user." in md
    assert "Error: Server returned 500" in md


def test_markdown_reasoning_cannot_break_out_of_details() -> None:
    """Render the export the way a permissive previewer would (raw HTML on) and check the result."""
    evil = f"Consider this.\n\n</details>\n\n{XSS_SCRIPT}\n\n{XSS_IMG}\n\n<details open>\nstill thinking & more"
    md = to_markdown(_conv(_turn(reasoning=evil, answer="Final.")))
    assert md.count("</details>") == 1
    assert md.count("<details>") == 1
    tree = Tree(MarkdownIt("commonmark", {"html": True}).render(md))
    _assert_inert(tree)
    assert len(tree.tags("details")) == 1
    inside = tree.text(inside="details")
    for fragment in ("</details>", XSS_SCRIPT, XSS_IMG, "<details open>", "still thinking & more"):
        assert fragment in inside  # shown as text, inside the fold
    assert "Final." not in inside and "Final." in tree.text()


# -- HTML ------------------------------------------------------------------------------------------------


def test_html_page_is_standalone_and_escaped() -> None:
    turn = _turn(
        reasoning=f"Hmm {XSS_SCRIPT} and {XSS_IMG} and **bold** thought",
        answer=f"Answer {XSS_SCRIPT}\n\n{XSS_IMG}\n\n| a | b |\n|---|---|\n| 1 | ~~2~~ |",
    )
    conv = _conv(turn, title=f"Title {XSS_SCRIPT}", prompt=f"My prompt {XSS_IMG}")
    page = to_html(conv)
    assert page.startswith("<!DOCTYPE html>")
    tree = Tree(page)
    _assert_inert(tree)
    assert tree.tags("meta")[0] == {"charset": "utf-8"}
    assert {"http-equiv": "Content-Security-Policy", "content": CSP} in tree.tags("meta")
    assert CSP == "default-src 'none'; style-src 'unsafe-inline'"
    assert len(tree.tags("style")) == 1 and all(not a for a in tree.tags("style"))
    assert "http" not in tree.text(inside="style")  # no remote fonts or imports
    assert tree.text(inside="title") == f"Title {XSS_SCRIPT}"
    assert tree.text(inside="h1") == f"Title {XSS_SCRIPT}"
    assert f"My prompt {XSS_IMG}" in tree.text()
    reasoning_text = tree.text(inside="details")
    assert XSS_SCRIPT in reasoning_text and XSS_IMG in reasoning_text
    answer_text = tree.text().split(reasoning_text, 1)[1]
    assert XSS_SCRIPT in answer_text and XSS_IMG in answer_text
    # Markdown is rendered (with tables and strikethrough), only raw HTML is not.
    assert {"strong", "table", "s"} <= {tag for tag, _ in tree.elements}


def test_html_reasoning_is_folded() -> None:
    page = to_html(_conv(_turn(), _turn(reasoning="Again.", timings=Timings(), unfinished=True)))
    tree = Tree(page)
    details = tree.tags("details")
    assert len(details) == 2
    assert all("open" not in attrs for attrs in details)
    summaries = [t for stack, t in tree.texts if stack and stack[-1] == "summary"]
    assert summaries == ["Thought for 12 seconds", "Thought"]  # a clean finish, though the section never closed
    no_reasoning = Tree(to_html(_conv(), include_reasoning=False))
    assert no_reasoning.tags("details") == []
    assert "consider" not in no_reasoning.text() and "42" in no_reasoning.text()


def test_html_links_only_web_and_mail() -> None:
    answer = (
        "[ok](https://example.org/a?b=1) [bad](javascript:alert(1)) [vb](vbscript:x) "
        "[file](file:///etc/passwd) "
        "[rel](notes.html) [mail](mailto:ann@example.org) [anchor](#top) "
        "![tracker](https://tracker.example/pixel.png) ![inline](data:image/png;base64,AAAA) "
        "<https://auto.example/> [data](data:text/html;base64,PHNjcmlwdD4=)"
    )
    tree = Tree(to_html(_conv(_turn(answer=answer, reasoning="[r](javascript:alert(2)) [s](https://r.example)"))))
    _assert_inert(tree)
    hrefs = [attrs.get("href") for tag, attrs in tree.elements if "href" in attrs]
    assert all(tag == "a" for tag, attrs in tree.elements if "href" in attrs)
    assert sorted(hrefs) == sorted(
        [
            "https://example.org/a?b=1",
            "mailto:ann@example.org",
            "#top",
            "https://tracker.example/pixel.png",  # an image becomes a plain link, never loaded
            "https://auto.example/",
            "https://r.example",
        ]
    )
    assert all("noreferrer" in (a.get("rel") or "") for a in tree.tags("a"))
    assert "[image: tracker]" in tree.text()


# -- JSON ------------------------------------------------------------------------------------------------


def _rich_conversation() -> Conversation:
    tz = timezone(timedelta(hours=-7))
    return Conversation(
        id="abc123",
        title="Ünïcode 🧠 “quotes” \u2028 and\ttabs",
        created_at=T0.astimezone(tz),
        updated_at=T0 + timedelta(seconds=90),
        endpoint="local llama",
        model="qwen3-32b",
        system_prompt="思考してください",
        messages=[
            Message(id="s", role="system", content="思考してください", created_at=T0),
            Message(id="u1", role="user", content="Hi\n\n```py\nprint('x')\n```", created_at=T0),
            Message(
                id="a1",
                role="assistant",
                created_at=T0,
                turn=_turn(
                    reasoning="<think> nested?\r\n\x00 odd bytes \U0001f600",
                    answer="",
                    raw="<think>…",
                    status="stopped",
                    stopped=True,
                    unfinished=True,
                    finish_reason=None,
                    family="qwen3",
                    malformed_chunks=3,
                    timings=Timings(started_at=T0, first_byte=0.123456789, reasoning_start=1e-9),
                    usage=Usage(reasoning_tokens=7),
                    request_params={"temperature": 0.6, "stop": ["</s>"], "extra_body": {"top_k": 20}},
                ),
            ),
            Message(
                id="a2",
                role="assistant",
                created_at=T0,
                turn=_turn(
                    status="error",
                    cut_off=True,
                    finish_reason="length",
                    error=ErrorInfo(kind="http", message="Bad gateway", status=502, server_message="upstream"),
                ),
            ),
            Message(id="a3", role="assistant", content="plain assistant text without a turn", created_at=T0),
        ],
    )


def test_json_roundtrip_rich_conversation() -> None:
    conv = _rich_conversation()
    text = to_json(conv)
    data = json.loads(text)
    assert data["format"] == FORMAT == "reasoning-viewer/1"
    assert data["conversation"]["id"] == "abc123"
    assert from_json(text) == conv
    assert from_json(text.encode("utf-8")) == conv
    assert from_json(text).model_dump(mode="json") == conv.model_dump(mode="json")


def test_json_without_reasoning() -> None:
    conv = _rich_conversation()
    back = from_json(to_json(conv, include_reasoning=False))
    for before, after in zip(conv.messages, back.messages, strict=True):
        if before.turn is None:
            assert after == before
            continue
        assert after.turn.reasoning == "" and after.turn.raw == ""
        assert after.turn.answer == before.turn.answer
        assert after.turn.timings == before.turn.timings
        assert after.turn.outline == [] and after.turn.step_titles == {}  # step titles are reasoning text
        restore = {"reasoning": before.turn.reasoning, "raw": before.turn.raw, "outline": before.turn.outline}
        assert after.turn.model_copy(update=restore) == before.turn


def test_json_drops_credentials() -> None:
    turn = _turn(request_params={"model": "m", "api_key": "sk-SECRET", "headers": {"Authorization": "Bearer t"}})
    text = to_json(_conv(turn))
    assert "sk-SECRET" not in text and "Bearer t" not in text
    assert from_json(text).messages[1].turn.request_params == {"model": "m"}  # header dicts go whole (redact)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "Not a JSON file"),
        ("{oops", "Not a JSON file (line 1, column 2"),
        (b"\xff\xfe\x00garbage", "Not a JSON file"),
        ("[1, 2]", 'no "format" field'),
        ('{"conversation": {}}', 'no "format" field'),
        ('{"format": "chatgpt-export/3", "conversation": {}}', "format is 'chatgpt-export/3'"),
        ('{"format": 1}', "format is 1"),
        (
            '{"format": "reasoning-viewer/2", "conversation": {}}',
            "Unsupported export format 'reasoning-viewer/2'",
        ),
        ('{"format": "reasoning-viewer/1"}', '"conversation" is missing'),
        (
            '{"format": "reasoning-viewer/1", "conversation": []}',
            '"conversation" is missing or not an object',
        ),
        (
            '{"format": "reasoning-viewer/1", "conversation": {"messages": [{"role": "robot"}]}}',
            "Invalid conversation: messages.0.role: Input should be",
        ),
        (
            '{"format": "reasoning-viewer/1", "conversation": {"created_at": "yesterday", "messages": 3}}',
            "(and 1 more problem)",
        ),
        (
            '{"format": "reasoning-viewer/1", "conversation": {"messages": '
            '[{"id": "a", "role": "user"}, {"id": "a", "role": "user"}]}}',
            "two messages have the same id",
        ),
    ],
)
def test_from_json_rejects_bad_input(text: str | bytes, expected: str) -> None:
    with pytest.raises(ViewerImportError) as info:
        from_json(text)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message and len(message) <= 200
    assert isinstance(info.value, ValueError)


# -- property: any conversation survives the JSON round-trip ---------------------------------------------

_text = st.text(max_size=30)
_opt_float = st.none() | st.floats(min_value=0, max_value=1e6, allow_nan=False, allow_infinity=False)
_opt_int = st.none() | st.integers(min_value=0, max_value=10**9)
_dt = st.datetimes(
    min_value=datetime(1990, 1, 1),
    max_value=datetime(2100, 1, 1),
    timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=5, minutes=30))]),
)
_json_scalar = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text.filter(lambda s: not s.lower().startswith("bearer "))
)
_json = st.recursive(
    _json_scalar,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(alphabet=string.ascii_lowercase[:6] + "_", max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_turns = st.builds(
    AssistantTurn,
    reasoning=_text,
    answer=_text,
    raw=_text,
    family=st.none() | _text,
    model=st.none() | _text,
    finish_reason=st.none() | st.sampled_from(["stop", "length"]),
    status=st.sampled_from(["streaming", "done", "stopped", "error", "cut_off"]),
    stopped=st.booleans(),
    unfinished=st.booleans(),
    cut_off=st.booleans(),
    error=st.none() | st.builds(ErrorInfo, kind=_text, message=_text, status=_opt_int, server_message=_text),
    timings=st.builds(
        Timings,
        started_at=_dt,
        first_byte=_opt_float,
        reasoning_start=_opt_float,
        reasoning_end=_opt_float,
        answer_start=_opt_float,
        end=_opt_float,
    ),
    usage=st.builds(
        Usage,
        prompt_tokens=_opt_int,
        reasoning_tokens=_opt_int,
        answer_tokens=_opt_int,
        total_tokens=_opt_int,
        approximate=st.booleans(),
    ),
    malformed_chunks=st.integers(min_value=0, max_value=1000),
    request_params=st.dictionaries(st.text(alphabet="xyz_", max_size=5), _json, max_size=3),
)
_messages = st.builds(
    Message,
    id=st.text(alphabet=string.hexdigits, min_size=1, max_size=12),
    role=st.sampled_from(["system", "user", "assistant"]),
    content=_text,
    turn=st.none() | _turns,
    created_at=_dt,
)
_conversations = st.builds(
    Conversation,
    title=_text,
    created_at=_dt,
    updated_at=_dt,
    endpoint=st.none() | _text,
    model=st.none() | _text,
    system_prompt=st.none() | _text,
    messages=st.lists(_messages, max_size=4, unique_by=lambda m: m.id),
)


@settings(max_examples=60, deadline=None)
@given(_conversations)
def test_json_roundtrip_property(conv: Conversation) -> None:
    assert from_json(to_json(conv)) == conv
    # The other exports accept anything the model can hold, too.
    assert to_markdown(conv).startswith("# ")
    _assert_inert(Tree(to_html(conv)))


# -- issue 11: the Markdown export runs nothing and fetches nothing when previewed ---------------------

_PIXEL = "http://127.0.0.1:9/pixel.png"
_PERMISSIVE = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])  # a previewer passing HTML


def test_markdown_export_neutralises_raw_html_and_remote_images() -> None:
    answer = f'<script>alert(1)</script>\n\n<img src=x onerror="alert(2)"> <svg onload=alert(3)>\n\n![a]({_PIXEL})'
    turn = _turn(answer=answer, reasoning=f"thinking ![r]({_PIXEL})", model=f"m![x]({_PIXEL})")
    conv = _conv(turn, title=f"t ![x]({_PIXEL}) <b>", prompt=f"look ![p]({_PIXEL}) <iframe src=x>")
    html = _PERMISSIVE.render(to_markdown(conv))
    for bad in ("<script", "<img", "<svg", "<iframe", "<b>"):
        assert bad not in html, bad
    assert html.count("<details>") == 1  # the export's own folding stays
    assert "alert(2)" in html, "the HTML is shown as text, not dropped"
    assert f'href="{_PIXEL}"' in html, "images become links to their address"
