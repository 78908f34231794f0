"""The Streamlit page, driven through `streamlit.testing.v1.AppTest` against a real replay server.

Each test gets its own SQLite file and its own loopback `ReplayServer(speed=0)`. The app caches
the store, the reply service and the bootstrap with `st.cache_resource` (process-wide), so
the cache is cleared before and after every test; otherwise a test would talk to the previous
test's database and server.

A reply streams in a background thread and the page watches it in a loop that ends with
`st.rerun()`, so `AppTest.run()` normally returns with the turn finished. Tests never rely on
that alone: `finished_turn` reruns the page (each run blocks on the live turn) until the store
shows the turn finished, within a deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from viewer.demo.replay import ReplayServer
from viewer.export import to_json
from viewer.models import AssistantTurn, Conversation, Message
from viewer.safe_markdown import escape_markdown, model_markdown
from viewer.store import Store
from viewer.ui import context, sidebar
from viewer.ui.chat import split_paragraphs

APP_FILE = Path(__file__).resolve().parents[1] / "viewer" / "ui" / "app.py"
RUN_TIMEOUT_S = 60
DEADLINE_S = 30.0
MULTIPLY = "What is 17 × 23?"  # seeds/r1-multiply.jsonl: short <think> trace, then a one-line answer
MULTIPLY_REASONING_ONLY = "double-check another way"  # occurs in that trace's reasoning, not its answer
PREFILLED_391 = "Is 391 prime?"  # seeds/r1-prefilled-391.jsonl: only </think> arrives
XSS = "Show me a classic XSS payload."  # seeds/xss-probe.jsonl
OTHER = "Other…"

_ENV_TO_CLEAR = (
    "REASONING_VIEWER_DEMO",
    "REASONING_VIEWER_DEMO_SPEED",
    "REASONING_VIEWER_BASE_URL",
    "REASONING_VIEWER_MODEL",
    "REASONING_VIEWER_API_KEY_ENV",
    "REASONING_VIEWER_SEEDS_DIR",
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
)


# -- fixtures and helpers ----------------------------------------------------------------------


def _release_cached_resources() -> None:
    """Close the cached store and stop a demo server the app may have started, then drop the cache."""
    try:
        context.get_store().close()
        boot = context.get_bootstrap()
        if boot.demo is not None:
            boot.demo.stop()
    finally:
        st.cache_resource.clear()


@pytest.fixture
def db_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private database file and a clean environment; the app's resource cache is fresh."""
    for name in _ENV_TO_CLEAR:
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "conversations.db"
    monkeypatch.setenv("REASONING_VIEWER_DB", str(path))
    st.cache_resource.clear()
    yield path
    _release_cached_resources()


@pytest.fixture
def server(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ReplayServer]:
    """The app configured to talk to a fresh instant replay server (base-URL mode, not demo mode)."""
    srv = ReplayServer(speed=0).start()
    monkeypatch.setenv("REASONING_VIEWER_BASE_URL", srv.base_url)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def store(db_path: Path) -> Iterator[Store]:
    """A second connection to the app's database, for assertions (WAL lets both read and write)."""
    s = Store(db_path)
    try:
        yield s
    finally:
        s.close()


def run(at: AppTest) -> AppTest:
    """Run the page and fail on any uncaught exception it rendered."""
    at.run(timeout=RUN_TIMEOUT_S)
    assert not at.exception, [e.value for e in at.exception]
    return at


def new_app() -> AppTest:
    return run(AppTest.from_file(str(APP_FILE), default_timeout=RUN_TIMEOUT_S))


def open_sections(at: AppTest, *labels: str, open_: bool = True) -> AppTest:
    """Open (or close) sidebar sections drawn only while open (`sidebar.LAZY_SECTIONS`), as a click on their
    header does; then run the page."""
    for label in labels:
        at.session_state[sidebar.LAZY_SECTIONS[label]] = open_
    return run(at)


def wait_until(at: AppTest, condition: Callable[[], bool], what: str) -> None:
    """Rerun the page until `condition()` holds. Each run blocks on a live turn, so this is no busy loop."""
    deadline = time.monotonic() + DEADLINE_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        run(at)


def wait_for(condition: Callable[[], bool], timeout: float = DEADLINE_S) -> bool:
    """Poll `condition` (something another thread makes true) until it holds or the deadline passes."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def current_id(at: AppTest) -> str:
    conv_id = at.query_params.get("c")
    assert conv_id, "no conversation is open (query parameter c is missing)"
    return conv_id[0] if isinstance(conv_id, list) else conv_id


def finished_turn(at: AppTest, store: Store) -> tuple[Conversation, Message]:
    """The open conversation and its last assistant message, once the store shows it finished."""

    def last_assistant() -> Message | None:
        conv = store.get_conversation(current_id(at))
        assert conv is not None
        found = [m for m in conv.messages if m.role == "assistant"]
        return found[-1] if found else None

    def done() -> bool:
        msg = last_assistant()
        return msg is not None and msg.turn is not None and msg.turn.status != "streaming"

    wait_until(at, done, "the assistant turn to finish")
    conv = store.get_conversation(current_id(at))
    assert conv is not None
    msg = last_assistant()
    assert msg is not None and msg.turn is not None
    return conv, msg


def send(at: AppTest, prompt: str) -> AppTest:
    at.chat_input[0].set_value(prompt)
    return run(at)


def choose_model(at: AppTest, model: str) -> None:
    """Pick `model` in the sidebar; ids the server does not list (fault suffixes) go through 'Other…'."""
    box = at.sidebar.selectbox(key=f"model-{_base_url(at)}")
    if model in box.options:
        box.set_value(model)
        run(at)
        return
    box.set_value(OTHER)
    run(at)
    at.sidebar.text_input(key=f"model-free-{_base_url(at)}").input(model)
    run(at)


def _base_url(at: AppTest) -> str:
    return context.get_bootstrap().profiles[0].base_url


def assistant_bubbles(at: AppTest) -> list:
    return [m for m in at.main.chat_message if m.name == "assistant"]


def thought_expanders(at: AppTest) -> list:
    """Reasoning sections: "Thought for N seconds", or "<what happened> after N s of thinking"."""
    return [e for e in at.main.expander if e.label.startswith("Thought") or e.label.endswith(" of thinking")]


def button(at: AppTest, label: str):
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r}; buttons: {[b.label for b in at.button]}"
    return found[0]


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def db_bytes(db_path: Path) -> bytes:
    """Everything SQLite keeps for this database: the main file, the WAL and the shared-memory index."""
    return b"".join(p.read_bytes() for p in db_path.parent.glob(db_path.name + "*"))


# -- first load ----------------------------------------------------------------------------------


def test_demo_mode_first_load_shows_the_demo_notice(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REASONING_VIEWER_DEMO", "1")
    monkeypatch.setenv("REASONING_VIEWER_DEMO_SPEED", "0")
    at = new_app()
    assert any("demo" in text.lower() for text in texts(at.info)), texts(at.info)
    assert "c" not in at.query_params
    assert not at.main.chat_message
    assert at.sidebar.selectbox(key="profile_name").value == "Demo (replay)"

    # The demo server is real: a prompt gets its recorded reply, and the notice gives way to the chat.
    send(at, MULTIPLY)
    with Store(db_path) as s:
        _, msg = finished_turn(at, s)
    assert "391" in msg.turn.answer
    assert not any("demo" in text.lower() for text in texts(at.info))


# -- one turn -------------------------------------------------------------------------------------


def test_prompt_creates_conversation_with_split_turn_and_lazy_reasoning(server: ReplayServer, store: Store) -> None:
    at = new_app()
    choose_model(at, "demo-r1")
    assert "c" not in at.query_params
    send(at, MULTIPLY)

    conv, msg = finished_turn(at, store)
    assert [m.role for m in conv.messages] == ["user", "assistant"]
    assert conv.messages[0].content == MULTIPLY
    turn = msg.turn
    assert turn.status == "done"
    assert turn.finish_reason == "stop"
    assert "<think>" not in turn.answer and "</think>" not in turn.answer
    assert "<think>" not in turn.reasoning and "</think>" not in turn.reasoning
    assert turn.answer.startswith("17 × 23 = **391**")
    assert MULTIPLY_REASONING_ONLY in turn.reasoning

    run(at)  # a plain rerun draws the turn from the store
    [bubble] = assistant_bubbles(at)
    [section] = thought_expanders(at)
    assert section.label == f"{turn.thought_label} · {len(turn.outline)} steps"  # r1-multiply has 2 steps
    assert not section.children, "reasoning must not be rendered while the section is closed"
    assert not any(MULTIPLY_REASONING_ONLY in t for t in texts(at.main.markdown))
    assert turn.answer in texts(bubble.markdown)
    [stats] = texts(bubble.caption)
    assert "waited" in stats and "thought" in stats and "demo-r1" in stats and "finish: stop" in stats
    assert [b.label for b in bubble.button] == ["Regenerate"]

    # Opening the section (its state is keyed by message id) shows the outline; the full text is one switch
    # away and renders the reasoning, paragraph by paragraph.
    at.session_state[f"think-{msg.id}"] = True
    run(at)
    [section] = thought_expanders(at)
    assert [e.label.split(" ", 1)[0] for e in section.expander] == ["1\\.", "2\\."]
    section.button_group[0].set_value("Full text")
    run(at)
    [section] = thought_expanders(at)
    assert texts(section.markdown) == split_paragraphs(turn.reasoning)
    assert any(MULTIPLY_REASONING_ONLY in t for t in texts(section.markdown))


def test_non_reasoning_model_shows_no_thought_section(server: ReplayServer, store: Store) -> None:
    at = new_app()
    choose_model(at, "demo-v3")
    send(at, MULTIPLY)
    _, msg = finished_turn(at, store)
    assert msg.turn.model == "demo-v3"
    assert msg.turn.reasoning == ""
    assert "391" in msg.turn.answer
    run(at)
    assert not at.main.expander
    [bubble] = assistant_bubbles(at)
    assert msg.turn.answer in texts(bubble.markdown)
    [stats] = texts(bubble.caption)
    assert "waited" in stats and "thought" not in stats


def test_prefilled_model_is_remembered_per_endpoint_and_model(server: ReplayServer, store: Store) -> None:
    at = new_app()
    choose_model(at, "demo-r1-prefilled")
    profile = context.get_bootstrap().profiles[0]
    service = context.get_service()
    assert not service.prefills_opener(profile.base_url, "demo-r1-prefilled")

    send(at, PREFILLED_391)
    conv, msg = finished_turn(at, store)
    turn = msg.turn
    assert turn.status == "done"
    assert "17 × 23 is exactly 391" in turn.reasoning
    assert turn.answer.strip() == "No. 391 = 17 × 23, so it is not prime."
    assert "think>" not in turn.answer
    assert wait_for(lambda: service.prefills_opener(profile.base_url, "demo-r1-prefilled"))
    assert store.get_setting(f"prefills:{profile.base_url}:demo-r1-prefilled") is True  # survives a restart
    assert not service.prefills_opener(profile.base_url, "demo-r1")  # per model
    first = service.get(conv.id)
    assert first is not None and first.recorder.options.assume_open is False

    run(at)
    [section] = thought_expanders(at)
    assert section.label.startswith("Thought for ")
    assert turn.answer in texts(at.main.markdown)

    # The next turn of that model starts inside the reasoning section from its first token.
    send(at, PREFILLED_391)
    conv, msg2 = finished_turn(at, store)
    assert msg2.id != msg.id
    second = service.get(conv.id)
    assert second is not None and second.message_id == msg2.id
    assert second.recorder.options.assume_open is True
    assert msg2.turn.reasoning == turn.reasoning and msg2.turn.answer == turn.answer


# -- budget, errors, regenerate ------------------------------------------------------------------


def test_reply_cut_by_budget_offers_retry_with_twice_the_tokens(server: ReplayServer, store: Store) -> None:
    at = new_app()
    choose_model(at, "demo-r1")
    open_sections(at, "Generation")
    at.sidebar.checkbox(key="use_max_tokens").check()
    run(at)  # the value is enabled once its "set" box is on
    at.sidebar.number_input(key="max_tokens").set_value(20)
    run(at)
    send(at, MULTIPLY)
    _, msg = finished_turn(at, store)
    assert msg.turn.request_params.get("max_tokens") == 20
    assert msg.turn.finish_reason == "length"
    assert msg.turn.reasoning_cut_by_budget
    assert msg.turn.answer == ""

    run(at)
    [bubble] = assistant_bubbles(at)
    warnings = texts(bubble.warning)
    assert any("max\\_tokens=20" in w and "still thinking" in w for w in warnings), warnings  # escaped Markdown
    [section] = thought_expanders(at)
    assert section.label.startswith("Token budget ran out after ")

    button(at, "Retry with 40 tokens").click()
    run(at)
    conv, retried = finished_turn(at, store)
    assert [m.role for m in conv.messages] == ["user", "assistant"], "the retry replaces the cut reply"
    assert retried.id != msg.id
    assert retried.turn.request_params.get("max_tokens") == 40
    assert retried.turn.reasoning.startswith(msg.turn.reasoning)  # deterministic replay, more tokens
    run(at)
    assert [b.label for b in at.button if b.label.startswith("Retry with ")] == ["Retry with 80 tokens"]


@pytest.mark.parametrize("fault", ["status=500", "disconnect=30"])
def test_error_is_shown_in_the_bubble_with_retry(server: ReplayServer, store: Store, fault: str) -> None:
    at = new_app()
    choose_model(at, f"demo-r1+{fault}")
    send(at, MULTIPLY)
    conv, msg = finished_turn(at, store)
    turn = msg.turn
    assert turn.error is not None, turn
    assert turn.status == "error"
    if fault == "disconnect=30":
        assert turn.reasoning, "the partial reasoning streamed before the disconnect is kept"

    run(at)
    [bubble] = assistant_bubbles(at)
    assert texts(bubble.error) == [turn.error.message]
    if fault == "status=500":
        assert "500" in turn.error.message
    else:
        [section] = thought_expanders(at)
        at.session_state[f"think-{msg.id}"] = True
        run(at)
        [section] = thought_expanders(at)
        assert "".join(texts(section.markdown))  # partial text rendered

    button(at, "Retry").click()
    run(at)
    conv2, again = finished_turn(at, store)
    assert again.id != msg.id
    assert len(conv2.messages) == len(conv.messages) == 2
    assert again.turn.error is not None


def test_regenerate_replaces_the_last_reply(server: ReplayServer, store: Store) -> None:
    at = new_app()
    choose_model(at, "demo-r1")
    send(at, MULTIPLY)
    conv, first = finished_turn(at, store)
    user_id = conv.messages[0].id
    run(at)
    button(at, "Regenerate").click()
    run(at)
    conv, second = finished_turn(at, store)
    assert [m.role for m in conv.messages] == ["user", "assistant"]
    assert conv.messages[0].id == user_id
    assert second.id != first.id
    assert second.turn.answer == first.turn.answer
    assert len(server.requests) >= 3  # /models, the first reply, the regenerated one
    assert [r.path for r in server.requests if r.method == "POST"].count("/v1/chat/completions") == 2


# -- sidebar: conversations, search, export -------------------------------------------------------


def test_conversation_list_rename_and_delete(server: ReplayServer, store: Store) -> None:
    at = new_app()
    choose_model(at, "demo-r1")
    send(at, MULTIPLY)
    first_id = current_id(at)
    finished_turn(at, store)
    button(at, "New chat").click()
    run(at)
    assert "c" not in at.query_params
    send(at, PREFILLED_391)
    second_id = current_id(at)
    finished_turn(at, store)
    assert second_id != first_id
    run(at)

    conv_buttons = [b for b in at.sidebar.button if (b.key or "").startswith("conv-")]
    assert [b.key for b in conv_buttons] == [f"conv-{second_id}", f"conv-{first_id}"]  # newest first
    assert [b.label for b in conv_buttons] == [f"▸ {PREFILLED_391}", MULTIPLY]

    # Open the older one from the list, then rename it: it keeps its place.
    at.sidebar.button(key=f"conv-{first_id}").click()
    run(at)
    assert current_id(at) == first_id
    open_sections(at, "This conversation")
    at.sidebar.text_input(key=f"title-{first_id}").input("Multiplication")
    run(at)
    button(at, "Rename").click()
    run(at)
    assert store.get_conversation(first_id).title == "Multiplication"
    conv_buttons = [b for b in at.sidebar.button if (b.key or "").startswith("conv-")]
    assert [b.label for b in conv_buttons] == [PREFILLED_391, "▸ Multiplication"]

    # Delete needs the confirmation checkbox first.
    assert not [b for b in at.button if b.label == "Yes, delete it"]
    at.sidebar.checkbox(key=f"del-{first_id}").check()
    run(at)
    button(at, "Yes, delete it").click()
    run(at)
    assert store.get_conversation(first_id) is None
    assert store.get_conversation(second_id) is not None
    assert "c" not in at.query_params
    assert [s.id for s in store.list_conversations()] == [second_id]
    assert [b.key for b in at.sidebar.button if (b.key or "").startswith("conv-")] == [f"conv-{second_id}"]


def test_search_finds_text_in_reasoning(server: ReplayServer, store: Store) -> None:
    at = new_app()
    choose_model(at, "demo-r1")
    send(at, MULTIPLY)
    conv_id = current_id(at)
    _, msg = finished_turn(at, store)
    button(at, "New chat").click()
    run(at)
    assert "c" not in at.query_params

    at.sidebar.text_input(key="search").input(MULTIPLY_REASONING_ONLY.upper())
    run(at)
    hits = [b for b in at.sidebar.button if (b.key or "").startswith("hit-")]
    assert len(hits) == 1, [b.label for b in hits]
    assert hits[0].key.endswith(f"{msg.id}-reasoning")
    assert "reasoning:" in hits[0].label
    hits[0].click()
    run(at)
    assert current_id(at) == conv_id

    at.sidebar.text_input(key="search").input("no such text anywhere")
    run(at)
    assert "No matches." in texts(at.sidebar.caption)


def test_export_download_buttons_exist_for_the_open_conversation(server: ReplayServer, store: Store) -> None:
    at = new_app()
    assert not at.get("download_button")
    choose_model(at, "demo-r1")
    send(at, MULTIPLY)
    finished_turn(at, store)
    run(at)
    assert not at.get("download_button"), "the This conversation section is drawn only while open"
    open_sections(at, "This conversation")
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Markdown", "HTML", "JSON"]
    assert at.sidebar.checkbox(key="export_reasoning").value is True
    at.sidebar.checkbox(key="export_reasoning").uncheck()
    open_sections(at, "This conversation", open_=False)
    assert not at.get("download_button")
    open_sections(at, "This conversation")
    assert at.sidebar.checkbox(key="export_reasoning").value is False, "kept while the section was closed"


def test_import_opens_the_conversation_and_a_bad_file_is_a_clear_error(server: ReplayServer, store: Store) -> None:
    at = new_app()
    choose_model(at, "demo-r1")
    send(at, MULTIPLY)
    original, _ = finished_turn(at, store)
    exported = to_json(original).encode()
    button(at, "New chat").click()
    run(at)

    assert not at.sidebar.file_uploader, "the Import section is drawn only while open"
    open_sections(at, "Import")
    at.sidebar.file_uploader(key="import_file").upload("chat.json", exported, "application/json")
    run(at)
    button(at, "Import").click()
    run(at)
    imported_id = current_id(at)
    assert imported_id != original.id  # the original is still there, so the copy gets a fresh id
    imported = store.get_conversation(imported_id)
    assert [m.content for m in imported.messages if m.role == "user"] == [MULTIPLY]
    assert imported.messages[-1].turn.reasoning == original.messages[-1].turn.reasoning
    assert thought_expanders(at) and original.messages[-1].turn.answer in texts(at.main.markdown)

    at.sidebar.file_uploader(key="import_file").upload("bad.json", b"{not json", "application/json")
    run(at)
    button(at, "Import").click()
    run(at)
    [error] = texts(at.sidebar.error)
    assert error.startswith("Not a JSON file")
    assert current_id(at) == imported_id
    assert len(store.list_conversations()) == 2


def test_search_lists_hits_in_two_copies_of_one_conversation(server: ReplayServer, store: Store) -> None:
    """An imported copy keeps its message ids (they are unique per conversation only)."""
    at = new_app()
    choose_model(at, "demo-r1")
    send(at, MULTIPLY)
    original, _ = finished_turn(at, store)
    store.import_conversation(original)
    run(at)
    at.sidebar.text_input(key="search").input(MULTIPLY_REASONING_ONLY)
    run(at)
    hits = [b for b in at.sidebar.button if (b.key or "").startswith("hit-")]
    assert len(hits) == 2


def test_save_endpoint_selects_it_and_delete_removes_it(server: ReplayServer, store: Store) -> None:
    at = new_app()
    assert not at.sidebar.get("form"), "the Manage endpoints section is drawn only while open"
    open_sections(at, "Manage endpoints")

    def fill_form(name: str, base_url: str) -> None:
        for field in at.sidebar.text_input:
            if field.label == "Name":
                field.input(name)
            elif field.label == "Base URL":
                field.input(base_url)
        button(at, "Save endpoint").click()
        run(at)

    fill_form("my box", "ftp://127.0.0.1:9/v1")
    [error] = texts(at.sidebar.error)
    assert "not a valid base URL" in error
    assert store.get_setting(context.PROFILES_KEY) is None

    fill_form("my box", "http://127.0.0.1:9/v1")
    [saved] = store.get_setting(context.PROFILES_KEY)
    assert saved["name"] == "my box" and saved["base_url"] == "http://127.0.0.1:9/v1"
    assert saved["api_key_env"] == "OPENAI_API_KEY"
    endpoint = at.sidebar.selectbox(key="profile_name")
    assert endpoint.options == ["Configured", "my box"]
    assert endpoint.value == "my box", "a newly saved endpoint is selected"
    assert any("Could not list models" in w for w in texts(at.sidebar.warning))  # nothing on port 9

    button(at, "Delete endpoint 'my box'").click()
    run(at)
    assert store.get_setting(context.PROFILES_KEY) == []
    assert at.sidebar.selectbox(key="profile_name").options == ["Configured"]


# -- safety ------------------------------------------------------------------------------------


def test_api_key_typed_in_sidebar_is_sent_but_never_stored(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sk-test-1f3a9c-never-on-disk"
    srv = ReplayServer(speed=0, api_key=secret).start()
    try:
        monkeypatch.setenv("REASONING_VIEWER_BASE_URL", srv.base_url)
        monkeypatch.setenv("REASONING_VIEWER_MODEL", "demo-r1")
        at = new_app()
        at.sidebar.text_input(key="key-Configured").input(secret)
        run(at)
        send(at, MULTIPLY)
        with Store(db_path) as s:
            _, msg = finished_turn(at, s)
        # The server demands the key, so a good answer proves the typed key was sent.
        assert msg.turn.error is None and "391" in msg.turn.answer
        run(at)
        assert secret.encode() not in db_bytes(db_path)
        assert secret[8:].encode() not in db_bytes(db_path)
        assert all(secret not in str(v) for v in at.query_params.values())
        assert secret not in str(msg.turn.request_params)
    finally:
        srv.stop()


def test_without_the_key_the_error_is_shown_not_raised(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    srv = ReplayServer(speed=0, api_key="sk-required").start()
    try:
        monkeypatch.setenv("REASONING_VIEWER_BASE_URL", srv.base_url)
        monkeypatch.setenv("REASONING_VIEWER_MODEL", "demo-r1")
        at = new_app()
        assert any("Could not list models" in w for w in texts(at.sidebar.warning))
        send(at, MULTIPLY)
        with Store(db_path) as s:
            _, msg = finished_turn(at, s)
        assert msg.turn.error is not None and msg.turn.error.status == 401
        run(at)
        assert texts(assistant_bubbles(at)[0].error) == [escape_markdown(msg.turn.error.message)]  # shown literally
    finally:
        srv.stop()


def test_xss_answer_is_markdown_without_unsafe_html(server: ReplayServer, store: Store) -> None:
    at = new_app()
    choose_model(at, "demo-xss")
    send(at, XSS)
    _, msg = finished_turn(at, store)
    assert "<script>alert(1)</script>" in msg.turn.answer
    assert "onerror" in msg.turn.reasoning
    at.session_state[f"think-{msg.id}"] = True
    run(at)

    [bubble] = assistant_bubbles(at)
    answer = [m for m in bubble.markdown if m.value == model_markdown(msg.turn.answer)]
    assert answer, texts(bubble.markdown)
    [section] = thought_expanders(at)
    reasoning = list(section.markdown)
    assert any("onerror" in m.value for m in reasoning)
    for element in [*answer, *reasoning]:
        assert element.proto.allow_html is False
    from viewer.ui.style import REASONING_STYLE

    html_bodies = [h.proto.body for h in at.get("html")]
    assert html_bodies == [REASONING_STYLE], "the only raw HTML on the page is the app's own stylesheet"
    assert not at.get("iframe")


def test_bad_extra_request_json_is_a_clear_error(server: ReplayServer, store: Store) -> None:
    at = new_app()
    choose_model(at, "demo-r1")
    open_sections(at, "Thinking")
    at.sidebar.text_area(key="extra_json").input('{"top_k": 20,')
    run(at)
    send(at, MULTIPLY)
    errors = texts(at.main.error)
    assert len(errors) == 1 and errors[0].startswith("Extra request JSON is not valid JSON"), errors
    assert "not sent" in errors[0], "the user is told the prompt was not sent"
    assert store.list_conversations() == [], "nothing stored: no half-finished exchange is left behind"
    assert not [r for r in server.requests if r.method == "POST"]

    at.sidebar.text_area(key="extra_json").input("[1, 2]")
    run(at)
    send(at, MULTIPLY)
    assert any("must be an object" in e for e in texts(at.main.error)), texts(at.main.error)

    at.sidebar.text_area(key="extra_json").input('{"top_k": 20}')
    run(at)
    send(at, MULTIPLY)
    _, msg = finished_turn(at, store)
    assert msg.turn.request_params.get("top_k") == 20
    assert not at.main.error


# -- a stored turn of every kind renders ---------------------------------------------------------


def test_stale_conversation_link_warns_and_starts_fresh(server: ReplayServer, store: Store) -> None:
    at = AppTest.from_file(str(APP_FILE), default_timeout=RUN_TIMEOUT_S)
    at.query_params["c"] = "doesnotexist"
    run(at)
    assert any("no longer exists" in w for w in texts(at.main.warning))
    assert "c" not in at.query_params


def test_interrupted_turn_from_a_previous_process_is_marked(server: ReplayServer, store: Store) -> None:
    conv = store.create_conversation(endpoint="Configured", model="demo-r1")
    store.add_message(conv.id, Message(role="user", content="hi"))
    turn = AssistantTurn(reasoning="Half a thought", answer="", status="streaming", model="demo-r1")
    store.add_message(conv.id, Message(role="assistant", turn=turn))
    at = AppTest.from_file(str(APP_FILE), default_timeout=RUN_TIMEOUT_S)
    at.query_params["c"] = conv.id
    run(at)
    assert [e.label for e in at.main.expander] == ["Interrupted while thinking"]
    assert any("interrupted" in w for w in texts(at.main.warning))
