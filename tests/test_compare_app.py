"""The compare page (viewer/ui/compare_view.py) through AppTest, against a real replay server and SQLite file.

The fixtures and helpers are the app tests' own (tests/test_app.py): a private database, a fresh replay
server, the app's resource cache cleared around each test.
"""

from __future__ import annotations

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
    wait_until,
)
from viewer.demo.replay import ReplayServer
from viewer.store import Store


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
