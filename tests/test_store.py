"""Tests for viewer.store against real SQLite files in tmp_path."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from viewer import store as store_mod
from viewer.models import AssistantTurn, Conversation, ErrorInfo, Message, Timings, Usage
from viewer.store import (
    LATEST_VERSION,
    MIGRATIONS,
    SNIPPET_MAX_CHARS,
    Store,
    StoreError,
    UnknownConversation,
    default_db_path,
)

FAKE_KEY = "sk-fake-0123456789abcdefDO-NOT-STORE"

# What a schema-version-1 file looks like on disk. A literal copy on purpose: shipped migration steps must
# never change, and this catches it if someone edits MIGRATIONS[0] instead of appending a step.
V1_SCHEMA = """
CREATE TABLE conversations (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    endpoint TEXT, model TEXT, system_prompt TEXT
);
CREATE TABLE messages (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    id TEXT NOT NULL, position INTEGER NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content TEXT NOT NULL DEFAULT '', turn_json TEXT, created_at TEXT NOT NULL,
    PRIMARY KEY (conversation_id, id), UNIQUE (conversation_id, position)
);
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
PRAGMA user_version = 1;
"""


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "nested" / "dir" / "conversations.db"


@pytest.fixture
def store(db_path: Path):
    s = Store(db_path)
    yield s
    s.close()


def _turn(**kw) -> AssistantTurn:
    base = dict(
        reasoning="Let me think about the ocean.",
        answer="The sea is blue.",
        model="qwen3-8b",
        status="done",
        finish_reason="stop",
        timings=Timings(first_byte=0.1, reasoning_start=0.2, reasoning_end=3.4, answer_start=3.5, end=4.0),
        usage=Usage(prompt_tokens=10, reasoning_tokens=20, answer_tokens=5, total_tokens=35, approximate=False),
        request_params={"model": "qwen3-8b", "temperature": 0.6},
    )
    base.update(kw)
    return AssistantTurn(**base)


def _raw(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(path), isolation_level=None)


# -- location -------------------------------------------------------------------------------------------


def test_default_db_path_per_platform() -> None:
    home = "/home/ann"
    assert default_db_path("linux", {"HOME": home}) == Path("/home/ann/.local/share/reasoning-viewer/conversations.db")
    assert default_db_path("linux", {"HOME": home, "XDG_DATA_HOME": "/data"}) == Path(
        "/data/reasoning-viewer/conversations.db"
    )
    # A relative XDG_DATA_HOME is invalid per the spec and ignored.
    assert default_db_path("linux", {"HOME": home, "XDG_DATA_HOME": "rel"}) == Path(
        "/home/ann/.local/share/reasoning-viewer/conversations.db"
    )
    assert default_db_path("darwin", {"HOME": home}) == Path(
        "/home/ann/Library/Application Support/reasoning-viewer/conversations.db"
    )
    assert default_db_path("win32", {"USERPROFILE": "C:/Users/ann", "APPDATA": "C:/Users/ann/AppData/Roaming"}) == (
        Path("C:/Users/ann/AppData/Roaming/reasoning-viewer/conversations.db")
    )
    assert default_db_path("linux", {"HOME": home, "REASONING_VIEWER_DB": "/tmp/x.db"}) == Path("/tmp/x.db")


def test_env_var_overrides_location_and_dirs_are_created(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "a" / "b" / "hist.db"
    monkeypatch.setenv("REASONING_VIEWER_DB", str(target))
    with Store() as s:
        s.create_conversation("x")
    assert target.is_file()


# -- conversations ----------------------------------------------------------------------------------------


def test_create_get_list_order(store: Store) -> None:
    a = store.create_conversation("A", endpoint="local", model="m1", system_prompt="Be brief.")
    b = store.create_conversation("B")
    c = store.create_conversation()
    got = store.get_conversation(a.id)
    assert got == a
    assert (got.endpoint, got.model, got.system_prompt) == ("local", "m1", "Be brief.")
    assert c.title == "New chat"
    assert [s.id for s in store.list_conversations()] == [c.id, b.id, a.id]
    # Touching the oldest moves it to the top.
    store.add_message(a.id, Message(role="user", content="hello"))
    rows = store.list_conversations()
    assert [s.id for s in rows] == [a.id, c.id, b.id]
    assert [s.message_count for s in rows] == [1, 0, 0]
    assert rows[0].updated_at > rows[1].updated_at
    assert [s.id for s in store.list_conversations(limit=2)] == [a.id, c.id]
    assert store.get_conversation("nope") is None


def test_rename_and_delete(store: Store, db_path: Path) -> None:
    conv = store.create_conversation()
    store.add_message(conv.id, Message(role="user", content="q"))
    store.rename_conversation(conv.id, "Renamed ✓")
    assert store.get_conversation(conv.id).title == "Renamed ✓"
    with pytest.raises(UnknownConversation):
        store.rename_conversation("missing", "x")
    store.delete_conversation(conv.id)
    store.delete_conversation(conv.id)  # idempotent
    assert store.get_conversation(conv.id) is None
    assert store.list_conversations() == []
    raw = _raw(db_path)
    assert raw.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0  # cascaded
    raw.close()


def test_update_conversation(store: Store) -> None:
    conv = store.create_conversation(model="a")
    store.update_conversation(conv.id, model="b", system_prompt="sys")
    got = store.get_conversation(conv.id)
    assert (got.model, got.system_prompt, got.endpoint) == ("b", "sys", None)
    assert got.updated_at > conv.updated_at
    with pytest.raises(UnknownConversation):
        store.update_conversation("missing", model="x")


# -- messages ---------------------------------------------------------------------------------------------


def test_add_message_order_and_title(store: Store) -> None:
    conv = store.create_conversation()
    long_line = "Explain " + "very " * 30 + "carefully"
    m1 = Message(role="user", content=f"\n  {long_line}\nsecond line")
    m2 = Message(role="assistant", turn=_turn())
    m3 = Message(role="user", content="A later question")
    for m in (m1, m2, m3):
        store.add_message(conv.id, m)
    got = store.get_conversation(conv.id)
    assert got.messages == [m1, m2, m3]
    assert len(got.title) == 60 and got.title.endswith("…") and got.title.startswith("Explain very")
    with pytest.raises(UnknownConversation):
        store.add_message("missing", Message(role="user", content="x"))


def test_title_not_overwritten_when_set(store: Store) -> None:
    conv = store.create_conversation("My title")
    store.add_message(conv.id, Message(role="user", content="hello there"))
    assert store.get_conversation(conv.id).title == "My title"
    blank = store.create_conversation()
    store.add_message(blank.id, Message(role="user", content="   \n  "))
    store.add_message(blank.id, Message(role="user", content="Real question"))
    assert store.get_conversation(blank.id).title == "Real question"


def test_save_turn_upserts_while_streaming(store: Store, db_path: Path) -> None:
    conv = store.create_conversation()
    store.add_message(conv.id, Message(role="user", content="why?"))
    turn = AssistantTurn(model="m")
    msg = Message(role="assistant", turn=turn)
    store.add_message(conv.id, msg)
    reasoning = ""
    for i in range(5):
        reasoning += f"step {i}. "
        turn = turn.model_copy(update={"reasoning": reasoning})
        store.save_turn(conv.id, msg.id, turn)
        assert store.get_conversation(conv.id).messages[1].turn.reasoning == reasoning
    final = turn.model_copy(update={"answer": "because", "status": "done", "finish_reason": "stop"})
    store.save_turn(conv.id, msg.id, final)
    store.save_turn(conv.id, msg.id, final)  # idempotent
    got = store.get_conversation(conv.id)
    assert len(got.messages) == 2
    assert got.messages[1].turn == final
    assert got.messages[1].id == msg.id
    raw = _raw(db_path)
    assert raw.execute("SELECT reasoning, answer FROM messages WHERE id = ?", (msg.id,)).fetchone() == (
        reasoning,
        "because",
    )
    raw.close()


def test_save_turn_for_unknown_message_appends_it(store: Store) -> None:
    conv = store.create_conversation()
    store.add_message(conv.id, Message(role="user", content="q"))
    turn = _turn()
    store.save_turn(conv.id, "fresh-id", turn)
    got = store.get_conversation(conv.id)
    assert [(m.id, m.role) for m in got.messages][1] == ("fresh-id", "assistant")
    assert got.messages[1].turn == turn


def test_delete_messages_from(store: Store) -> None:
    conv = store.create_conversation()
    msgs = [
        Message(role="user", content="q1"),
        Message(role="assistant", turn=_turn(answer="a1")),
        Message(role="user", content="q2"),
        Message(role="assistant", turn=_turn(answer="a2")),
    ]
    for m in msgs:
        store.add_message(conv.id, m)
    assert store.delete_messages_from(conv.id, msgs[1].id) == 3
    assert store.get_conversation(conv.id).messages == msgs[:1]
    assert store.delete_messages_from(conv.id, "unknown") == 0
    # Positions continue after the deletion point: a regenerated reply lands after the kept prompt.
    again = Message(role="assistant", turn=_turn(answer="a1 again"))
    store.add_message(conv.id, again)
    assert store.get_conversation(conv.id).messages == [msgs[0], again]


def test_threads_sharing_one_store(store: Store) -> None:
    conv = store.create_conversation()
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(25):
                store.add_message(conv.id, Message(role="user", content=f"t{n}-{i}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    contents = [m.content for m in store.get_conversation(conv.id).messages]
    assert sorted(contents) == sorted(f"t{n}-{i}" for n in range(4) for i in range(25))
    for n in range(4):  # each thread's messages stay in its own order
        mine = [c for c in contents if c.startswith(f"t{n}-")]
        assert mine == [f"t{n}-{i}" for i in range(25)]


# -- search -----------------------------------------------------------------------------------------------


def test_search_each_field_with_snippet(store: Store) -> None:
    conv = store.create_conversation()
    prompt = Message(role="user", content="What colour is the OCEAN on Mars?")
    filler = "lorem ipsum " * 40
    turn = _turn(reasoning=f"{filler}\nthe needle is\n here {filler}", answer="Mars has no Ocean today.")
    reply = Message(role="assistant", turn=turn)
    store.add_message(conv.id, prompt)
    store.add_message(conv.id, reply)

    hits = store.search("ocean")
    assert [(h.field, h.message_id) for h in hits] == [("prompt", prompt.id), ("answer", reply.id)]
    assert hits[0].conversation_id == conv.id and hits[0].title == "What colour is the OCEAN on Mars?"
    assert hits[0].snippet == "What colour is the OCEAN on Mars?"

    (hit,) = store.search("NEEDLE")  # case-insensitive
    assert hit.field == "reasoning"
    assert "the needle is here" in hit.snippet  # whitespace folded to one line for display
    assert len(hit.snippet) <= SNIPPET_MAX_CHARS
    assert hit.snippet.startswith("…") and hit.snippet.endswith("…")
    assert "\n" not in hit.snippet
    assert store.search("nothing like this") == []
    assert store.search("   ") == []


def test_search_escapes_like_wildcards(store: Store) -> None:
    conv = store.create_conversation()
    store.add_message(conv.id, Message(role="user", content="growth was 50% in Q1"))
    store.add_message(conv.id, Message(role="user", content="growth was 50 points"))
    store.add_message(conv.id, Message(role="user", content="call snake_case here"))
    store.add_message(conv.id, Message(role="user", content="call snakeXcase here"))
    store.add_message(conv.id, Message(role="user", content=r"path C:\temp"))
    assert [h.snippet for h in store.search("50%")] == ["growth was 50% in Q1"]
    assert [h.snippet for h in store.search("snake_case")] == ["call snake_case here"]
    assert [h.snippet for h in store.search("%")] == ["growth was 50% in Q1"]
    assert [h.snippet for h in store.search("_")] == ["call snake_case here"]
    assert [h.snippet for h in store.search("c:\\TEMP")] == [r"path C:\temp"]


def test_search_non_ascii_is_case_insensitive(store: Store) -> None:
    conv = store.create_conversation()
    store.add_message(conv.id, Message(role="user", content="Ünïcode ÉTÉ Привет"))
    assert len(store.search("été")) == 1
    assert len(store.search("привет")) == 1
    assert store.search("ünïcode")[0].field == "prompt"
    assert store.search("зима") == []


def test_search_limit_and_newest_first(store: Store) -> None:
    ids = []
    for i in range(5):
        conv = store.create_conversation()
        store.add_message(conv.id, Message(role="user", content=f"common word {i}"))
        ids.append(conv.id)
    hits = store.search("common", limit=3)
    assert [h.conversation_id for h in hits] == ids[::-1][:3]


# -- schema -----------------------------------------------------------------------------------------------


def test_migrations_are_ordered() -> None:
    versions = [v for v, _ in MIGRATIONS]
    assert versions == sorted(set(versions)) and versions[0] == 1 and versions[-1] == LATEST_VERSION


def test_fresh_database_is_at_latest_version_in_wal(store: Store, db_path: Path) -> None:
    assert store.schema_version == LATEST_VERSION
    raw = _raw(db_path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent, seen by other connections
    assert raw.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
    raw.close()
    assert store._conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_upgrade_from_v1(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    turn = _turn(reasoning="old reasoning about kelp", answer="old answer about tides")
    raw = _raw(db_path)
    raw.executescript(V1_SCHEMA)
    raw.execute(
        "INSERT INTO conversations VALUES ('c1', 'Old chat', ?, ?, NULL, 'm', NULL)",
        ("2024-01-02T03:04:05.000000+00:00", "2024-01-02T03:04:06.000000+00:00"),
    )
    rows = [
        ("c1", "u1", 0, "user", "a question about seaweed", None),
        ("c1", "a1", 1, "assistant", "", turn.model_dump_json()),
        ("c1", "a2", 2, "assistant", "legacy plain answer about reefs", None),
    ]
    raw.executemany("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?, '2024-01-02T03:04:05.000000+00:00')", rows)
    raw.close()

    with Store(db_path) as s:
        assert s.schema_version == LATEST_VERSION
        conv = s.get_conversation("c1")
        assert conv.title == "Old chat"
        assert conv.created_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
        assert [m.id for m in conv.messages] == ["u1", "a1", "a2"]
        assert conv.messages[1].turn == turn
        # Backfilled denormalised columns make old turns searchable.
        assert [(h.message_id, h.field) for h in s.search("kelp")] == [("a1", "reasoning")]
        assert [(h.message_id, h.field) for h in s.search("tides")] == [("a1", "answer")]
        assert [(h.message_id, h.field) for h in s.search("reefs")] == [("a2", "answer")]
        assert [(h.message_id, h.field) for h in s.search("seaweed")] == [("u1", "prompt")]
        # And the upgraded file keeps working for new writes.
        s.add_message("c1", Message(role="user", content="new"))
        assert len(s.get_conversation("c1").messages) == 4
    raw = _raw(db_path)
    names = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    raw.close()
    assert "conversations_by_updated" in names


def test_failed_migration_rolls_back(db_path: Path, monkeypatch) -> None:
    Store(db_path).close()
    bad = (LATEST_VERSION + 1, "CREATE TABLE half_done (a TEXT);\nINSERT INTO no_such_table VALUES (1);")
    monkeypatch.setattr(store_mod, "MIGRATIONS", (*MIGRATIONS, bad))
    with pytest.raises(sqlite3.OperationalError, match="no_such_table"):
        Store(db_path)
    raw = _raw(db_path)
    assert raw.execute("PRAGMA user_version").fetchone()[0] == LATEST_VERSION
    assert raw.execute("SELECT COUNT(*) FROM sqlite_master WHERE name = 'half_done'").fetchone()[0] == 0
    raw.close()


def test_newer_schema_is_refused(db_path: Path) -> None:
    Store(db_path).close()
    raw = _raw(db_path)
    raw.execute(f"PRAGMA user_version = {LATEST_VERSION + 7}")
    raw.close()
    with pytest.raises(StoreError, match="newer"):
        Store(db_path)


# -- concurrency ------------------------------------------------------------------------------------------


def test_writer_thread_saves_while_other_connections_read(db_path: Path) -> None:
    writer = Store(db_path, timeout_s=2.0)
    conv = writer.create_conversation()
    msg = Message(role="assistant", turn=AssistantTurn())
    writer.add_message(conv.id, msg)
    reader = Store(db_path)

    # A reader holding an open read transaction. In rollback-journal mode the writer could not commit
    # until it ends (and would fail after its timeout); in WAL mode it writes on and the reader keeps its
    # snapshot.
    snapshot = _raw(db_path)
    snapshot.execute("BEGIN")
    assert snapshot.execute("SELECT answer FROM messages").fetchone() == ("",)

    chunks = [f"token{i} " for i in range(200)]
    final_answer = "".join(chunks)
    reader_started = threading.Event()
    done = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            reader_started.wait(timeout=30)
            text = ""
            for chunk in chunks:
                text += chunk
                writer.save_turn(conv.id, msg.id, AssistantTurn(id=msg.turn.id, answer=text))
        except BaseException as exc:
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=write)
    thread.start()
    seen: list[str] = []
    reader_started.set()
    while not done.is_set():
        seen.append(reader.get_conversation(conv.id).messages[0].turn.answer)
    thread.join(timeout=60)
    seen.append(reader.get_conversation(conv.id).messages[0].turn.answer)

    assert errors == []
    assert seen[-1] == final_answer
    assert all(final_answer.startswith(s) for s in seen)  # every read saw a consistent, committed state
    assert [len(s) for s in seen] == sorted(len(s) for s in seen)  # and never went backwards
    assert snapshot.execute("SELECT answer FROM messages").fetchone() == ("",)  # snapshot isolation
    snapshot.execute("COMMIT")
    assert snapshot.execute("SELECT answer FROM messages").fetchone() == (final_answer,)
    snapshot.close()
    reader.close()
    writer.close()


# -- settings, import, secrets ----------------------------------------------------------------------------


def test_settings_roundtrip(store: Store) -> None:
    assert store.get_setting("missing") is None
    assert store.get_setting("missing", {"d": 1}) == {"d": 1}
    profiles = [{"name": "local", "base_url": "http://127.0.0.1:8080/v1", "api_key_env": "MY_KEY"}]
    store.set_setting("profiles", profiles)
    store.set_setting("prefill:local:qwen3", True)
    store.set_setting("n", 3.5)
    assert store.get_setting("profiles") == profiles
    assert store.get_setting("prefill:local:qwen3") is True
    store.set_setting("n", "änother")
    assert store.get_setting("n") == "änother"
    with pytest.raises(TypeError):
        store.set_setting("bad", object())


def _rich_conversation() -> Conversation:
    t0 = datetime(2025, 3, 4, 5, 6, 7, 890123, tzinfo=timezone(timedelta(hours=2)))
    return Conversation(
        id="import-me",
        title="Ünïcode 🧠 chat",
        created_at=t0,
        updated_at=t0 + timedelta(minutes=5),
        endpoint="local",
        model="deepseek-r1",
        system_prompt="Think first.",
        messages=[
            Message(id="m1", role="system", content="Think first.", created_at=t0),
            Message(id="m2", role="user", content="Explain 日本語 <b>tags</b>\n\nplease", created_at=t0),
            Message(
                id="m3",
                role="assistant",
                created_at=t0,
                turn=_turn(
                    reasoning="思考… with\ttabs\nand newlines",
                    answer="",
                    raw="<think>思考…</think>",
                    status="stopped",
                    stopped=True,
                    unfinished=True,
                    finish_reason=None,
                    family="deepseek",
                    malformed_chunks=2,
                    request_params={
                        "model": "deepseek-r1",
                        "max_tokens": 100,
                        "nested": {"a": [1, 2.5, None]},
                    },
                ),
            ),
            Message(
                id="m4",
                role="assistant",
                created_at=t0,
                turn=_turn(
                    status="error",
                    error=ErrorInfo(kind="http", message="Server said 500", status=500, server_message="boom"),
                    cut_off=True,
                    usage=Usage(),
                    timings=Timings(started_at=t0),
                ),
            ),
        ],
    )


def test_import_roundtrip_and_id_clash(store: Store) -> None:
    conv = _rich_conversation()
    first = store.import_conversation(conv)
    assert first == conv
    assert store.get_conversation(conv.id) == conv
    second = store.import_conversation(conv)
    assert second.id != conv.id
    assert second.model_copy(update={"id": conv.id}) == conv
    assert {s.id for s in store.list_conversations()} == {conv.id, second.id}
    # The two copies are independent.
    store.delete_messages_from(second.id, "m3")
    assert len(store.get_conversation(conv.id).messages) == 4
    dup = conv.model_copy(update={"id": "dup", "messages": [conv.messages[1], conv.messages[1]]})
    with pytest.raises(ValueError, match="duplicate"):
        store.import_conversation(dup)


def test_no_api_key_reaches_the_disk(tmp_path: Path) -> None:
    path = tmp_path / "secret-check.db"
    params = {
        "model": "m",
        "temperature": 0.7,
        "api_key": FAKE_KEY,
        "API-Key": FAKE_KEY,
        "headers": {
            "Authorization": f"Bearer {FAKE_KEY}",
            "X-Api-Key": FAKE_KEY,
            "Accept": "text/event-stream",
        },
        "extra": [f"bearer {FAKE_KEY}", "kept"],
    }
    with Store(path) as s:
        conv = s.create_conversation()
        s.add_message(conv.id, Message(role="user", content="hi"))
        turn = AssistantTurn(answer="partial", request_params=params)
        msg = Message(role="assistant", turn=turn)
        s.add_message(conv.id, msg)
        s.save_turn(conv.id, msg.id, turn.model_copy(update={"answer": "partial answer"}))
        s.save_turn(conv.id, "other", turn)
        imported = s.import_conversation(_rich_conversation().model_copy(update={"messages": [msg]}))
        s.set_setting("profile", {"name": "p", "api_key_env": "OPENAI_API_KEY", "apiKey": FAKE_KEY})
        stored = s.get_conversation(conv.id).messages[1].turn.request_params
        assert stored == {
            "model": "m",
            "temperature": 0.7,
            "extra": ["kept"],
        }  # a header dict goes whole: one rule set for secrets (viewer.redact), the one safe_params uses
        assert imported.messages[0].turn.request_params == stored
        assert s.get_setting("profile") == {"name": "p", "api_key_env": "OPENAI_API_KEY"}
        # Check the files while the connection is open too (the WAL holds recent writes).
        blobs = [p.read_bytes() for p in tmp_path.iterdir() if p.is_file()]
        assert blobs and all(FAKE_KEY.encode() not in b for b in blobs)
    blobs = [p.read_bytes() for p in tmp_path.iterdir() if p.is_file()]
    assert b"OPENAI_API_KEY" in b"".join(blobs)  # the grep itself works: the env var *name* is there
    assert all(FAKE_KEY.encode() not in b for b in blobs)
