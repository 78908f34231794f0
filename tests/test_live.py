"""Background turns: they save while streaming, stop at once, and can be watched piece by piece."""

from __future__ import annotations

import time

import pytest

from viewer.client import ChatClient
from viewer.live import LiveRegistry, LiveTurn
from viewer.models import AssistantTurn, Message
from viewer.store import Store


def wait_until(predicate, timeout: float = 10.0) -> bool:
    """Poll a condition with a deadline: a wait for a fact, never a fixed sleep."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "live.db")
    yield s
    s.close()


def _live(store: Store, server, model: str, prompt: str = "Is 221 prime?") -> LiveTurn:
    conv = store.create_conversation()
    store.add_message(conv.id, Message(role="user", content=prompt))
    assistant = Message(role="assistant", turn=AssistantTurn())
    store.add_message(conv.id, assistant)
    client = ChatClient(server.base_url, api_key_env=None)
    request = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    return LiveTurn(conversation_id=conv.id, message_id=assistant.id, client=client, request=request, store=store)


def test_finished_turn_is_saved(store, replay_server):
    live = _live(store, replay_server, "demo-r1").start()
    assert live.wait(30)
    saved = store.get_conversation(live.conversation_id).messages[-1].turn
    assert saved.status == "done"
    assert saved.reasoning == live.final.reasoning and saved.answer == live.final.answer
    assert saved.reasoning and saved.answer


def test_watcher_sees_every_piece_once(store, replay_server):
    live = _live(store, replay_server, "demo-r1-prefilled").start()
    reasoning, answer = [], []
    r = a = gen = 0
    while True:
        done = live.done.wait(0.01)
        view, new_gen = live.view(r, a, gen)
        r += len(view.reasoning_new)
        reasoning.extend(view.reasoning_new)
        if view.answer_reset:
            answer, a, gen = [], 0, new_gen
        a += len(view.answer_new)
        answer.extend(view.answer_new)
        if done:
            break
    final = live.final
    assert "".join(reasoning).strip() == final.reasoning.strip()
    assert "".join(answer) == final.answer


def test_stop_closes_the_connection_and_keeps_the_partial(store):
    from viewer.replay import ReplayServer

    with ReplayServer(speed=0.2) as server:
        live = _live(store, server, "demo-long").start()
        assert wait_until(lambda: len(live.reasoning_parts) > 3)
        live.stop()
        assert live.wait(10)
        assert wait_until(lambda: any(r.aborted for r in server.requests))
    saved = store.get_conversation(live.conversation_id).messages[-1].turn
    assert saved.stopped and saved.status == "stopped"
    assert saved.reasoning


def test_partial_turn_is_saved_while_streaming(store):
    from viewer.replay import ReplayServer

    with ReplayServer(speed=0.2) as server:
        live = _live(store, server, "demo-long")
        live.start()
        assert wait_until(lambda: len(live.reasoning_parts) > 0)
        live._save()  # the periodic save, triggered now instead of after SAVE_EVERY_S
        saved = store.get_conversation(live.conversation_id).messages[-1].turn
        assert saved.status == "streaming" and saved.reasoning
        live.stop()
        live.wait(10)


def test_registry_refuses_two_replies_at_once(store):
    from viewer.replay import ReplayServer

    with ReplayServer(speed=0.2) as server:
        registry = LiveRegistry()
        first = registry.start(_live(store, server, "demo-long"))
        second = LiveTurn(
            conversation_id=first.conversation_id,
            message_id="x",
            client=first.client,
            request=first.request,
            store=store,
        )
        with pytest.raises(RuntimeError):
            registry.start(second)
        assert registry.running(first.conversation_id) is first
        first.stop()
        first.wait(10)
        assert registry.running(first.conversation_id) is None


def test_a_turn_that_cannot_be_saved_still_ends_and_says_why(store):
    """Deleting the conversation mid-stream makes the final save fail; watchers must not wait forever."""
    from viewer.replay import ReplayServer

    with ReplayServer(speed=0.2) as server:
        live = _live(store, server, "demo-long").start()
        assert wait_until(lambda: len(live.reasoning_parts) > 0)
        store.delete_conversation(live.conversation_id)
        live.stop()
        assert live.wait(10), "the turn must end even though it cannot be saved"
    assert live.save_error and "could not be saved" in live.save_error
