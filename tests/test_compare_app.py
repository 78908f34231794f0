"""The compare page (viewer/ui/compare_view.py) through AppTest, against a real replay server and SQLite file.

The fixtures and helpers are the app tests' own (tests/test_app.py): a private database, a fresh replay
server, the app's resource cache cleared around each test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from tests.test_app import (  # noqa: F401  (fixtures)
    APP_FILE,
    MULTIPLY,
    MULTIPLY_REASONING_ONLY,
    RUN_TIMEOUT_S,
    db_path,
    run,
    server,
    store,
    wait_for,
    wait_until,
)
from viewer.demo.replay import ReplayServer
from viewer.store import Store
from viewer.ui import chat, compare_view


def compare_app(models: str) -> AppTest:
    at = AppTest.from_file(str(APP_FILE), default_timeout=RUN_TIMEOUT_S)
    at.query_params["compare"] = models
    return run(at)


def finished(db: Store, conversation_ids: list[str]) -> bool:
    convs = [db.get_conversation(cid) for cid in conversation_ids]
    return all(
        c is not None and c.messages and c.messages[-1].turn is not None and c.messages[-1].turn.status != "streaming"
        for c in convs
    )


def test_deep_link_preselects_and_one_prompt_streams_to_both_columns(
    server: ReplayServer,  # noqa: F811
    store: Store,  # noqa: F811
) -> None:
    at = compare_app("demo-r1,demo-v3")
    assert [s.value for s in at.selectbox if s.key and s.key.startswith("compare_model_")] == ["demo-r1", "demo-v3"]
    thinking = next(s for s in at.selectbox if s.key == "compare_thinking_1")
    thinking.set_value("off")
    run(at)
    at.chat_input(key="compare_composer").set_value(MULTIPLY)
    run(at)
    conv_id = at.query_params.get("c")
    group = store.compare_group_of(conv_id)
    assert group is not None and "compare" not in at.query_params
    members = store.compare_members(group)
    ids = [cid for cid, _ in members]
    assert [d["settings"]["model"] for _, d in members] == ["demo-r1", "demo-v3"]
    assert members[1][1]["settings"]["thinking"] == "off"
    wait_until(at, lambda: finished(store, ids), "both columns to finish")
    run(at)
    # Both answers side by side; one thinking section (demo-v3 does not reason); the metrics table.
    assert sum("391" in m.value for m in at.markdown) >= 2
    sections = [e.label for e in at.expander if "Thought for" in e.label]
    assert len(sections) == 1
    table = at.table[0].value
    assert list(table["target"]) == ["demo-r1", "demo-v3 · thinking off"]
    assert table["thought"][1] == "–" and table["thought"][0].endswith("s")
    # Listed once in the sidebar, marked as a comparison.
    labels = [b.label for b in at.sidebar.button if "comparison" in b.label]
    assert len(labels) == 1 and "17" in labels[0]

    # A follow-up goes to every column, each with its own history.
    at.chat_input(key="compare_composer").set_value("And 18 × 23?")
    run(at)
    wait_until(
        at,
        lambda: all(len(store.get_conversation(cid).messages) == 4 for cid in ids) and finished(store, ids),
        "the follow-up in both columns",
    )
    sent = [r.body["messages"] for r in server.requests if r.body and len(r.body.get("messages", [])) == 3]
    assert sorted(m[0]["content"] for m in sent) == [MULTIPLY, MULTIPLY]
    assert len(sent) == 2


def test_a_stored_comparison_reopens_and_search_finds_it(
    server: ReplayServer,  # noqa: F811
    store: Store,  # noqa: F811
) -> None:
    at = compare_app("demo-r1,demo-v3")
    at.chat_input(key="compare_composer").set_value(MULTIPLY)
    run(at)
    conv_id = at.query_params.get("c")
    ids = [cid for cid, _ in store.compare_members(store.compare_group_of(conv_id))]
    wait_until(at, lambda: finished(store, ids), "both columns to finish")

    fresh = AppTest.from_file(str(APP_FILE), default_timeout=RUN_TIMEOUT_S)
    run(fresh)
    fresh.sidebar.text_input(key="search").set_value(MULTIPLY_REASONING_ONLY)
    run(fresh)
    hit = next(b for b in fresh.sidebar.button if b.key and b.key.startswith(f"hit-{ids[0]}"))
    hit.click()
    run(fresh)
    assert fresh.query_params.get("c") == ids[0]
    assert fresh.table and list(fresh.table[0].value["target"]) == ["demo-r1", "demo-v3"]
    assert any("Comparison" in s.value for s in fresh.subheader)


def test_a_failing_target_shows_its_error_in_its_column(server: ReplayServer, store: Store) -> None:  # noqa: F811
    at = compare_app("demo-r1+status=500,demo-v3")
    at.chat_input(key="compare_composer").set_value(MULTIPLY)
    run(at)
    ids = [cid for cid, _ in store.compare_members(store.compare_group_of(at.query_params.get("c")))]
    wait_until(at, lambda: finished(store, ids), "both columns to finish")
    run(at)
    assert any("500" in e.value for e in at.error)
    table = at.table[0].value
    assert list(table["finish"]) == ["error", "stop"]


def test_the_sidebar_button_opens_compare_mode_with_the_endpoints_models(server: ReplayServer) -> None:  # noqa: F811
    at = run(AppTest.from_file(str(APP_FILE), default_timeout=RUN_TIMEOUT_S))
    assert not [s for s in at.selectbox if s.key and s.key.startswith("compare_model_")]
    next(b for b in at.sidebar.button if b.label == "Compare models").click()
    run(at)
    picked = [s.value for s in at.selectbox if s.key and s.key.startswith("compare_model_")]
    assert len(picked) == 2 and set(picked) <= set(server.model_ids) and picked[0] != picked[1]
    assert any(s.value == "Compare models" for s in at.subheader)


def test_a_finished_comparison_offers_markdown_html_and_json_downloads(
    server: ReplayServer,  # noqa: F811
    store: Store,  # noqa: F811
) -> None:
    at = compare_app("demo-r1,demo-v3")
    at.chat_input(key="compare_composer").set_value(MULTIPLY)
    run(at)
    ids = [cid for cid, _ in store.compare_members(store.compare_group_of(at.query_params.get("c")))]
    wait_until(at, lambda: finished(store, ids), "both columns to finish")
    run(at)
    downloads = [b for b in at.main.get("download_button") if "compare-export-" in str(b.proto.id)]
    assert [b.label for b in downloads] == ["Markdown", "HTML", "JSON"]
    assert all(b.proto.deferred_file_id for b in downloads)  # each made when clicked, from the same columns


@pytest.fixture
def slow_server(db_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ReplayServer]:  # noqa: F811
    """The app on a replay server at a tenth of the recorded pace: both targets still stream seconds later."""
    srv = ReplayServer(speed=0.1).start()
    monkeypatch.setenv("REASONING_VIEWER_BASE_URL", srv.base_url)
    try:
        yield srv
    finally:
        srv.stop()


def test_clicking_stop_all_stops_every_streaming_column_and_keeps_its_partial_text(
    slow_server: ReplayServer,
    store: Store,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # AppTest hands back a run's elements only when the run ends, and the compare page's run watches the live
    # replies until they end. In a browser a click interrupts that run (a rerun request); here the watch loop
    # ends the run at once instead, so the page is drawn with its columns streaming and "Stop all" to click.
    watch = chat.watch_replies
    monkeypatch.setattr(chat, "watch_replies", lambda views: st.stop())
    at = compare_app("demo-r1,demo-v3")
    at.chat_input(key="compare_composer").set_value(MULTIPLY)
    run(at)
    group = store.compare_group_of(at.query_params.get("c"))
    live = compare_view.get_compare_service().get(group)
    assert live is not None and live.running() and len(live.replies()) == 2
    assert wait_for(lambda: all(r.snapshot().reasoning or r.snapshot().answer for r in live.replies()))
    assert live.running()  # both have streamed some text, neither has finished

    at.button(key=f"stop-all-{group}").click()
    run(at)
    assert live.wait(10)
    turns = [r.snapshot() for r in live.replies()]
    assert all(t.stopped and t.status == "stopped" for t in turns)
    assert turns[0].reasoning and not turns[0].answer  # demo-r1 was still thinking
    assert turns[1].answer and "391" not in turns[1].answer  # demo-v3 was part way through its answer
    assert all(r.saved.wait(10) for r in live.replies())
    ids = [c.conversation_id for c in live.columns]
    saved = [store.get_conversation(cid).messages[-1].turn for cid in ids]
    assert [(t.status, t.reasoning, t.answer) for t in saved] == [(t.status, t.reasoning, t.answer) for t in turns]

    monkeypatch.setattr(chat, "watch_replies", watch)
    run(at)
    assert not [b for b in at.button if b.key and b.key.startswith("stop-all-")]
    assert sum("Stopped. The partial reply is kept." in c.value for c in at.main.caption) == 2
    assert list(at.table[0].value["target"]) == ["demo-r1", "demo-v3"]
