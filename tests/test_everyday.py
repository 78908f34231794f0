# ruff: noqa: F811  (the fixtures imported from test_app are used by name as parameters)
"""Issue 10 (everyday chat), driven through `AppTest` against a real replay server, one SQLite file per test.

Fixtures and helpers are those of `tests/test_app.py` (same cache rules: the app's resources are cleared
around every test).
"""

from __future__ import annotations

import html as html_lib
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from viewer.demo.replay import SHOWCASE_PROMPT, ReplayServer, is_capture
from viewer.export import export_filename, from_json, to_html, to_json, to_markdown
from viewer.labels import reasoning_label, stats_line, thought_label
from viewer.models import AssistantTurn, Conversation, EndpointProfile, Message
from viewer.safe_markdown import (
    escape_markdown,
    keep_line_breaks,
    model_markdown,
    neutralize_markdown,
    plain_text_markdown,
)
from viewer.store import LATEST_VERSION, Store, UnknownConversation, make_snippet
from viewer.ui import chat, context, sidebar
from viewer.ui.conv_settings import apply_stored_markers

from .test_app import (  # noqa: F401  (pytest fixtures, used by name)
    MULTIPLY,
    MULTIPLY_REASONING_ONLY,
    PREFILLED_391,
    button,
    choose_model,
    current_id,
    db_path,
    finished_turn,
    new_app,
    open_sections,
    run,
    send,
    server,
    store,
)


def _base_url() -> str:
    return context.get_bootstrap().profiles[0].base_url


def _model_box(at):
    return at.sidebar.selectbox(key=f"model-{_base_url()}")


# -- item 1: a conversation keeps its model and settings ------------------------------------------------


def test_reopened_conversation_sends_to_its_own_model_and_settings(server: ReplayServer, store: Store) -> None:
    at = new_app()
    choose_model(at, "demo-r1-prefilled")
    open_sections(at, "Generation", "Thinking")
    at.sidebar.checkbox(key="use_temperature").check()
    run(at)  # the value is enabled once its "set" box is on
    at.sidebar.slider(key="temperature").set_value(1.3)
    at.sidebar.radio(key="thinking").set_value("on")
    run(at)
    send(at, PREFILLED_391)
    first_id = current_id(at)
    finished_turn(at, store)

    # Another chat, with another model and other settings.
    button(at, "New chat").click()
    run(at)
    choose_model(at, "demo-r1")
    at.sidebar.checkbox(key="use_temperature").uncheck()
    at.sidebar.radio(key="thinking").set_value("off")
    run(at)
    send(at, MULTIPLY)
    second_id = current_id(at)
    assert second_id != first_id
    finished_turn(at, store)

    # Back to the first from the sidebar: the sidebar shows, and the follow-up uses, its own model and settings.
    [row] = [b for b in at.sidebar.button if b.key == f"conv-{first_id}"]
    row.click()
    run(at)
    assert current_id(at) == first_id
    assert _model_box(at).value == "demo-r1-prefilled"
    assert at.sidebar.checkbox(key="use_temperature").value is True
    assert at.sidebar.slider(key="temperature").value == 1.3
    assert at.sidebar.radio(key="thinking").value == "on"
    assert any("demo-r1-prefilled" in c.value for c in at.sidebar.caption if c.value.startswith("Next message"))
    send(at, "And 323?")
    _, msg = finished_turn(at, store)
    assert msg.turn.model == "demo-r1-prefilled"
    assert msg.turn.request_params.get("model") == "demo-r1-prefilled"
    assert msg.turn.request_params.get("temperature") == 1.3

    # The second keeps its own too.
    [row] = [b for b in at.sidebar.button if b.key == f"conv-{second_id}"]
    row.click()
    run(at)
    assert _model_box(at).value == "demo-r1"
    assert at.sidebar.radio(key="thinking").value == "off"

    # A link (or a restart: a new session) to the first opens it with its model.
    again = new_app()
    again.query_params["c"] = first_id
    run(again)
    assert _model_box(again).value == "demo-r1-prefilled"
    open_sections(again, "Generation")
    assert again.sidebar.slider(key="temperature").value == 1.3


def test_conversation_from_before_settings_were_kept_reopens_with_its_model(server: ReplayServer, store: Store) -> None:
    """Chats stored before migration 4 have only their `endpoint` and `model` columns."""
    at = new_app()
    old = store.create_conversation(title="old chat", endpoint="Configured", model="demo-r1-prefilled")
    at.query_params["c"] = old.id
    run(at)
    assert _model_box(at).value == "demo-r1-prefilled"


def test_model_not_listed_by_the_server_is_restored_as_typed(server: ReplayServer, store: Store) -> None:
    at = new_app()
    old = store.create_conversation(title="old chat", endpoint="Configured", model="demo-r1@slow")
    at.query_params["c"] = old.id
    run(at)
    assert _model_box(at).value == "Other…"
    assert at.sidebar.text_input(key=f"model-free-{_base_url()}").value == "demo-r1@slow"


def test_endpoint_model_settings_and_markers_survive_a_reload(server: ReplayServer, db_path: Path) -> None:
    at = new_app()
    choose_model(at, "demo-v3")
    open_sections(at, "Generation", "Thinking")
    at.sidebar.text_area(key="system_prompt").input("Be brief.")
    at.sidebar.selectbox(key="reasoning_effort").set_value("high")
    at.sidebar.text_input(key="marker_start").input("<my_think>")
    at.sidebar.text_input(key="marker_end").input("</my_think>")
    run(at)

    with Store(db_path) as s:
        assert s.get_setting("profile_markers") == {"Configured": ["<my_think>", "</my_think>"]}
    [profile] = apply_stored_markers(
        context.get_store(), context.all_profiles(context.get_store(), context.get_bootstrap())
    )
    assert (profile.reasoning_start_marker, profile.reasoning_end_marker) == ("<my_think>", "</my_think>")

    reloaded = new_app()  # a reload is a new session on the same server process
    assert _model_box(reloaded).value == "demo-v3"
    open_sections(reloaded, "Generation", "Thinking")
    assert reloaded.sidebar.text_area(key="system_prompt").value == "Be brief."
    assert reloaded.sidebar.selectbox(key="reasoning_effort").value == "high"
    assert reloaded.sidebar.text_input(key="marker_start").value == "<my_think>"
    assert reloaded.sidebar.text_input(key="marker_end").value == "</my_think>"


def test_store_keeps_conversation_settings_scrubbed_and_upgrades_to_version_4(tmp_path: Path) -> None:
    with Store(tmp_path / "h.db") as s:
        assert s.schema_version == LATEST_VERSION >= 4
        conv = s.create_conversation(model="demo-r1")
        assert s.conversation_settings(conv.id) is None
        before = s.get_conversation(conv.id)
        s.set_conversation_settings(conv.id, {"model": "demo-r1", "extra_json": "sk-abcdefghijklmnopqrstuvwx"})
        saved = s.conversation_settings(conv.id)
        assert saved is not None and saved["model"] == "demo-r1"
        assert "sk-abcdefghijklmnopqrstuvwx" not in str(saved)
        assert s.get_conversation(conv.id).updated_at == before.updated_at  # a setting is not activity
        with pytest.raises(UnknownConversation):
            s.set_conversation_settings("nope", {})


# -- items 2 and 3: prompts as typed, answers keep their line breaks ---------------------------------------

HAIKU = "Cold rain on the roof —\nthe maple lets go its last\nred hand to the wind"
CODE_PROMPT = "Fix this:\n# compute\ndef f(x):\n    return x*2"
_MD = MarkdownIt("commonmark").enable(["table", "strikethrough"])
_MD_BREAKS = MarkdownIt("commonmark", {"breaks": True}).enable(["table", "strikethrough"])


def test_soft_line_breaks_become_hard_ones_outside_code() -> None:
    html = _MD.render(keep_line_breaks(HAIKU))
    assert html.count("<br />") == 2 and "<h" not in html
    fenced = "Run:\n```\na\nb\n```\nthen\nthis"
    kept = keep_line_breaks(fenced)
    assert "```\na\nb\n```" in kept, "code keeps its lines untouched"
    assert _MD.render(kept).count("<br />") == 1  # "then" / "this"; the fence starts a block of its own
    assert keep_line_breaks("- a\n- b") == "- a\n- b"  # nothing added before a line that starts a block
    assert model_markdown("a\n![x](http://h/p.png)\nb").count("  \n") == 2


@given(st.text(alphabet="ab -*#>_1.\n\\", max_size=40))
@settings(max_examples=300, deadline=None)
def test_keep_line_breaks_renders_like_a_renderer_that_breaks_on_newlines(text: str) -> None:
    """Outside code, the result renders exactly as CommonMark with `breaks` on (a newline is a <br>)."""
    assert _MD.render(keep_line_breaks(text)) == _MD_BREAKS.render(text)


def test_plain_text_markdown_shows_the_prompt_as_typed() -> None:
    html = _MD.render(plain_text_markdown(CODE_PROMPT))
    assert "<h1>" not in html and "<pre>" not in html
    assert "# compute" in html
    assert html.count("<br />") == 3
    assert "\u00a0\u00a0\u00a0\u00a0return x*2" in html


@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126) | st.sampled_from("\n\t"), max_size=60))
@settings(max_examples=300, deadline=None)
def test_plain_text_markdown_renders_the_text_itself(text: str) -> None:
    """Whatever is typed renders as one paragraph whose text, line by line, is the typed text
    (spaces shown as no-break spaces where a renderer would collapse them)."""
    html = _MD.render(plain_text_markdown(text))
    if not text.strip():
        return
    assert html.startswith("<p>") and html.count("<p>") == 1
    shown = html_lib.unescape(re.sub(r"<br />\n|<[^>]+>", lambda m: "\n" if m.group().startswith("<br") else "", html))
    want = [line.replace("\t", "    ").rstrip(" ") for line in text.split("\n")]
    got = [line.replace("\u00a0", " ").rstrip(" ") for line in shown.rstrip("\n").split("\n")]
    assert got == want


def test_user_bubble_shows_the_prompt_as_typed_and_answers_keep_lines(server: ReplayServer, store: Store) -> None:
    at = new_app()
    choose_model(at, "demo-v3")
    send(at, CODE_PROMPT)
    _, msg = finished_turn(at, store)
    run(at)
    users = [m for m in at.main.chat_message if m.name == "user"]
    assert [md.value for md in users[0].markdown] == [plain_text_markdown(CODE_PROMPT)]
    answers = [md.value for m in at.main.chat_message if m.name == "assistant" for md in m.markdown]
    assert keep_line_breaks(msg.turn.answer) in answers


def test_an_image_hidden_by_an_html_block_does_not_survive_neutralizing() -> None:
    """Found by test_safe_markdown's property test: escaping the HTML block `<!a` exposes the image after it."""
    out = neutralize_markdown("<!a![a](u)")
    assert "![" not in out and _MD.render(out).count("<img") == 0


# -- item 5: the demo at its best -----------------------------------------------------------------------

EVERYDAY_PROMPTS = ("hello", "Tell me a joke", "What is the capital of France?")


def test_unknown_prompts_get_written_traces_and_captures_stay_with_their_models() -> None:
    with ReplayServer(speed=0) as srv:
        for model in ("demo-r1", "demo-r1-prefilled", "demo-v3", "demo-qwen3-field", "demo-magistral", "demo-gpt-oss"):
            written = srv.fallback_traces_for(model)
            assert written and not any(is_capture(r.trace) for r in written), model
            for prompt in EVERYDAY_PROMPTS:
                picked = srv.pick(model, [{"role": "user", "content": prompt}])
                assert not is_capture(picked.trace), (model, prompt, picked.trace.name)
        # A capture is still served for its own prompt, and to the models that only have captures.
        assert srv.pick("demo-r1", [{"role": "user", "content": "Is 221 prime?"}]).trace.name == "g-think-1"
        for model in ("demo-kimi", "demo-gemma"):  # named after the captured models: they keep them
            assert is_capture(srv.pick(model, [{"role": "user", "content": "hello"}]).trace)


def test_empty_demo_chat_offers_clickable_examples_scene_first(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REASONING_VIEWER_DEMO", "1")
    monkeypatch.setenv("REASONING_VIEWER_DEMO_SPEED", "0")
    at = new_app()
    labels = [b.label for b in at.main.button if (b.key or "").startswith("example-")]
    assert len(labels) >= 3 and labels[0] == escape_markdown(SHOWCASE_PROMPT), labels
    [scene] = [b for b in at.main.button if b.key == "example-0"]
    scene.click()
    run(at)
    with Store(db_path) as s:
        conv, msg = finished_turn(at, s)
    assert conv.messages[0].content == SHOWCASE_PROMPT
    assert msg.turn.reasoning and msg.turn.answer  # a folded thinking section, then the answer
    run(at)
    assert not [b for b in at.main.button if (b.key or "").startswith("example-")], "examples only on an empty chat"
    assert any(e.label.startswith("Thought for") for e in at.main.expander)


def test_choosing_a_real_endpoint_removes_the_demo_banner_and_examples(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REASONING_VIEWER_DEMO", "1")
    monkeypatch.setenv("REASONING_VIEWER_DEMO_SPEED", "0")
    with ReplayServer(speed=0) as real:
        with Store(db_path) as s:
            context.save_profiles(s, [EndpointProfile(name="My server", base_url=real.base_url)])
        at = new_app()
        assert any("demo" in i.value.lower() for i in at.main.info)
        at.sidebar.selectbox(key="profile_name").set_value("My server")
        run(at)
        assert not any("demo" in i.value.lower() for i in at.main.info), [i.value for i in at.main.info]
        assert not [b for b in at.main.button if (b.key or "").startswith("example-")]


# -- item 7: keep every version ---------------------------------------------------------------------------


def test_regenerate_keeps_the_earlier_reply_as_a_version_in_db_ui_and_exports(
    server: ReplayServer, store: Store
) -> None:
    at = new_app()
    choose_model(at, "demo-r1")
    send(at, MULTIPLY)
    _, first = finished_turn(at, store)
    run(at)
    button(at, "Regenerate").click()
    run(at)
    conv, second = finished_turn(at, store)
    assert [m.role for m in conv.messages] == ["user", "assistant"]
    assert [v.id for v in second.versions] == [first.turn.id]
    assert second.turn.id != first.turn.id
    assert second.versions[0].answer == first.turn.answer

    run(at)
    [bubble] = [m for m in at.main.chat_message if m.name == "assistant"]
    assert "2/2" in [c.value for c in bubble.caption]
    [prev] = [b for b in bubble.button if b.key == f"vprev-{second.id}"]
    prev.click()
    run(at)
    [bubble] = [m for m in at.main.chat_message if m.name == "assistant"]
    assert "1/2" in [c.value for c in bubble.caption]
    assert not [b for b in bubble.button if b.label == "Regenerate"], "actions belong to the newest version"
    assert f"think-{second.id}-v1" in [e.key for e in at.main.expander if e.key]

    # Regenerating again keeps both earlier ones, oldest first.
    [nxt] = [b for b in at.main.button if b.key == f"vnext-{second.id}"]
    nxt.click()
    run(at)
    button(at, "Regenerate").click()
    run(at)
    conv, third = finished_turn(at, store)
    assert [v.id for v in third.versions] == [first.turn.id, second.turn.id]

    exported = from_json(to_json(conv))
    assert [v.id for v in exported.messages[-1].versions] == [first.turn.id, second.turn.id]
    assert "Earlier version 1/3" in to_markdown(conv) and "Earlier version 2/3" in to_html(conv)
    with Store(store.path) as again:  # a restart reads them back
        reread = again.get_conversation(conv.id)
    assert reread is not None and len(reread.messages[-1].versions) == 2


# -- item 10: small things users notice ------------------------------------------------------------------


def test_thinking_past_a_minute_reads_in_minutes_and_seconds() -> None:
    assert [thought_label(s) for s in (59.4, 60, 229, 240, 3725)] == [
        "Thought for 59 seconds",
        "Thought for 1m",
        "Thought for 3m 49s",
        "Thought for 4m",
        "Thought for 1h 2m 5s",
    ]
    stopped = AssistantTurn(reasoning="r", status="done", stopped=True, unfinished=True)
    stopped.timings.reasoning_spans = [(0.0, 229.0)]
    assert reasoning_label(stopped) == "Stopped after 3m 49s of thinking"


def test_a_reply_cut_by_the_budget_can_be_retried_without_a_limit(server: ReplayServer, store: Store) -> None:
    at = new_app()
    choose_model(at, "demo-r1")
    open_sections(at, "Generation")
    at.sidebar.checkbox(key="use_max_tokens").check()
    run(at)  # the value is enabled once its "set" box is on
    at.sidebar.number_input(key="max_tokens").set_value(20)
    run(at)
    send(at, MULTIPLY)
    _, cut = finished_turn(at, store)
    assert cut.turn.reasoning_cut_by_budget
    run(at)
    button(at, "Retry without a limit").click()
    run(at)
    _, retried = finished_turn(at, store)
    assert "max_tokens" not in retried.turn.request_params
    assert retried.turn.finish_reason == "stop" and retried.turn.answer


def test_exports_carry_the_stats_line_the_end_of_the_last_reply_and_whole_word_filenames(
    server: ReplayServer, store: Store
) -> None:
    at = new_app()
    choose_model(at, "demo-r1")
    send(at, MULTIPLY)
    conv, msg = finished_turn(at, store)
    stats = stats_line(msg.turn)
    assert stats and escape_markdown(stats) in to_markdown(conv) and html_lib.escape(stats) in to_html(conv)
    # The stored updated_at is when the reply finished, not when it started.
    ended = msg.turn.timings.started_at + timedelta(seconds=msg.turn.timings.end)
    assert conv.updated_at >= ended - timedelta(milliseconds=50)
    title = "Why is Canberra the capital of Australia and not Sydney or Melbourne?"
    name = export_filename(title, "md")
    assert name == "why-is-canberra-the-capital-of-australia.md"
    assert all(part in title.lower() for part in name.removesuffix(".md").split("-"))
    assert export_filename("???", "json") == "conversation.json"


# -- item 8: find and navigate ------------------------------------------------------------------------------

_WORDS = st.lists(st.text(alphabet="abcdefghij", min_size=1, max_size=12), min_size=1, max_size=80)


@given(_WORDS, st.integers(min_value=0, max_value=79), st.integers(min_value=20, max_value=160))
@settings(max_examples=300, deadline=None)
def test_snippets_are_cut_at_word_boundaries_around_the_match(words: list[str], at: int, width: int) -> None:
    text = " ".join(words)
    query = words[at % len(words)]
    snippet = make_snippet(text, query, width)
    assert len(snippet) <= width
    inner = snippet.strip("…").split(" ")
    first = text.find(query)  # the match: the first occurrence, which may sit inside a longer word
    whole = (first == 0 or text[first - 1] == " ") and text[first + len(query) : first + len(query) + 1] in ("", " ")
    if whole and len(snippet) < len(text) and len(query) + 2 <= width // 2:
        assert query in snippet
        assert all(w in words for w in inner), (snippet, text)


def test_sidebar_new_chat_on_top_grouped_by_date_titles_told_apart_rename_on_enter_and_load_more(
    server: ReplayServer, store: Store
) -> None:
    old = store.create_conversation(title="Same title")
    with store._write() as conn:  # an old chat: last active 40 days ago
        conn.execute(
            "UPDATE conversations SET updated_at = ? WHERE id = ?",
            ((datetime.now(timezone.utc) - timedelta(days=40)).isoformat(timespec="microseconds"), old.id),
        )
    for i in range(3):
        store.create_conversation(title="Same title" if i == 0 else f"chat {i}")
    at = new_app()
    assert at.sidebar.button[0].label == "New chat"
    captions = [c.value for c in at.sidebar.caption]
    assert "Today" in captions and any(c.endswith(str((datetime.now() - timedelta(days=40)).year)) for c in captions)
    rows = [b for b in at.sidebar.button if (b.key or "").startswith("conv-")]
    same = [b.label for b in rows if b.label.startswith("Same title")]
    assert len(same) == 2 and len(set(same)) == 2, same

    at.query_params["c"] = old.id
    run(at)
    [current] = [b for b in at.sidebar.button if b.key == f"conv-{old.id}"]
    assert current.proto.type == "primary" and current.label.startswith("▸ ")
    open_sections(at, "This conversation")
    at.sidebar.text_input(key=f"title-{old.id}").input("Renamed by Enter")
    run(at)  # no button clicked
    assert store.get_conversation(old.id).title == "Renamed by Enter"

    for i in range(sidebar.LIST_PAGE):
        store.create_conversation(title=f"bulk {i}")
    run(at)
    rows = [b for b in at.sidebar.button if (b.key or "").startswith("conv-")]
    assert len(rows) == sidebar.LIST_PAGE
    at.sidebar.button(key="conversations_more").click()
    run(at)
    rows = [b for b in at.sidebar.button if (b.key or "").startswith("conv-")]
    assert len(rows) == sidebar.LIST_PAGE + 4, "every conversation is reachable"
    assert not [b for b in at.sidebar.button if b.key == "conversations_more"]


# -- item 6: settings that do what they say ----------------------------------------------------------------


def test_settings_do_what_they_say(server: ReplayServer, store: Store) -> None:
    at = new_app()
    choose_model(at, "demo-r1")
    open_sections(at, "Generation", "Thinking")
    # D15: a value whose "set" box is off is not sent, and looks disabled.
    assert at.sidebar.slider(key="temperature").disabled
    assert at.sidebar.number_input(key="max_tokens").disabled
    at.sidebar.checkbox(key="use_temperature").check()
    run(at)
    assert not at.sidebar.slider(key="temperature").disabled
    # D16: thinking off with an effort set is flagged, and the effort is not sent.
    at.sidebar.selectbox(key="reasoning_effort").set_value("high")
    at.sidebar.radio(key="thinking").set_value("off")
    run(at)
    assert any("reasoning effort (high) is not sent" in w.value for w in at.sidebar.warning)
    # D20: the demo honours thinking off: the answer only.
    send(at, MULTIPLY)
    _, msg = finished_turn(at, store)
    assert "reasoning_effort" not in msg.turn.request_params
    assert msg.turn.request_params.get("chat_template_kwargs") == {"enable_thinking": False}
    assert msg.turn.reasoning == "" and msg.turn.answer.startswith("17 × 23 = **391**")


def test_closed_sidebar_sections_are_not_drawn_and_keep_their_settings(server: ReplayServer, db_path: Path) -> None:
    """Issue 10 (time to interactive): the Generation, Thinking, Manage endpoints and Import sections draw their
    widgets only while open; what was set in them is still sent, saved and shown when they are closed."""
    at = new_app()
    choose_model(at, "demo-r1")
    assert [e.label for e in at.sidebar.expander] == ["Manage endpoints", "Generation", "Thinking", "Import"]
    assert not at.sidebar.slider and not at.sidebar.radio and not at.sidebar.toggle
    assert not at.sidebar.file_uploader and not at.sidebar.get("form") and not at.sidebar.text_area
    assert at.session_state["read_timeout"] == 600, "the settings have their defaults before any section opened"

    open_sections(at, "Generation", "Thinking")
    at.sidebar.checkbox(key="use_temperature").check()
    run(at)
    at.sidebar.slider(key="temperature").set_value(1.3)
    at.sidebar.radio(key="thinking").set_value("on")
    at.sidebar.selectbox(key="history_policy").set_value("inline")
    at.sidebar.text_input(key="marker_start").input("<my_think>")
    at.sidebar.text_input(key="marker_end").input("</my_think>")
    run(at)
    open_sections(at, "Generation", "Thinking", open_=False)
    run(at)  # more runs without the widgets: Streamlit would drop a value not kept
    assert not at.sidebar.slider and not at.sidebar.radio
    send(at, MULTIPLY)
    _, msg = finished_turn(at, store=context.get_store())
    assert msg.turn.request_params.get("temperature") == 1.3
    assert msg.turn.request_params.get("chat_template_kwargs") == {"enable_thinking": True}
    with Store(db_path) as s:
        assert s.get_setting("profile_markers") == {"Configured": ["<my_think>", "</my_think>"]}
    open_sections(at, "Generation", "Thinking")
    assert at.sidebar.checkbox(key="use_temperature").value is True
    assert at.sidebar.slider(key="temperature").value == 1.3
    assert at.sidebar.radio(key="thinking").value == "on"
    assert at.sidebar.text_input(key="marker_start").value == "<my_think>"

    # A reload (a new session, every section closed) sends with the same settings and markers.
    reloaded = new_app()
    assert not reloaded.sidebar.slider
    assert reloaded.session_state["history_policy"] == "inline", "the model's policy, with Thinking closed"
    send(reloaded, "And 323?")
    _, again = finished_turn(reloaded, store=context.get_store())
    assert again.turn.request_params.get("temperature") == 1.3
    assert again.turn.request_params.get("chat_template_kwargs") == {"enable_thinking": True}
    with Store(db_path) as s:
        assert s.get_setting("profile_markers") == {"Configured": ["<my_think>", "</my_think>"]}


def test_a_conversation_whose_endpoint_is_gone_keeps_the_sidebar_choice(server: ReplayServer, store: Store) -> None:
    at = new_app()
    choose_model(at, "demo-v3")
    gone = store.create_conversation(title="elsewhere", endpoint="Deleted endpoint", model="some-remote-model")
    at.query_params["c"] = gone.id
    run(at)
    assert _model_box(at).value == "demo-v3"


def test_a_search_hit_in_the_reasoning_opens_that_reply_s_thinking_section(server: ReplayServer, store: Store) -> None:
    at = new_app()
    choose_model(at, "demo-r1")
    send(at, MULTIPLY)
    conv_id = current_id(at)
    _, msg = finished_turn(at, store)
    button(at, "New chat").click()
    run(at)
    at.sidebar.text_input(key="search").input(MULTIPLY_REASONING_ONLY)
    run(at)
    [hit] = [b for b in at.sidebar.button if (b.key or "").startswith("hit-")]
    hit.click()
    run(at)
    assert current_id(at) == conv_id
    [section] = [e for e in at.main.expander if e.key == f"think-{msg.id}"]
    assert section.children, "the thinking section is open at the hit"
    marked = f":orange-background[{MULTIPLY_REASONING_ONLY}]"
    assert any(marked in m.value for m in section.markdown), "the match is marked in the reasoning"
    assert not any(":orange-background[" in m.value for m in at.main.markdown if m not in section.markdown)

    at.sidebar.text_input(key="search").input("")  # clearing the search clears the marks
    run(at)
    assert not any(":orange-background[" in m.value for m in at.main.markdown)


def test_a_search_hit_in_a_prompt_or_an_answer_marks_the_match_there(server: ReplayServer, store: Store) -> None:
    at = new_app()
    choose_model(at, "demo-r1")
    send(at, MULTIPLY)
    finished_turn(at, store)
    button(at, "New chat").click()
    run(at)
    for query, field in (("17 × 23", "prompt"), ("391", "answer")):
        at.sidebar.text_input(key="search").input(query)
        run(at)
        hits = [b for b in at.sidebar.button if (b.key or "").endswith(f"-{field}")]
        assert hits, f"a hit in the {field}"
        hits[0].click()
        run(at)
        marked = [m.value for m in at.main.markdown if f":orange-background[{query}]" in m.value]
        assert len(marked) == 1, (field, [m.value for m in at.main.markdown])


# -- time to interactive: a long conversation draws its newest messages, earlier ones on demand ---------------


def _long_conversation(store: Store, turns: int) -> Conversation:
    messages: list[Message] = []
    for i in range(turns):
        messages.append(Message(role="user", content=f"Question {i + 1} of {turns}"))
        messages.append(Message(role="assistant", turn=AssistantTurn(answer=f"Answer {i + 1}", status="done")))
    return store.import_conversation(Conversation(title=f"{turns} turns", model="demo-r1", messages=messages))


def test_a_long_conversation_opens_on_its_newest_messages_and_shows_earlier_ones_on_demand(
    server: ReplayServer, store: Store
) -> None:
    conv = _long_conversation(store, 15)
    at = new_app()
    at.query_params["c"] = conv.id
    run(at)
    shown = chat.HISTORY_SHOWN
    assert shown % 2 == 0 and shown < 15
    drawn = [m for m in at.main.chat_message]
    assert len(drawn) == shown and drawn[0].name == "user"
    assert drawn[0].markdown[0].value.startswith(f"Question {15 - shown // 2 + 1} of 15")
    for _ in range(30 // shown + 1):
        earlier = [b for b in at.main.button if b.key == f"earlier-{conv.id}"]
        if not earlier:
            break
        hidden = 30 - len(at.main.chat_message)
        assert earlier[0].label == f"Show earlier messages ({hidden} not shown)"  # nothing hidden silently
        earlier[0].click()
        run(at)
        assert len(at.main.chat_message) == min(30, 30 - hidden + shown)
    assert len(at.main.chat_message) == 30


def test_a_search_hit_in_an_earlier_message_draws_back_to_it(server: ReplayServer, store: Store) -> None:
    conv = _long_conversation(store, 15)
    at = new_app()
    at.sidebar.text_input(key="search").input("Question 2 of 15")
    run(at)
    [hit] = [b for b in at.sidebar.button if (b.key or "").startswith("hit-")]
    hit.click()
    run(at)
    assert current_id(at) == conv.id
    users = [m for m in at.main.chat_message if m.name == "user"]
    assert users[0].markdown[0].value.startswith(":orange-background[Question 2 of 15]")
    assert len(users) == 14  # from the hit on; one earlier message pair stays behind the button
