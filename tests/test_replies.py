"""viewer/replies.py: replies that belong to the app, their event log and cursors, the saver, the service.

Everything streams from a real replay server over loopback and saves into a real SQLite file.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.storage_faults import full_disk, write_locked
from viewer.client import ChatClient
from viewer.demo.replay import ReplayServer
from viewer.models import EndpointProfile
from viewer.reasoning import SplitEvent
from viewer.replies import Reply, ReplyBusy, ReplyLog, ReplyRefused, ReplyService, Target, TextCursor
from viewer.request_builder import GenerationSettings
from viewer.store import Store

PROMPT = "What is 17 × 23?"


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
    """Poll a condition with a deadline: a wait for a fact, never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "replies.db")
    yield s
    s.close()


def target(server: ReplayServer, model: str, **settings: object) -> Target:
    profile = EndpointProfile(name="replay", base_url=server.base_url, api_key_env="NO_SUCH_KEY")
    return Target(profile=profile, settings=GenerationSettings(model=model, **settings))  # type: ignore[arg-type]


# -- the log and its cursors --------------------------------------------------------------------------------


def test_cursors_read_only_what_is_new_and_rebuild_the_text() -> None:
    log = ReplyLog()
    a, b = TextCursor(), TextCursor()
    log.append([SplitEvent("reasoning_start", "", 0.0), SplitEvent("reasoning", "Let me ", 0.0)])
    first = a.advance(log)
    assert first.reasoning_started and first.reasoning == "Let me "
    log.append([SplitEvent("reasoning", "think.", 0.1), SplitEvent("reasoning_end", "", 0.1)])
    log.append([SplitEvent("answer", "42", 0.2)])
    second = a.advance(log)
    assert (second.reasoning, second.answer, second.reasoning_ended) == ("think.", "42", True)
    assert not a.advance(log)  # nothing new: an empty change
    late = b.advance(log)  # a viewer that comes later reads everything once
    assert (late.reasoning, late.answer) == ("Let me think.", "42")
    assert a.cursor == b.cursor == len(log)


def test_a_reclassification_resets_the_answer_a_viewer_has_shown() -> None:
    log = ReplyLog()
    cursor = TextCursor()
    log.append([SplitEvent("provisional", "17 × 23 ", 0.0)])
    assert cursor.advance(log).answer == "17 × 23 "
    log.append([SplitEvent("reclassified", "17 × 23 is 391.", 0.1), SplitEvent("reasoning_end", "", 0.1)])
    log.append([SplitEvent("answer", "No.", 0.2)])
    changes = cursor.advance(log)
    assert changes.answer_reset and changes.reasoning == "17 × 23 is 391." and changes.answer == "No."
    assert not cursor.provisional  # the answer after the closer is the answer


def test_a_cursor_knows_while_the_answer_shown_may_yet_be_reasoning() -> None:
    log = ReplyLog()
    cursor = TextCursor()
    log.append([SplitEvent("provisional", "391. Check ", 0.0)])
    cursor.advance(log)
    assert cursor.provisional
    log.append([SplitEvent("provisional", "small primes.", 0.1)])
    assert cursor.advance(log).answer == "small primes." and cursor.provisional
    log.append([SplitEvent("reclassified", "391. Check small primes.", 0.2)])
    cursor.advance(log)
    assert not cursor.provisional
    plain = TextCursor()
    log2 = ReplyLog()
    log2.append([SplitEvent("answer", "Hello", 0.0)])
    plain.advance(log2)
    assert not plain.provisional


def test_wait_wakes_for_new_events_and_for_the_close() -> None:
    log = ReplyLog()
    assert log.wait(0, 0.01) is False  # nothing yet: times out
    threading.Timer(0.05, lambda: log.append([SplitEvent("answer", "x", 0.0)])).start()
    assert log.wait(0, 10.0) is True
    threading.Timer(0.05, log.close).start()
    assert log.wait(1, 10.0) is True and log.closed


# -- one reply ------------------------------------------------------------------------------------------


def test_reply_without_a_store_runs_in_the_calling_thread(replay_server: ReplayServer) -> None:
    seen: list[SplitEvent] = []
    client = ChatClient(replay_server.base_url, api_key_env=None)
    reply = Reply(
        client=client,
        request={"model": "demo-r1", "messages": [{"role": "user", "content": PROMPT}]},
        on_events=seen.extend,
    )
    final = reply.run()
    assert reply.done.is_set() and reply.saved.is_set() and reply.log.closed
    assert final.status == "done" and "391" in final.answer and final.reasoning
    cursor = TextCursor()
    changes = cursor.advance(reply.log)
    assert (changes.reasoning, changes.answer) == (final.reasoning, final.answer)
    assert len(seen) == len(reply.log)  # the inline viewer saw every event, in order


# -- the service --------------------------------------------------------------------------------------------


def test_service_starts_saves_and_keeps_the_latest_reply(store: Store, replay_server: ReplayServer) -> None:
    service = ReplyService(store)
    reply = service.start(target(replay_server, "demo-r1"), prompt=PROMPT)
    assert reply.wait(30) and reply.saved.wait(30)
    conv = store.get_conversation(reply.conversation_id)
    assert conv is not None and conv.title.startswith("What is 17")
    assert [m.role for m in conv.messages] == ["user", "assistant"]
    saved = conv.messages[-1].turn
    assert saved is not None and reply.final is not None
    assert (saved.reasoning, saved.answer, saved.status) == (reply.final.reasoning, reply.final.answer, "done")
    assert service.get(conv.id) is reply and service.running(conv.id) is None
    assert service.overlay(conv).messages[-1].turn == reply.final


def test_prefilled_opener_is_remembered_per_endpoint_and_model(store: Store, replay_server: ReplayServer) -> None:
    service = ReplyService(store)
    base = replay_server.base_url
    first = service.start(target(replay_server, "demo-r1-prefilled"), prompt="Is 391 prime?")
    assert first.wait(30) and first.recorder.options.assume_open is False
    assert wait_until(lambda: service.prefills_opener(base, "demo-r1-prefilled"))
    assert not service.prefills_opener(base, "demo-r1")
    second = service.start(
        target(replay_server, "demo-r1-prefilled"), conversation_id=first.conversation_id, prompt="And 221?"
    )
    assert second.wait(30) and second.recorder.options.assume_open is True
    assert ReplyService(store).prefills_opener(base, "demo-r1-prefilled"), "kept in the store across restarts"


def test_history_policy_is_per_model_and_persists(store: Store) -> None:
    service = ReplyService(store)
    assert service.history_policy("http://h/v1", "m") == "strip"
    service.set_history_policy("http://h/v1", "m", "reasoning")
    assert ReplyService(store).history_policy("http://h/v1", "m") == "reasoning"
    assert service.history_policy("http://h/v1", "other") == "strip"
    assert ReplyService(None).history_policy("http://h/v1", "m") == "strip"


def test_a_second_reply_in_a_streaming_conversation_is_refused_and_nothing_stored(store: Store) -> None:
    with ReplayServer(speed=5).start() as server:
        service = ReplyService(store)
        first = service.start(target(server, "demo-long"), prompt="Count them all.")
        assert wait_until(lambda: len(first.log) > 3)
        before = store.get_conversation(first.conversation_id)
        with pytest.raises(ReplyBusy, match="already streaming"):
            service.start(target(server, "demo-r1"), conversation_id=first.conversation_id, prompt="Another?")
        assert store.get_conversation(first.conversation_id) == before
        assert service.streaming_conversations() == {first.conversation_id}
        service.stop(first.conversation_id)
        assert first.wait(10) and first.final is not None and first.final.stopped
        assert service.streaming_conversations() == set()


def test_a_setting_that_cannot_be_sent_is_refused_before_anything_is_stored(
    store: Store, replay_server: ReplayServer
) -> None:
    service = ReplyService(store)
    with pytest.raises(ReplyRefused, match="Choose a model"):
        service.start(target(replay_server, ""), prompt=PROMPT)
    with pytest.raises(ReplyRefused, match="Extra request JSON"):
        service.start(target(replay_server, "demo-r1", extra_json="{oops"), prompt=PROMPT)
    assert store.list_conversations() == []


def test_only_stop_stops_a_reply_nobody_watches(store: Store) -> None:
    """No page holds the reply: it streams on to the end and is saved whole (a closed tab, another chat)."""
    with ReplayServer(speed=50).start() as server:
        service = ReplyService(store)
        reply = service.start(target(server, "demo-r1"), prompt=PROMPT)
        del reply
        conv_id = next(iter(service.streaming_conversations()), None) or store.list_conversations()[0].id
        held = service.get(conv_id)
        assert held is not None and held.wait(30) and held.saved.wait(30)
        saved = store.get_conversation(conv_id)
        assert saved is not None and saved.messages[-1].turn is not None
        assert saved.messages[-1].turn.status == "done" and "391" in saved.messages[-1].turn.answer


# -- saving as it streams -----------------------------------------------------------------------------------


class CountingStore(Store):
    """A real store that notes what each progress save wrote."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.progress: list[tuple[int, int, bool, int]] = []

    def save_turn_progress(self, conv_id, message_id, meta, *, reasoning_add="", answer_add="", **kw):  # type: ignore[override]
        self.progress.append((len(reasoning_add), len(answer_add), bool(kw.get("answer_reset")), len(meta.reasoning)))
        super().save_turn_progress(conv_id, message_id, meta, reasoning_add=reasoning_add, answer_add=answer_add, **kw)


def test_progress_saves_write_only_what_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("viewer.replies.SAVE_EVERY_S", 0.05)
    store = CountingStore(tmp_path / "count.db")
    with ReplayServer(speed=40).start() as server:
        service = ReplyService(store)
        reply = service.start(target(server, "demo-long"), prompt="Count them all.")
        assert wait_until(lambda: len(store.progress) >= 3, timeout=30)
        partial = store.get_conversation(reply.conversation_id)
        assert partial is not None and partial.messages[-1].turn is not None
        stored = partial.messages[-1].turn
        assert stored.status == "streaming" and stored.reasoning  # a reload now shows the text so far
        reply.stop()
        assert reply.wait(10) and reply.saved.wait(10)
    final = reply.final
    assert final is not None
    assert all(meta == 0 for *_, meta in store.progress), "the metadata saved while streaming carries no text"
    written = sum(r for r, *_ in store.progress)
    assert 0 < written <= len(final.reasoning), "each piece of reasoning is written once, not the whole trace"
    again = store.get_conversation(reply.conversation_id)
    assert again is not None and again.messages[-1].turn is not None
    assert again.messages[-1].turn.reasoning == final.reasoning and again.messages[-1].turn.stopped
    store.close()


def test_disk_full_keeps_the_reply_in_memory_and_saving_resumes(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("viewer.replies.RETRY_SAVE_S", 0.05)
    with ReplayServer(speed=200).start() as server:  # the 232 s trace in about a second
        service = ReplyService(store)
        reply = service.start(target(server, "demo-long"), prompt="Count them all.")
        with full_disk(store):  # the disk is full from now on: the file cannot grow
            assert not reply.done.is_set(), "the disk filled up while the reply streams"
            assert reply.wait(30)
            assert wait_until(lambda: reply.save_problem is not None and "disk full" in reply.save_problem)
            assert not reply.saved.is_set()
            final = reply.final
            assert final is not None and len(final.reasoning) > 50_000
            stored = store.get_conversation(reply.conversation_id)
            assert stored is not None and stored.messages[-1].turn is not None
            assert len(stored.messages[-1].turn.reasoning) < len(final.reasoning)  # not on disk...
            shown = service.overlay(stored)
            assert shown.messages[-1].turn == final  # ...but whole in memory, for the page and for exports
        # space returns
        assert reply.saved.wait(10) and reply.save_problem is None
    again = store.get_conversation(reply.conversation_id)
    assert again is not None and again.messages[-1].turn is not None
    assert again.messages[-1].turn.reasoning == final.reasoning


def test_a_locked_database_delays_saving_but_never_the_stream_nor_the_pages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("viewer.replies.SAVE_EVERY_S", 0.05)
    monkeypatch.setattr("viewer.replies.RETRY_SAVE_S", 0.05)
    path = tmp_path / "locked.db"
    store = Store(path)  # the default 10 s wait for a lock: background saves must not use it
    try:
        with ReplayServer(speed=200).start() as server:
            service = ReplyService(store)
            reply = service.start(target(server, "demo-long"), prompt="Count them all.")
            with write_locked(path):  # another program holds the write lock
                assert not reply.done.is_set(), "the lock was taken while the reply streams"
                assert reply.wait(30), "the stream finished although nothing could be saved"
                assert reply.final is not None and reply.final.status == "done"
                assert wait_until(lambda: reply.save_problem is not None and "delayed" in reply.save_problem)
                assert not reply.saved.is_set()
                # A page reading meanwhile (another tab, the sidebar) is never held for the store's timeout
                # by the saver's retries: each background attempt waits SAVE_WAIT_S at most.
                for _ in range(5):
                    began = time.monotonic()
                    assert store.get_conversation(reply.conversation_id) is not None
                    assert time.monotonic() - began < 3.0
            assert reply.saved.wait(10) and reply.save_problem is None
        conv = store.get_conversation(reply.conversation_id)
        assert conv is not None and conv.messages[-1].turn == reply.final
    finally:
        store.close()


def test_the_service_forgets_old_finished_replies_but_never_a_running_one(
    store: Store, replay_server: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("viewer.replies.KEEP_FINISHED", 2)
    service = ReplyService(store)
    replies = []
    for i in range(4):
        reply = service.start(target(replay_server, "demo-v3"), prompt=f"Question {i}?")
        assert reply.wait(30) and reply.saved.wait(30)
        replies.append(reply)
    held = [r.conversation_id for r in replies if service.get(r.conversation_id) is r]
    assert held == [r.conversation_id for r in replies[-3:]]  # two finished kept, plus the newest just started
    assert all(store.get_conversation(r.conversation_id) is not None for r in replies)


def test_step_titles_by_a_model_are_saved_with_the_turn_after_the_stream(
    store: Store, replay_server: ReplayServer
) -> None:
    from viewer.demo.replay import TITLER_MODEL
    from viewer.titler import TitlerSettings

    service = ReplyService(store)
    chosen = target(replay_server, "demo-r1")
    chosen.titler = TitlerSettings(base_url=replay_server.base_url, model=TITLER_MODEL, api_key_env=None)
    reply = service.start(chosen, prompt="Tell me one truly novel insight about humans.")
    assert reply.wait(30)

    def stored_titles() -> dict[str, str]:
        conv = store.get_conversation(reply.conversation_id)
        turn = conv.messages[-1].turn if conv is not None else None
        return turn.step_titles if turn is not None else {}

    def every_step_titled_and_saved() -> bool:
        # `reply.final` is replaced once the titler is idle: titles that came in during the stream are in the
        # first final turn, the rest only in the second (comparing with the first was a race, seen under load).
        final = reply.final
        return (
            final is not None
            and len(final.step_titles) == len(final.outline) >= 2
            and stored_titles() == final.step_titles
        )

    assert wait_until(every_step_titled_and_saved, timeout=30)
    final = reply.final
    assert final is not None and set(final.step_titles) == {str(step.start) for step in final.outline}


class FullStore(Store):
    """A real store whose progress saves report a full disk (counted)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.attempts = 0

    def save_turn_progress(self, *args, **kwargs):  # type: ignore[override]
        from viewer.store import StoreError

        self.attempts += 1
        raise StoreError("database or disk is full", kind="full", path=self.path)


def test_a_failing_progress_save_is_retried_a_period_later_not_at_every_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("viewer.replies.SAVE_EVERY_S", 0.2)
    store = FullStore(tmp_path / "full.db")
    try:
        with ReplayServer(speed=100).start() as server:  # the 232 s trace in about 2.3 s: many reads
            reply = ReplyService(store).start(target(server, "demo-long"), prompt="Count them all.")
            began = time.monotonic()
            assert reply.wait(30)
            took = time.monotonic() - began
        assert reply.final is not None and len(reply.log) > 100
        assert 1 <= store.attempts <= took / 0.2 + 3, f"{store.attempts} attempts in {took:.1f} s"
    finally:
        store.close()


def test_the_savers_final_save_never_brings_back_a_deleted_reply(store: Store) -> None:
    """Regenerate deletes the old reply while its saver may still save it (titles, a retry): update only."""
    from viewer.models import AssistantTurn, Message
    from viewer.store import UnknownConversation

    conv = store.create_conversation()
    store.add_message(conv.id, Message(role="user", content="q"))
    old = Message(role="assistant", turn=AssistantTurn(answer="old"))
    store.add_message(conv.id, old)
    store.delete_messages_from(conv.id, old.id)
    with pytest.raises(UnknownConversation):
        store.save_turn(conv.id, old.id, AssistantTurn(answer="old, titled"), insert_missing=False)
    again = store.get_conversation(conv.id)
    assert again is not None and [m.role for m in again.messages] == ["user"]


def test_only_a_model_s_first_plain_reply_is_flagged_as_maybe_reasoning(
    store: Store, replay_server: ReplayServer
) -> None:
    """Every plain answer starts provisional (it may be a pre-filled trace); once a model has ended a reply
    without reasoning, its replies are not flagged; a model that pre-fills is never remembered as plain."""
    service = ReplyService(store)
    base = replay_server.base_url
    first = service.start(target(replay_server, "demo-v3"), prompt=PROMPT)
    assert not first.answers_plainly
    assert first.wait(15)
    assert not first.answer_may_be_reasoning()  # settled as answer when the stream ended, with no event
    assert wait_until(lambda: service.answers_plainly(base, "demo-v3"))
    second = service.start(target(replay_server, "demo-v3"), conversation_id=first.conversation_id, prompt="Again.")
    assert second.answers_plainly and not second.answer_may_be_reasoning()
    assert second.wait(15)

    prefilled = service.start(target(replay_server, "demo-r1-prefilled"), prompt="Is 391 prime?")
    assert prefilled.wait(15)
    assert wait_until(lambda: service.prefills_opener(base, "demo-r1-prefilled"))
    assert not service.answers_plainly(base, "demo-r1-prefilled")


def test_a_reply_cut_by_its_budget_or_a_reasoning_field_is_not_remembered_as_plain(
    store: Store, replay_server: ReplayServer
) -> None:
    """Variants of the kind: a reply that ran out of tokens (finish "length") may be a pre-filled trace cut
    short; one whose server sends a reasoning field (the splitter settles the content as answer, rule 2)
    reasons. Neither makes a model "plain"; the field reply's answer is settled at once."""
    from viewer.reasoning import ReasoningSplitter

    service = ReplyService(store)
    base = replay_server.base_url
    cut = service.start(target(replay_server, "demo-v3", max_tokens=5), prompt=PROMPT)
    assert cut.wait(15) and cut.final is not None and cut.final.finish_reason == "length"
    field = service.start(target(replay_server, "demo-qwen3-field"), prompt=PROMPT)
    assert field.wait(15) and field.final is not None and field.final.reasoning
    assert not cut._answered_plainly(cut.final) and not field._answered_plainly(field.final)
    whole = service.start(target(replay_server, "demo-v3"), prompt=PROMPT)  # the same model, whole: plain
    assert whole.wait(15) and whole.final is not None and whole._answered_plainly(whole.final)
    assert wait_until(lambda: service.answers_plainly(base, "demo-v3"))
    assert not service.answers_plainly(base, "demo-qwen3-field")

    splitter = ReasoningSplitter()
    splitter.feed(content="Let me see")
    assert splitter.provisional
    splitter.feed(reasoning="thinking…")  # a reasoning field: the content so far was answer after all
    assert not splitter.provisional
