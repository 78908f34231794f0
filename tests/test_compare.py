"""viewer/compare.py: compare runs against a real replay server over loopback, saved in a real SQLite file."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from viewer import compare, compare_export
from viewer.compare import (
    SPEC_KEYS,
    CompareService,
    ModelSpec,
    ModelSpecError,
    parse_model_spec,
    percentile,
    summarize,
)
from viewer.demo.replay import ReplayServer
from viewer.models import EndpointProfile
from viewer.replies import ReplyRefused, ReplyService, Target
from viewer.request_builder import GenerationSettings
from viewer.store import Store

PROMPT = "What is 17 × 23?"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "compare.db")
    yield s
    s.close()


def target(server: ReplayServer, model: str, **settings: object) -> Target:
    profile = EndpointProfile(name="replay", base_url=server.base_url, api_key_env="NO_SUCH_KEY")
    return Target(profile=profile, settings=GenerationSettings(model=model, **settings))  # type: ignore[arg-type]


def overlapped(records: list) -> bool:
    """Every request started before every other one finished: they were served at the same time."""
    return max(r.started_at for r in records) < min(r.finished_at for r in records)


def test_run_once_streams_concurrently_and_a_failing_target_breaks_nothing() -> None:
    with ReplayServer(speed=0.5) as server:  # real pacing, so a sequential run could not overlap
        turns = compare.run_once(
            [target(server, "demo-r1"), target(server, "demo-r1+status=500"), target(server, "demo-v3")],
            PROMPT,
        )
        records = [r for r in server.wait_finished(3) if r.model]
    r1, failed, v3 = turns
    assert r1.error is None and r1.reasoning and r1.answer and r1.finish_reason == "stop"
    assert v3.error is None and v3.answer and not v3.reasoning
    assert failed.error is not None and failed.error.status == 500
    ok = [r for r in records if r.status != 500]
    assert len(ok) == 2 and overlapped(ok)


def test_metrics_of_a_reasoning_and_a_plain_model(replay_server: ReplayServer) -> None:
    r1, v3 = compare.run_once([target(replay_server, "demo-r1"), target(replay_server, "demo-v3")], PROMPT)
    m1, m3 = compare.metrics(r1), compare.metrics(v3)
    assert set(m1) == {key for key, _ in compare.METRICS} | {"error"}
    assert m1["thought_s"] is not None and m1["reasoning_tokens"] and m1["steps"] >= 1
    assert m3["thought_s"] is None and not m3["reasoning_tokens"] and m3["steps"] == 0
    assert m1["answer_tokens"] and m3["answer_tokens"] and m1["finish_reason"] == m3["finish_reason"] == "stop"


def test_a_target_that_cannot_be_sent_gets_its_own_error(replay_server: ReplayServer) -> None:
    bad = Target(
        profile=EndpointProfile(name="bad", base_url="ftp://nowhere", api_key_env="NO_SUCH_KEY"),
        settings=GenerationSettings(model="x"),
    )
    turns = compare.run_once([bad, target(replay_server, "demo-v3")], PROMPT)
    assert turns[0].error is not None and turns[0].model == "x"
    assert turns[1].error is None and turns[1].answer


def test_service_saves_one_conversation_per_target_and_follow_ups_keep_each_history(
    replay_server: ReplayServer, store: Store
) -> None:
    service = CompareService(ReplyService(store))
    run = service.start(
        [target(replay_server, "demo-r1"), target(replay_server, "demo-r1", thinking="off")], "What is 17 × 23?"
    )
    assert run.wait(15)
    run.replies()[0].saved.wait(5)
    run.replies()[1].saved.wait(5)
    members = store.compare_members(run.group_id)
    assert [cid for cid, _ in members] == [c.conversation_id for c in run.columns]
    assert members[1][1]["settings"]["thinking"] == "off" and "api_key" not in members[1][1]
    assert {store.compare_group_of(cid) for cid, _ in members} == {run.group_id}

    service.follow_up(run.group_id, "And 18 × 23?")
    assert run.wait(15)
    for reply in run.replies():
        assert reply.saved.wait(5)
    convs = service.conversations(run)
    for conv in convs:
        assert [m.role for m in conv.messages] == ["user", "assistant", "user", "assistant"]
        assert conv.messages[2].content == "And 18 × 23?"
    # Each column sent its own history: its own previous answer, not the other's.
    sent = [r.body for r in replay_server.requests if r.body and len(r.body["messages"]) == 3]
    assert len(sent) == 2
    firsts = {conv.messages[1].turn.answer for conv in convs if conv.messages[1].turn}
    assert {b["messages"][1]["content"] for b in sent} <= firsts

    # Found again after a "reload" (a new service over the same store), and searchable and exportable.
    again = CompareService(ReplyService(store)).get(run.group_id)
    assert again is not None and [c.target.settings.thinking for c in again.columns] == ["default", "off"]
    hits = store.search("18 × 23")
    assert {h.conversation_id for h in hits} == {c.conversation_id for c in run.columns}
    text = compare_export.to_markdown([c.name for c in run.columns], [c.target for c in run.columns], convs)
    assert (
        text.index("| target |")
        < text.index("## Column 1: demo-r1")
        < text.index("## Column 2: demo-r1 · thinking off")
    )


def test_a_failing_column_keeps_its_error_and_the_other_finishes(replay_server: ReplayServer, store: Store) -> None:
    service = CompareService(ReplyService(store))
    run = service.start([target(replay_server, "demo-r1+disconnect=30"), target(replay_server, "demo-v3")], PROMPT)
    assert run.wait(15)
    broken, fine = (r.snapshot() for r in run.replies())
    assert broken.error is not None and broken.reasoning  # the partial text stays
    assert fine.error is None and fine.answer


def test_stop_stops_every_column(store: Store) -> None:
    with ReplayServer(speed=0.05) as server:  # slow enough to still be streaming when stopped
        service = CompareService(ReplyService(store))
        run = service.start([target(server, "demo-r1"), target(server, "demo-v3")], PROMPT)
        assert service.running(run.group_id) is run
        service.stop(run.group_id)
        assert run.wait(10)
        assert all(r.snapshot().stopped for r in run.replies())
        assert service.running(run.group_id) is None


def test_fewer_than_two_targets_is_refused(replay_server: ReplayServer, store: Store) -> None:
    with pytest.raises(ReplyRefused):
        CompareService(ReplyService(store)).start([target(replay_server, "demo-r1")], PROMPT)
    assert store.list_conversations() == []


def test_deleting_a_group_deletes_its_conversations(replay_server: ReplayServer, store: Store) -> None:
    run = CompareService(ReplyService(store)).start(
        [target(replay_server, "demo-r1"), target(replay_server, "demo-v3")], PROMPT
    )
    assert run.wait(15)
    for reply in run.replies():
        assert reply.saved.wait(5)
    store.delete_compare_group(run.group_id)
    assert store.list_conversations() == [] and store.compare_members(run.group_id) == []


def test_model_spec_syntax() -> None:
    assert parse_model_spec("demo-r1") == ModelSpec("demo-r1")
    assert parse_model_spec("demo-r1@http://b:8000/v1") == ModelSpec("demo-r1", base_url="http://b:8000/v1")
    assert parse_model_spec("org/model@v2") == ModelSpec("org/model@v2")
    # Model ids with ':' '/' '@' and URLs with userinfo and IPv6 brackets.
    spec = parse_model_spec("hf.co/unsloth/Qwen3:Q4_K_M[ Thinking = OFF , max_tokens=0512]@http://u@[::1]:8000/v1")
    assert spec == ModelSpec(
        "hf.co/unsloth/Qwen3:Q4_K_M", (("thinking", "off"), ("max_tokens", "512")), "http://u@[::1]:8000/v1"
    )
    # The label is printed and written to --json: the URL's user name (and any password) is left out.
    assert spec.label() == "hf.co/unsloth/Qwen3:Q4_K_M [thinking=off,max_tokens=512]@http://[::1]:8000/v1"
    assert str(parse_model_spec("qwen3[effort=high,thinking=on]")) == "qwen3[thinking=on,effort=high]"
    assert parse_model_spec("x[1][]") == ModelSpec("x[1]") and str(ModelSpec("x[1]")) == "x[1][]"
    assert parse_model_spec("a[b") == ModelSpec("a[b")


def test_model_spec_settings_override_the_shared_ones() -> None:
    shared = GenerationSettings(model="?", max_tokens=100, reasoning_effort="low", temperature=0.5)
    own = parse_model_spec("qwen3[thinking=off,effort=default,max_tokens=7]").apply(shared)
    assert (own.model, own.thinking, own.reasoning_effort, own.max_tokens) == ("qwen3", "off", None, 7)
    assert own.temperature == 0.5
    assert parse_model_spec("qwen3").apply(shared) == dataclasses.replace(shared, model="qwen3")


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("qwen3[thinking=maybe]", "thinking must be one of on, off, default, not 'maybe'"),
        ("qwen3[temperature=1]", "unknown setting 'temperature' (keys: thinking, effort, max_tokens)"),
        ("qwen3[history=inline]", "unknown setting 'history'"),
        ("qwen3[thinking]", "'thinking' is not KEY=VALUE"),
        ("qwen3[max_tokens=-1]", "max_tokens must be a positive integer"),
        ("qwen3[max_tokens=0]", "max_tokens must be a positive integer"),
        ("qwen3[effort=extreme]", "effort must be one of default, none, minimal, low, medium, high"),
        ("qwen3[thinking=on,thinking=off]", "thinking is given twice"),
        ("[thinking=on]@http://h/v1", "no model id"),
        ("@http://h/v1", "no model id"),
        ("x[1]", "'1' is not KEY=VALUE"),
    ],
)
def test_a_bad_model_spec_says_what_is_wrong(spec: str, says: str) -> None:
    with pytest.raises(ModelSpecError) as caught:
        parse_model_spec(spec)
    assert says in str(caught.value) and repr(spec) in str(caught.value) and "\n" not in str(caught.value)


_VALUES = {"thinking": ["on", "off", "default"], "effort": ["default", "high", "none"]}


@st.composite
def model_specs(draw: st.DrawFn) -> ModelSpec:
    model = draw(st.text(min_size=1, max_size=30).filter(lambda m: not re.search("@https?://", m, re.IGNORECASE)))
    keys = draw(st.lists(st.sampled_from(SPEC_KEYS), unique=True))
    settings = tuple(
        (k, str(draw(st.integers(1, 10**6))) if k == "max_tokens" else draw(st.sampled_from(_VALUES[k])))
        for k in SPEC_KEYS
        if k in keys
    )
    url = draw(st.none() | st.text(max_size=20).map(lambda rest: "http://" + rest))
    return ModelSpec(model, settings, url)


@given(model_specs())
def test_a_canonical_model_spec_reads_back_the_same(spec: ModelSpec) -> None:
    assert parse_model_spec(str(spec)) == spec


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=50))
def test_p90_is_a_value_with_at_least_90_percent_at_or_below(values: list[float]) -> None:
    p = percentile(values, 90)
    assert p in values
    assert sum(v <= p for v in values) >= 0.9 * len(values)
    assert sum(v < p for v in values) < 0.9 * len(values)


def test_summary_median_and_p90() -> None:
    runs = [{"total_s": t, "finish_reason": "stop"} for t in (1.0, 2.0, 3.0, 4.0, 10.0)]
    out = summarize(runs)
    assert out["median"]["total_s"] == 3.0 and out["p90"]["total_s"] == 10.0
    assert out["median"]["waited_s"] is None and out["p90"]["finish_reason"] == "stop"


def test_finished_runs_beyond_the_newest_few_are_dropped_from_memory_but_not_from_the_store(
    replay_server: ReplayServer, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compare, "KEEP_FINISHED", 2)
    service = CompareService(ReplyService(store))
    with ReplayServer(speed=0.05) as slow:
        streaming = service.start([target(slow, "demo-r1"), target(slow, "demo-v3")], PROMPT)
        runs = []
        for _ in range(5):
            chosen = [target(replay_server, "demo-r1"), target(replay_server, "demo-v3")]
            chosen[0].markers = [("<think>", "</think>")]  # a setting the store does not keep
            chosen[0].api_key = "sk-test-kept-in-memory"
            run = service.start(chosen, PROMPT)
            assert run.wait(15) and all(r.saved.wait(5) for r in run.replies())
            runs.append(run)
        # When the last run started, four were finished: the newest two of them keep their replies, with the
        # streaming run (kept however old it is) and the new one.
        assert streaming.running()
        assert service.held() == [streaming.group_id, runs[2].group_id, runs[3].group_id, runs[4].group_id]
        assert runs[0].replies() == [] and len(runs[4].replies()) == 2
        streaming.stop()
        assert streaming.wait(10)
    # A run whose replies were let go keeps its targets: a follow-up sends as the first prompt did.
    again = service.get(runs[0].group_id)
    assert again is runs[0]
    assert again.columns[0].target.markers == [("<think>", "</think>")]
    assert again.columns[0].target.api_key == "sk-test-kept-in-memory"
    service.follow_up(again.group_id, "And 18 × 23?", api_key="sk-other", base_url="http://elsewhere:1/v1")
    assert again.wait(15)
    assert again.columns[0].target.api_key == "sk-test-kept-in-memory"
    assert again.columns[1].target.api_key is None  # another endpoint's key is never handed to it
    # After a restart the run is rebuilt from the store, answers and all.
    rebuilt = CompareService(ReplyService(store)).get(runs[0].group_id)
    assert rebuilt is not None and rebuilt is not runs[0]
    assert [c.conversation_id for c in rebuilt.columns] == [c.conversation_id for c in runs[0].columns]
    answers = [c.messages[1].turn.answer for c in CompareService(ReplyService(store)).conversations(rebuilt)]
    assert len(answers) == 2 and all("391" in a for a in answers)


def test_a_follow_up_gives_a_typed_key_only_to_columns_on_that_endpoint(
    replay_server: ReplayServer, store: Store
) -> None:
    service = CompareService(ReplyService(store))
    run = service.start([target(replay_server, "demo-r1"), target(replay_server, "demo-v3")], PROMPT)
    assert run.wait(15)
    service.follow_up(run.group_id, "Again?", api_key="sk-typed", base_url=replay_server.base_url + "/")
    assert run.wait(15)
    assert [c.target.api_key for c in run.columns] == ["sk-typed", "sk-typed"]
