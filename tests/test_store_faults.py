"""Faults of the history file itself (issue 11, items 5-7), on real SQLite files in temp dirs.

Read-only, garbage and damaged files open degraded (what can be read is readable, new chats work in memory)
and are never modified by the attempt; a full disk or a locked file gives a typed `StoreError` on writes,
and saving works again once the fault is gone.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.storage_faults import PAGE_SIZE, corrupt_page, digest, full_disk, garbage_file, write_locked
from tests.test_app import (  # noqa: F401  (db_path and server are fixtures)
    MULTIPLY,
    assistant_bubbles,
    choose_model,
    db_path,
    finished_turn,
    new_app,
    run,
    send,
    wait_until,
)
from viewer.demo.replay import ReplayServer
from viewer.models import AssistantTurn, Message
from viewer.store import Store, StoreError

MARKER = "MARKER-{:03d}-"


def _fill(path: Path, n: int = 30) -> list[str]:
    """n conversations, each a prompt and a 3000-character answer carrying a findable marker."""
    ids = []
    with Store(path) as s:
        for i in range(n):
            conv = s.create_conversation()
            s.add_message(conv.id, Message(role="user", content=f"question {i}"))
            s.add_message(conv.id, Message(role="assistant", turn=AssistantTurn(answer=MARKER.format(i) * 250)))
            ids.append(conv.id)
    return ids


def _page_of(path: Path, text: str) -> int:
    at = path.read_bytes().find(text.encode())
    assert at >= 0, f"{text!r} is not in {path}"
    return at // PAGE_SIZE + 1


# -- garbage --------------------------------------------------------------------------------------------


def test_a_garbage_file_opens_empty_names_the_file_and_is_not_touched(tmp_path: Path) -> None:
    path = tmp_path / "conversations.db"
    garbage_file(path)
    before = digest(path)
    store = Store(path)
    assert store.problem is not None and store.problem.kind == "not_a_database"
    assert str(path) in str(store.problem)
    assert store.list_conversations() == []
    conv = store.create_conversation()  # works, in memory
    store.add_message(conv.id, Message(role="user", content="kept on screen"))
    store.close()
    assert digest(path) == before


def test_start_fresh_keeps_the_damaged_file_beside_and_carries_new_chats_over(tmp_path: Path) -> None:
    path = tmp_path / "conversations.db"
    garbage_file(path)
    before = digest(path)
    with Store(path) as store:
        conv = store.create_conversation(title="made while damaged")
        aside = store.start_fresh()
        assert store.problem is None
        assert aside.parent == path.parent and aside.name.startswith("conversations.db.damaged-")
        assert digest(aside) == before
        assert [c.title for c in store.list_conversations()] == ["made while damaged"]
    with Store(path) as again:
        assert again.problem is None and again.get_conversation(conv.id) is not None


# -- read-only ------------------------------------------------------------------------------------------


def test_a_read_only_file_reads_old_chats_and_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "conversations.db"
    ids = _fill(path, 3)
    before = digest(path)
    store = Store(path, read_only=True)
    assert store.problem is not None and store.problem.kind == "readonly" and str(path) in str(store.problem)
    assert not store.saves_to_file
    assert {c.id for c in store.list_conversations()} == set(ids)
    old = store.get_conversation(ids[0])
    assert old is not None and old.messages[1].turn is not None
    new = store.create_conversation()
    store.add_message(new.id, Message(role="user", content="not saved, still shown"))
    assert len(store.list_conversations()) == 4
    store.close()
    assert digest(path) == before
    with Store(path) as again:
        assert len(again.list_conversations()) == 3


# -- a damaged page -------------------------------------------------------------------------------------


def test_a_damaged_page_loses_only_what_was_on_it(tmp_path: Path) -> None:
    path = tmp_path / "conversations.db"
    ids = _fill(path)
    corrupt_page(path, _page_of(path, MARKER.format(17)))
    before = digest(path)
    store = Store(path)
    readable = 0
    for conv_id in ids:
        conv = store.get_conversation(conv_id)  # never raises: what is readable comes back
        assert conv is not None
        readable += sum(1 for m in conv.messages if m.turn is not None and m.turn.answer.startswith("MARKER"))
    assert 20 <= readable < 30, readable
    assert store.problem is not None and store.problem.kind == "corrupt" and str(path) in str(store.problem)
    assert len(store.list_conversations()) == 30
    try:
        hits = store.search("question")
    except StoreError as exc:  # a typed error, never a raw sqlite3 one
        assert exc.kind == "corrupt"
    else:
        assert hits
    conv = store.create_conversation()  # a new chat still works, in memory
    store.add_message(conv.id, Message(role="user", content="hello"))
    store.close()
    assert digest(path) == before, "the damaged file is never modified"


def test_start_fresh_after_damage_carries_the_readable_chats(tmp_path: Path) -> None:
    path = tmp_path / "conversations.db"
    ids = _fill(path, 12)
    corrupt_page(path, _page_of(path, MARKER.format(5)))
    before = digest(path)
    with Store(path) as store:
        for conv_id in ids:
            store.get_conversation(conv_id)
        assert store.problem is not None
        aside = store.start_fresh()
        assert digest(aside) == before
    with Store(path) as fresh:
        assert fresh.problem is None
        assert len(fresh.list_conversations()) == 12
        assert fresh.search("MARKER-011")


# -- full disk and locked file (the store side of items 6 and 7) -------------------------------------


def test_a_full_disk_raises_full_and_saving_resumes_when_space_returns(tmp_path: Path) -> None:
    path = tmp_path / "conversations.db"
    with Store(path) as store:
        conv = store.create_conversation()
        msg = Message(role="assistant", turn=AssistantTurn(answer="first part"))
        store.add_message(conv.id, msg)
        big = AssistantTurn(answer="x" * 200_000)
        with full_disk(store):
            with pytest.raises(StoreError) as caught:
                store.save_turn(conv.id, msg.id, big)
            assert caught.value.kind == "full" and str(path) in str(caught.value)
            with pytest.raises(StoreError) as caught:
                store.add_message(conv.id, Message(role="user", content="y" * 100_000))
            assert caught.value.kind == "full"
            saved = store.get_conversation(conv.id)
            assert saved is not None and saved.messages[0].turn is not None
            assert saved.messages[0].turn.answer == "first part", "the last saved state is intact"
        assert store.problem is None, "a full disk is not a damaged file"
        store.save_turn(conv.id, msg.id, big)
        again = store.get_conversation(conv.id)
        assert again is not None and again.messages[0].turn is not None
        assert len(again.messages[0].turn.answer) == 200_000


def test_a_locked_file_raises_locked_and_saving_resumes_after(tmp_path: Path) -> None:
    path = tmp_path / "conversations.db"
    with Store(path) as first:
        conv = first.create_conversation()
        msg = Message(role="assistant", turn=AssistantTurn(answer="a"))
        first.add_message(conv.id, msg)
    with Store(path, timeout_s=0.05) as store:
        with write_locked(path):
            with pytest.raises(StoreError) as caught:
                store.save_turn(conv.id, msg.id, AssistantTurn(answer="ab"))
            assert caught.value.kind == "locked"
            with pytest.raises(StoreError) as caught:
                store.create_conversation()
            assert caught.value.kind == "locked"
        store.save_turn(conv.id, msg.id, AssistantTurn(answer="abc"))
        saved = store.get_conversation(conv.id)
        assert saved is not None and saved.messages[0].turn is not None and saved.messages[0].turn.answer == "abc"


# -- the app: one banner, never a traceback ------------------------------------------------------------


@pytest.mark.parametrize("fault", ["garbage", "damaged"])
def test_the_app_shows_one_banner_and_still_answers(
    fault: str,
    db_path: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if fault == "garbage":
        garbage_file(db_path)
    else:
        ids = _fill(db_path, 12)
        corrupt_page(db_path, _page_of(db_path, MARKER.format(3)))
    before = digest(db_path)
    srv = ReplayServer(speed=0).start()
    try:
        monkeypatch.setenv("REASONING_VIEWER_BASE_URL", srv.base_url)
        monkeypatch.setenv("REASONING_VIEWER_MODEL", "demo-r1")
        at = new_app()  # fails on any exception the page rendered
        if fault == "damaged":
            for conv_id in ids:  # open every chat, the damaged one included
                at.query_params["c"] = conv_id
                run(at)
        banners = [e.value for e in at.main.error if str(db_path.name) in e.value]
        assert len(banners) == 1, [e.value for e in at.main.error]
        send(at, MULTIPLY)
        wait_until(at, lambda: any("391" in m.value for b in assistant_bubbles(at) for m in b.markdown), "the reply")
        assert digest(db_path) == before, "nothing was written to the damaged file"
        [fresh] = [b for b in at.main.button if b.label.startswith("Start a fresh history file")]
        fresh.click()
        run(at)
        assert not [e.value for e in at.main.error if db_path.name in e.value], "the banner is gone"
        [moved] = [i.value for i in at.main.info if "damaged one is kept as" in i.value]
        [aside] = [p for p in db_path.parent.glob(db_path.name + ".damaged-*") if not p.name.endswith(("-wal", "-shm"))]
        assert aside.name in moved and digest(aside) == before
        with Store(db_path) as again:  # the new file holds the chat made while the old one was damaged
            assert again.problem is None and again.search("17 × 23")
    finally:
        srv.stop()


def test_a_file_that_cannot_be_created_opens_in_memory_and_says_so(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the history's folder should be")
    with Store(blocker / "sub" / "conversations.db") as store:
        assert store.problem is not None and store.problem.kind == "io"
        assert "not-a-folder" in str(store.problem)
        conv = store.create_conversation()
        assert store.get_conversation(conv.id) is not None


def test_a_reply_the_full_disk_refused_stays_on_screen_whole_and_exports_from_memory(
    db_path: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 11, item 6: the disk fills up while a reply streams: the page keeps the whole reply (from the
    reply service's memory), says once that it could not be saved, the export still has it, and saving
    resumes when space returns."""

    monkeypatch.setattr("viewer.replies.RETRY_SAVE_S", 0.05)
    server = ReplayServer(speed=0).start()
    monkeypatch.setenv("REASONING_VIEWER_BASE_URL", server.base_url)
    store = Store(db_path)
    try:
        _reply_refused_by_a_full_disk(store)
    finally:
        store.close()
        server.stop()


def _reply_refused_by_a_full_disk(store: Store) -> None:
    from viewer.export import to_json
    from viewer.ui import context

    at = new_app()
    choose_model(at, "demo-long")
    send(at, "Count them all.")  # the first reply: the conversation's rows exist before the disk fills
    conv_id = finished_turn(at, store)[0].id
    app_store = context.get_store()
    with full_disk(app_store):
        send(at, "Count them all again.")  # a follow-up: its prompt fits, its 66k-character reply does not
        reply = context.get_service().get(conv_id)
        assert reply is not None and reply.wait(30)
        assert reply.final is not None and len(reply.final.reasoning) > 50_000
        deadline_reached = not _wait(lambda: reply.save_problem is not None)
        assert not deadline_reached
        run(at)
        warnings = " ".join(w.value for w in at.main.warning)
        assert "could not be saved" in warnings and "disk full" in warnings
        assert reply.final.answer.strip()[:40] in " ".join(m.value for m in at.main.markdown)
        on_disk = app_store.get_conversation(conv_id)
        assert on_disk is not None
        exported = to_json(context.get_service().overlay(on_disk))  # what the sidebar's export is given
        assert reply.final.answer.strip()[:40] in exported
    assert reply.saved.wait(10)  # space is back: the retry went through
    saved = store.get_conversation(conv_id)
    assert saved is not None and saved.messages[-1].turn is not None
    assert saved.messages[-1].turn.reasoning == reply.final.reasoning


def _wait(condition, timeout: float = 15.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
