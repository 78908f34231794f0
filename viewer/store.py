"""SQLite persistence for conversations, messages and small settings.

Why SQLite (stdlib `sqlite3`) rather than JSON files: the UI saves the assistant's turn every few seconds
while it streams, and a single-row UPDATE in WAL mode is cheap and crash-safe, whereas rewriting a JSON file
is neither. WAL also lets another connection (a second browser tab, the CLI) read while a stream is being
saved.

The schema is versioned by `PRAGMA user_version` and upgraded by `MIGRATIONS`, an ordered list of
`(version, sql)` applied one by one, each inside its own transaction, so an old database file is upgraded in
place the first time a newer program opens it, and a failed step leaves the file exactly at the previous
version.

API keys are never stored: profiles keep only the *name* of the environment variable, and everything that
could carry a secret (a turn's `request_params`, settings) goes through `scrub_secrets` on the way in.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from viewer.models import AssistantTurn, Conversation, ErrorInfo, Message, new_id, utc_now
from viewer.redact import redact_text, redact_value

APP_DIR_NAME = "reasoning-viewer"
DB_FILE_NAME = "conversations.db"
DB_ENV_VAR = "REASONING_VIEWER_DB"
DEFAULT_TITLE = "New chat"
TITLE_MAX_CHARS = 60
SNIPPET_MAX_CHARS = 160

SearchField = Literal["prompt", "answer", "reasoning", "step"]

# Ordered schema migrations. Append only: never edit a step that has shipped, add a new one instead.
# Each script runs inside one transaction together with the `PRAGMA user_version` bump.
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE conversations (
            id            TEXT PRIMARY KEY,
            title         TEXT NOT NULL,
            created_at    TEXT NOT NULL,
            updated_at    TEXT NOT NULL,
            endpoint      TEXT,
            model         TEXT,
            system_prompt TEXT
        );
        CREATE TABLE messages (
            conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
            id              TEXT NOT NULL,
            position        INTEGER NOT NULL,
            role            TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
            content         TEXT NOT NULL DEFAULT '',
            turn_json       TEXT,
            created_at      TEXT NOT NULL,
            PRIMARY KEY (conversation_id, id),
            UNIQUE (conversation_id, position)
        );
        CREATE TABLE settings (
            key   TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        """,
    ),
    (
        2,
        """
        -- Denormalised copies of the turn's text, so that search is a plain column scan
        -- instead of parsing every turn's JSON.
        ALTER TABLE messages ADD COLUMN reasoning TEXT NOT NULL DEFAULT '';
        ALTER TABLE messages ADD COLUMN answer TEXT NOT NULL DEFAULT '';
        UPDATE messages
           SET reasoning = COALESCE(json_extract(turn_json, '$.reasoning'), ''),
               answer    = COALESCE(json_extract(turn_json, '$.answer'), content)
         WHERE turn_json IS NOT NULL;
        UPDATE messages SET answer = content WHERE turn_json IS NULL AND role = 'assistant';
        """,
    ),
    (
        3,
        """
        -- The sidebar lists conversations newest first on every rerun.
        CREATE INDEX conversations_by_updated ON conversations(updated_at DESC);
        """,
    ),
    (
        4,
        """
        -- What a conversation's next message is sent with (endpoint profile, model, generation and thinking
        -- settings), as a JSON object written by the UI; NULL for chats from before this column existed
        -- (their endpoint and model columns still say where they went). Issue 10, item 1.
        ALTER TABLE conversations ADD COLUMN settings_json TEXT;
        -- Earlier replies in an assistant message's place (Regenerate/Retry keep them; issue 10, item 7):
        -- a JSON array of turns, oldest first, written once when the new reply starts; NULL when none.
        ALTER TABLE messages ADD COLUMN versions_json TEXT;
        """,
    ),
    (
        5,
        """
        -- Compare runs (issue 7): one stored conversation per target, grouped. A member row goes with its
        -- conversation; `target_json` is the target's endpoint name, base URL and settings (never a key).
        CREATE TABLE compare_members (
            group_id        TEXT NOT NULL,
            position        INTEGER NOT NULL,
            conversation_id TEXT NOT NULL UNIQUE REFERENCES conversations(id) ON DELETE CASCADE,
            target_json     TEXT NOT NULL DEFAULT '{}',
            PRIMARY KEY (group_id, position)
        );
        """,
    ),
)
LATEST_VERSION = MIGRATIONS[-1][0]


StoreProblem = Literal["readonly", "not_a_database", "corrupt", "full", "locked", "io", "newer", "other"]

# SQLite primary result codes (https://sqlite.org/rescode.html) → the problem they mean for the history file.
_CODE_KINDS: dict[int, StoreProblem] = {
    5: "locked",  # SQLITE_BUSY: another connection holds the write lock past the busy timeout
    6: "locked",  # SQLITE_LOCKED
    8: "readonly",  # SQLITE_READONLY
    10: "io",  # SQLITE_IOERR
    11: "corrupt",  # SQLITE_CORRUPT
    13: "full",  # SQLITE_FULL: disk full, or the file reached max_page_count
    14: "io",  # SQLITE_CANTOPEN
    26: "not_a_database",  # SQLITE_NOTADB
}
# The same, from the message, for Pythons whose sqlite3 exceptions carry no error code (before 3.11).
_MESSAGE_KINDS: tuple[tuple[str, StoreProblem], ...] = (
    ("database is locked", "locked"),
    ("table is locked", "locked"),
    ("readonly database", "readonly"),
    ("read-only", "readonly"),
    ("disk image is malformed", "corrupt"),
    ("could not decode to utf-8", "corrupt"),  # a text column whose bytes were damaged
    ("database or disk is full", "full"),
    ("file is not a database", "not_a_database"),
    ("disk i/o error", "io"),
    ("unable to open database file", "io"),
)
_PROBLEM_TEXT: dict[str, str] = {
    "readonly": "is read-only",
    "not_a_database": "is not a database (it may have been overwritten)",
    "corrupt": "is damaged",
    "full": "could not be written: the disk is full",
    "locked": "is locked by another program",
    "io": "could not be read or written (I/O error)",
    "newer": "was written by a newer version of reasoning-viewer",
    "other": "could not be used",
}


class StoreError(Exception):
    """A problem with the history file itself, typed by `kind` and naming the file (`path`).

    `kind` is one of `readonly`, `not_a_database`, `corrupt`, `full`, `locked`, `io`, `newer`, `other`;
    the UI branches on it, the message is one line fit to show a person. Raised by every Store method in
    place of a raw `sqlite3` error for these faults (program errors such as a bad SQL statement stay
    `sqlite3` errors). Source of the kinds: issue 11, items 5-7.
    """

    def __init__(self, message: str, *, kind: StoreProblem = "other", path: str | Path | None = None) -> None:
        super().__init__(message)
        self.kind: StoreProblem = kind
        self.path = None if path is None else str(path)

    @classmethod
    def from_sqlite(cls, exc: sqlite3.Error, path: str | Path) -> StoreError | None:
        """The typed error for a SQLite failure that is a fault of the file or disk; None for other errors."""
        kind = problem_kind(exc)
        if kind is None:
            return None
        return cls(f"The history file {path} {_PROBLEM_TEXT[kind]} ({exc}).", kind=kind, path=path)


def problem_kind(exc: BaseException) -> StoreProblem | None:
    """Which file fault a `sqlite3` exception reports, or None if it is not one (e.g. an SQL mistake)."""
    if not isinstance(exc, sqlite3.Error):
        return None
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and (code & 0xFF) in _CODE_KINDS:
        return _CODE_KINDS[code & 0xFF]
    text = str(exc).lower()
    for needle, kind in _MESSAGE_KINDS:
        if needle in text:
            return kind
    return None


class UnknownConversation(KeyError):
    """The conversation id does not exist (deleted in another tab, or a stale link)."""


@dataclass(frozen=True)
class ConversationSummary:
    """One sidebar row: cheap to fetch, no messages loaded."""

    id: str
    title: str
    updated_at: datetime
    message_count: int


@dataclass(frozen=True)
class SearchHit:
    """Where a search matched. `snippet` is one line of at most 160 characters around the match."""

    conversation_id: str
    title: str
    message_id: str
    field: SearchField
    snippet: str


def default_db_path(platform: str | None = None, env: Mapping[str, str] | None = None) -> Path:
    """Where the history lives unless the caller says otherwise.

    `REASONING_VIEWER_DB` wins (handy for tests and for keeping several histories); otherwise the platform's
    per-user data directory. Written by hand to avoid a dependency for ten lines. `platform` and `env` are
    parameters only so that every branch can be tested on any OS.
    """
    platform = sys.platform if platform is None else platform
    env = os.environ if env is None else env
    override = env.get(DB_ENV_VAR)
    if override:
        return Path(override).expanduser()
    home = Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())
    if platform.startswith("win"):
        appdata = env.get("APPDATA")
        base = Path(appdata) if appdata else home / "AppData" / "Roaming"
    elif platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        xdg = env.get("XDG_DATA_HOME")
        # The XDG spec says relative values are invalid and must be ignored.
        base = Path(xdg) if xdg and Path(xdg).is_absolute() else home / ".local" / "share"
    return base / APP_DIR_NAME / DB_FILE_NAME


def scrub_secrets(value: Any) -> Any:
    """Return a copy of `value` without anything that looks like a credential (`viewer.redact.redact_value`).

    Defensive: nothing should put a key into `request_params` or a setting, but if some code path ever does
    (say, a header dict copied wholesale), the key must still not end up in a file that people back up,
    sync and attach to bug reports.
    """
    return redact_value(value)


def derive_title(text: str) -> str:
    """First non-blank line of the first prompt, at most 60 characters (ellipsis included)."""
    for line in text.splitlines():
        line = " ".join(line.split())
        if line:
            return line if len(line) <= TITLE_MAX_CHARS else line[: TITLE_MAX_CHARS - 1].rstrip() + "…"
    return ""


@lru_cache(maxsize=64)
def _pattern(query: str) -> re.Pattern[str]:
    return re.compile(re.escape(query), re.IGNORECASE)


def _contains(text: str | None, query: str) -> int:
    """SQL function for non-ASCII queries: SQLite's LIKE only folds ASCII case ('É' would not match 'é')."""
    return 1 if text and _pattern(query).search(text) else 0


def _escape_like(query: str) -> str:
    return query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def make_snippet(text: str, query: str, width: int = SNIPPET_MAX_CHARS) -> str:
    """One line of at most `width` characters showing the match with some context, more after than before.

    Cut at word boundaries (issue 10, item 8): a word at either end is dropped rather than cut, unless the
    match itself is cut, or a single word is wider than the whole snippet. "…" marks each cut end.
    """
    flat = " ".join(text.split())
    if len(flat) <= width:
        return flat
    needle = " ".join(query.split())
    m = _pattern(needle).search(flat) if needle else None
    s, e = (m.start(), m.end()) if m else (0, 0)
    start = max(0, s - max(0, width - (e - s)) // 3)
    end = min(len(flat), start + width)
    start = max(0, end - width)
    # Room for the ellipses, then snap both ends to word boundaries without losing the match.
    if start > 0:
        start += 1
    if end < len(flat):
        end -= 1
    if start > 0 and flat[start - 1] != " ":
        gap = flat.find(" ", start, min(s, end) if m else end)
        if gap >= 0:
            start = gap + 1
    if end < len(flat) and flat[end] != " ":
        gap = flat.rfind(" ", max(e, start), end)
        if gap > start:
            end = gap
    out = flat[start:end].strip()
    return ("…" if start > 0 else "") + out + ("…" if end < len(flat) else "")


def _step_title_search(cond: Callable[[str], str]) -> str:
    """The search part over step titles (heuristic ones in the turn's `outline`, model-written ones in its
    `step_titles`), read from the stored turn JSON: the first matching title of each assistant message.

    Turns stored before outlines existed have none in their JSON; their heuristic titles are sentences of
    the reasoning, which the reasoning part of the search already covers.
    """
    doc = "CASE WHEN json_valid(m.turn_json) THEN m.turn_json ELSE '{}' END"  # a damaged row matches nothing
    titles = (
        f"SELECT json_extract(o.value, '$.title') AS t FROM json_each({doc}, '$.outline') o"
        f" UNION ALL SELECT s.value AS t FROM json_each({doc}, '$.step_titles') s"
    )
    return (
        "SELECT cid, title, mid, 'step' AS field, 2 AS rank, text, upd, crow, pos FROM ("
        " SELECT m.conversation_id AS cid, c.title AS title, m.id AS mid,"
        f" (SELECT t FROM ({titles}) WHERE {cond('t')} LIMIT 1) AS text,"
        " c.updated_at AS upd, c.rowid AS crow, m.position AS pos"
        " FROM messages m JOIN conversations c ON c.id = m.conversation_id"
        " WHERE m.role = 'assistant' AND m.turn_json IS NOT NULL"
        ") WHERE text IS NOT NULL"
    )


def _iso(dt: datetime) -> str:
    """ISO-8601 text with fixed precision; aware times are stored in UTC so that text order is time order."""
    if dt.tzinfo is not None:
        dt = dt.astimezone(timezone.utc)
    return dt.isoformat(timespec="microseconds")


def _parse_dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _first_readable(conn: sqlite3.Connection, queries: list[str], params: tuple[Any, ...]) -> Any:
    """The first row of the first query that can be run on a damaged file (None if none can)."""
    for sql in queries:
        try:
            return conn.execute(sql, params).fetchone()
        except sqlite3.DatabaseError:
            continue
    return None


def _all_readable(conn: sqlite3.Connection, queries: list[str], params: tuple[Any, ...]) -> list[Any]:
    """All rows of the first query that can be run to the end on a damaged file ([] if none can)."""
    for sql in queries:
        try:
            return conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError:
            continue
    return []


def _split_sql(script: str) -> Iterator[str]:
    """Split a migration script into single statements (sqlite3's execute() runs only one).

    `executescript` can't be used because it commits any open transaction first, which would defeat running
    a migration step atomically under BEGIN IMMEDIATE. `complete_statement` understands quotes and triggers.
    """
    buf = ""
    for piece in script.split(";"):
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip().strip(";").strip():
                yield buf.strip()
            buf = ""
    if buf.strip().strip(";").strip():
        raise ValueError(f"incomplete SQL statement in migration: {buf.strip()[:80]!r}")


def _conversation_of(row: Sequence[Any], messages: list[Message]) -> Conversation:
    """A conversation from its row (id, title, created_at, updated_at, endpoint, model, system_prompt)."""
    return Conversation(
        id=row[0],
        title=row[1],
        created_at=_parse_dt(row[2]),
        updated_at=_parse_dt(row[3]),
        endpoint=row[4],
        model=row[5],
        system_prompt=row[6],
        messages=messages,
    )


def _load_turn(turn_json: str, reasoning: str, answer: str) -> AssistantTurn:
    """A stored turn. The text columns are authoritative: a turn saved while streaming keeps its texts
    only there (see `Store.save_turn_progress`); a whole save writes the same texts to both."""
    turn = AssistantTurn.model_validate_json(turn_json)
    if turn.reasoning != reasoning or turn.answer != answer:
        turn = turn.model_copy(update={"reasoning": reasoning, "answer": answer})
    return turn


def _versions_json(versions: list[AssistantTurn]) -> str | None:
    """Earlier versions of a reply as stored (each scrubbed like a turn), or None when there are none."""
    if not versions:
        return None
    return "[" + ",".join(_turn_json(v) for v in versions) + "]"


def _load_versions(text: str | None) -> list[AssistantTurn]:
    """Stored earlier versions; a damaged entry is skipped, damaged JSON gives none (never raises)."""
    if not text:
        return []
    try:
        items = json.loads(text)
    except ValueError:
        return []
    out: list[AssistantTurn] = []
    for item in items if isinstance(items, list) else []:
        try:
            out.append(AssistantTurn.model_validate(item))
        except ValueError:
            continue
    return out


def _turn_json(turn: AssistantTurn) -> str:
    """The turn as stored: request parameters and the error's text (server text) scrubbed of secrets."""
    update: dict[str, Any] = {"request_params": scrub_secrets(turn.request_params)}
    if turn.error is not None:
        update["error"] = redact_error(turn.error)
    return turn.model_copy(update=update).model_dump_json()


def redact_error(error: ErrorInfo) -> ErrorInfo:
    """`error` with its message and the server's text scrubbed of secrets (`viewer.redact.redact_text`)."""
    return error.model_copy(
        update={
            "message": redact_text(error.message),
            "server_message": redact_text(error.server_message) if error.server_message else error.server_message,
        }
    )


class Store:
    """All persistence goes through one object holding one connection.

    Streamlit runs each session's script in its own thread, so the connection is opened with
    `check_same_thread=False` and every use of it is serialised by a lock: two threads interleaving on one
    sqlite3 connection would otherwise share (and corrupt the meaning of) each other's transactions.
    Separate `Store` objects (another process, another tab's store) get separate connections and rely on
    WAL to read while this one writes.
    """

    def __init__(self, path: str | Path | None = None, *, timeout_s: float = 10.0, read_only: bool = False) -> None:
        """Open (creating if needed) the history file at `path`.

        Never fails because of the file itself: a read-only, garbage or damaged file (or `read_only=True`)
        sets `problem` (a `StoreError`) and the Store works on an in-memory copy of whatever could be read,
        so old chats stay readable and new ones work until the app stops, while the file is not written
        again. `start_fresh` then moves a damaged file aside and starts a new one. A file from a newer
        version still raises `StoreError` (kind `newer`).
        """
        self.path = default_db_path() if path is None else Path(path)
        self.problem: StoreError | None = None
        self._timeout = timeout_s
        self._lock = threading.RLock()
        self._last_ts: datetime | None = None
        if not read_only and self.path.is_file() and not os.access(self.path, os.W_OK):
            read_only = True  # chmod'ed or on a read-only mount: say so now, not with a traceback on send
        if read_only:
            self._degrade(StoreError(f"The history file {self.path} is read-only.", kind="readonly", path=self.path))
            return
        try:
            if str(self.path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            why = exc.strerror or str(exc)
            self._degrade(
                StoreError(f"The history file {self.path} can't be created ({why}).", kind="io", path=self.path)
            )
            return
        try:
            self._conn = self._open_file()
        except sqlite3.Error as exc:
            err = StoreError.from_sqlite(exc, self.path)
            if err is None or err.kind in ("full", "locked"):
                raise err or exc from exc
            self._degrade(err)

    def _open_file(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit BEGINs; transactions are explicit so that their extent is visible.
        self._conn = sqlite3.connect(
            str(self.path), timeout=self._timeout, check_same_thread=False, isolation_level=None
        )
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            # NORMAL is the recommended pairing with WAL: never corrupts, may lose the last commit on power
            # loss, and keeps the every-few-seconds save during streaming from fsyncing each time.
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._setup(self._conn)
        except BaseException:
            self._conn.close()
            raise
        return self._conn

    def _setup(self, conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA foreign_keys=ON")
        conn.create_function("rv_contains", 2, _contains, deterministic=True)
        self._migrate()

    # -- faults of the file -------------------------------------------------------------------------------

    def _degrade(self, err: StoreError) -> None:
        """Switch to an in-memory copy of what the file holds; the file is never written from here on.

        The copy is SQLite's backup of the file's pages (damaged pages included, so reading them fails the
        same way and is salvaged row by row), read through a read-only connection. A file that is not a
        database gives an empty history. Costs one read of the file and its size in memory.
        """
        with self._lock:
            self.problem = err
            old = getattr(self, "_conn", None)
            if old is not None:
                with contextlib.suppress(sqlite3.Error):
                    old.close()
            mem = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
            if err.kind != "not_a_database" and str(self.path) != ":memory:":
                self._copy_readable(mem)
            self._conn = mem
            try:
                self._setup(mem)
            except sqlite3.Error:  # the copied schema itself is unreadable: start from an empty history
                mem.close()
                self._conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
                self._setup(self._conn)

    def _copy_readable(self, target: sqlite3.Connection) -> None:
        base = self.path.resolve().as_uri()
        # mode=ro reads the WAL too; immutable=1 works where the WAL index can't be created (read-only dir).
        for params in ("?mode=ro", "?immutable=1"):
            try:
                source = sqlite3.connect(base + params, uri=True, timeout=self._timeout, check_same_thread=False)
            except sqlite3.Error:
                continue
            try:
                source.backup(target)
                return
            except sqlite3.Error:
                continue
            finally:
                source.close()

    def _fault(self, exc: sqlite3.Error) -> StoreError | None:
        """The typed error for `exc`; a damaged or read-only file also switches the Store to its in-memory copy."""
        err = StoreError.from_sqlite(exc, self.path)
        if err is not None and err.kind in ("corrupt", "not_a_database", "readonly") and self.problem is None:
            self._degrade(err)
        return err

    @property
    def saves_to_file(self) -> bool:
        """False when new chats are kept in memory only (see `problem`)."""
        return self.problem is None

    def start_fresh(self) -> Path:
        """Move the damaged (or unreadable) file aside, untouched, and start a new one holding what was readable.

        Returns where the old file now is (`<name>.damaged-<UTC time>`, its -wal/-shm beside it). Every chat
        that can still be read (from the file, and those made since in memory) is copied into the new file.
        Raises `StoreError` if the file can't be moved (e.g. a read-only folder).
        """
        with self._lock:
            if self.problem is None or str(self.path) == ":memory:":
                raise StoreError("The history file is fine; there is nothing to start afresh.", path=self.path)
            readable: list[Conversation] = []
            for summary in self.list_conversations(limit=1_000_000):
                with contextlib.suppress(StoreError):
                    conv = self.get_conversation(summary.id)
                    if conv is not None:
                        readable.append(conv)
            stamp = utc_now().strftime("%Y%m%d-%H%M%S")
            aside = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
            try:
                if self.path.exists():
                    os.replace(self.path, aside)
                    for suffix in ("-wal", "-shm"):
                        extra = Path(str(self.path) + suffix)
                        if extra.exists():
                            os.replace(extra, Path(str(aside) + suffix))
            except OSError as exc:
                raise StoreError(
                    f"Could not move {self.path} aside ({exc.strerror or exc}).", kind="io", path=self.path
                ) from exc
            self._conn.close()
            self.problem = None
            try:
                self._conn = self._open_file()
            except sqlite3.Error as exc:
                err = StoreError.from_sqlite(exc, self.path)
                self._degrade(err or StoreError(str(exc), path=self.path))
                raise (err or exc) from exc
            for conv in readable:
                self.import_conversation(conv)
            return aside

    # -- plumbing -----------------------------------------------------------------------------------------

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @property
    def schema_version(self) -> int:
        with self._lock:
            return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    @property
    def journal_mode(self) -> str:
        with self._lock:
            return str(self._conn.execute("PRAGMA journal_mode").fetchone()[0])

    def _migrate(self) -> None:
        versions = [v for v, _ in MIGRATIONS]
        if versions != sorted(set(versions)) or versions[0] < 1:
            raise StoreError("MIGRATIONS must have strictly increasing versions starting at 1 or more")
        current = self.schema_version
        if current > versions[-1]:
            raise StoreError(
                f"{self.path} has schema version {current}, newer than this program understands "
                f"({versions[-1]}); upgrade reasoning-viewer or use another database file",
                kind="newer",
                path=self.path,
            )
        for version, sql in MIGRATIONS:
            if version <= current:
                continue
            with self._write() as conn:
                # Re-read under the write lock: another process may have migrated meanwhile.
                current = int(conn.execute("PRAGMA user_version").fetchone()[0])
                if version <= current:
                    continue
                for statement in _split_sql(sql):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {int(version)}")
                current = version

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction. IMMEDIATE takes the write lock up front, so no upgrade deadlock later.

        File faults (full, locked, read-only, damaged) come out as `StoreError`, see `_fault`.
        """
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    if self._conn.in_transaction:
                        with contextlib.suppress(sqlite3.Error):
                            self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                err = self._fault(exc)
                if err is None:
                    raise
                raise err from exc

    @contextmanager
    def _typed_faults(self) -> Iterator[None]:
        """A statement outside `_write`/`_read`: a fault of the file or disk becomes a typed `StoreError`."""
        try:
            yield
        except sqlite3.Error as exc:
            err = self._fault(exc)
            if err is None:
                raise
            raise err from exc

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction, so several SELECTs see one consistent snapshot. File faults → `StoreError`."""
        with self._lock:
            try:
                self._conn.execute("BEGIN")
                try:
                    yield self._conn
                finally:
                    if self._conn.in_transaction:
                        self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._conn.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._conn.execute("ROLLBACK")
                err = self._fault(exc)
                if err is None:
                    raise
                raise err from exc

    def _now(self) -> datetime:
        """UTC now, strictly increasing within this Store.

        Coarse clocks (about 16 ms on Windows) would otherwise give equal `updated_at` to things done in quick
        succession and make "most recent first" ambiguous.
        """
        now = utc_now()
        if self._last_ts is not None and now <= self._last_ts:
            now = self._last_ts + timedelta(microseconds=1)
        self._last_ts = now
        return now

    def _touch(self, conn: sqlite3.Connection, conv_id: str) -> None:
        cur = conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (_iso(self._now()), conv_id))
        if cur.rowcount == 0:
            raise UnknownConversation(conv_id)

    # -- conversations ------------------------------------------------------------------------------------

    def create_conversation(
        self,
        title: str = DEFAULT_TITLE,
        *,
        endpoint: str | None = None,
        model: str | None = None,
        system_prompt: str | None = None,
    ) -> Conversation:
        with self._write() as conn:
            now = self._now()
            conv = Conversation(
                title=title,
                created_at=now,
                updated_at=now,
                endpoint=endpoint,
                model=model,
                system_prompt=system_prompt,
            )
            self._insert_conversation(conn, conv)
        return conv

    def _insert_conversation(self, conn: sqlite3.Connection, conv: Conversation) -> None:
        conn.execute(
            "INSERT INTO conversations (id, title, created_at, updated_at, endpoint, model, system_prompt)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                conv.id,
                conv.title,
                _iso(conv.created_at),
                _iso(conv.updated_at),
                conv.endpoint,
                conv.model,
                conv.system_prompt,
            ),
        )

    def get_conversation(self, conv_id: str) -> Conversation | None:
        """The conversation with its messages, or None. In a damaged file, the messages that can be read."""
        try:
            return self._get_conversation(conv_id)
        except StoreError as exc:
            if exc.kind != "corrupt":
                raise
            return self._salvage_conversation(conv_id)

    def _salvage_conversation(self, conv_id: str) -> Conversation | None:
        """Read a conversation row by row, skipping rows on damaged pages (raises StoreError if none is left)."""
        with self._lock:
            conn = self._conn
            row = _first_readable(
                conn,
                [
                    "SELECT id, title, created_at, updated_at, endpoint, model, system_prompt"
                    " FROM conversations WHERE id = ?",
                    "SELECT id, title, created_at, updated_at, endpoint, model, system_prompt"
                    " FROM conversations NOT INDEXED WHERE id = ?",
                ],
                (conv_id,),
            )
            if row is None:
                return None
            # The primary-key index lists the rows without touching the table's pages.
            rowids = _all_readable(
                conn,
                [
                    "SELECT rowid FROM messages INDEXED BY sqlite_autoindex_messages_1 WHERE conversation_id = ?",
                    "SELECT rowid FROM messages NOT INDEXED WHERE conversation_id = ?",
                ],
                (conv_id,),
            )
            messages: list[tuple[int, Message]] = []
            for (rowid,) in rowids:
                try:
                    got = conn.execute(
                        "SELECT id, role, content, turn_json, created_at, position FROM messages WHERE rowid = ?",
                        (rowid,),
                    ).fetchone()
                    if got is None:
                        continue
                    mid, role, content, turn_json, created, position = got
                    turn = AssistantTurn.model_validate_json(turn_json) if turn_json is not None else None
                    messages.append(
                        (
                            position,
                            Message(id=mid, role=role, content=content, turn=turn, created_at=_parse_dt(created)),
                        )
                    )
                except (sqlite3.DatabaseError, ValueError):
                    continue  # a row on a damaged page
        return _conversation_of(row, [m for _, m in sorted(messages, key=lambda pm: pm[0])])

    def _get_conversation(self, conv_id: str) -> Conversation | None:
        with self._read() as conn:
            row = conn.execute(
                "SELECT id, title, created_at, updated_at, endpoint, model, system_prompt"
                " FROM conversations WHERE id = ?",
                (conv_id,),
            ).fetchone()
            if row is None:
                return None
            rows = conn.execute(
                "SELECT id, role, content, turn_json, created_at, reasoning, answer, versions_json FROM messages"
                " WHERE conversation_id = ? ORDER BY position",
                (conv_id,),
            ).fetchall()
        messages = [
            Message(
                id=mid,
                role=role,
                content=content,
                turn=_load_turn(turn_json, reasoning, answer) if turn_json is not None else None,
                versions=_load_versions(versions_json),
                created_at=_parse_dt(created),
            )
            for mid, role, content, turn_json, created, reasoning, answer, versions_json in rows
        ]
        return _conversation_of(row, messages)

    def list_conversations(self, limit: int = 200) -> list[ConversationSummary]:
        """Newest activity first (ties, which `_now` prevents within one Store, go to the later-created).

        In a damaged file: the conversations whose rows can be read (message counts then show as 0).
        """
        try:
            return self._list_conversations(limit)
        except StoreError as exc:
            if exc.kind != "corrupt":
                raise
        with self._lock:
            rows = _all_readable(self._conn, ["SELECT id, title, updated_at, rowid FROM conversations NOT INDEXED"], ())
            if not rows:
                rows = []
                top = _first_readable(self._conn, ["SELECT MAX(rowid) FROM conversations"], ()) or (0,)
                for rowid in range(1, min(int(top[0] or 0), 100_000) + 1):
                    got = _first_readable(
                        self._conn, ["SELECT id, title, updated_at, rowid FROM conversations WHERE rowid = ?"], (rowid,)
                    )
                    if got is not None:
                        rows.append(got)
        ordered = sorted(rows, key=lambda r: (r[2], r[3]), reverse=True)[:limit]
        return [ConversationSummary(r[0], r[1], _parse_dt(r[2]), 0) for r in ordered]

    def _list_conversations(self, limit: int) -> list[ConversationSummary]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT c.id, c.title, c.updated_at,"
                " (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id)"
                " FROM conversations c ORDER BY c.updated_at DESC, c.rowid DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [ConversationSummary(r[0], r[1], _parse_dt(r[2]), r[3]) for r in rows]

    def rename_conversation(self, conv_id: str, title: str) -> None:
        """Does not bump `updated_at`: renaming an old chat should not move it to the top of the list."""
        with self._write() as conn:
            cur = conn.execute("UPDATE conversations SET title = ? WHERE id = ?", (title, conv_id))
            if cur.rowcount == 0:
                raise UnknownConversation(conv_id)

    def update_conversation(
        self,
        conv_id: str,
        *,
        endpoint: str | None = None,
        model: str | None = None,
        system_prompt: str | None = None,
    ) -> None:
        """Set whichever of endpoint / model / system_prompt is given (not None); bumps `updated_at`."""
        changes = {
            k: v
            for k, v in (("endpoint", endpoint), ("model", model), ("system_prompt", system_prompt))
            if v is not None
        }
        with self._write() as conn:
            if changes:
                sets = ", ".join(f"{k} = ?" for k in changes)  # keys come from the fixed tuple above
                conn.execute(f"UPDATE conversations SET {sets} WHERE id = ?", (*changes.values(), conv_id))
            self._touch(conn, conv_id)

    def conversation_settings(self, conv_id: str) -> dict[str, Any] | None:
        """The settings saved with `set_conversation_settings` (a JSON object), or None if none were saved,
        the conversation does not exist or the stored text is damaged."""
        with self._read() as conn:
            row = conn.execute("SELECT settings_json FROM conversations WHERE id = ?", (conv_id,)).fetchone()
        if row is None or row[0] is None:
            return None
        try:
            value = json.loads(row[0])
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def set_conversation_settings(self, conv_id: str, settings: Mapping[str, Any]) -> None:
        """Remember what the conversation's next message is sent with (any JSON-serialisable mapping,
        secrets scrubbed). Does not bump `updated_at`: changing a setting is not activity.

        Raises `UnknownConversation` if the conversation does not exist."""
        text = json.dumps(scrub_secrets(dict(settings)), ensure_ascii=False, sort_keys=True)
        with self._write() as conn:
            cur = conn.execute("UPDATE conversations SET settings_json = ? WHERE id = ?", (text, conv_id))
            if cur.rowcount == 0:
                raise UnknownConversation(conv_id)

    def delete_conversation(self, conv_id: str) -> None:
        """Idempotent; messages go with it (ON DELETE CASCADE)."""
        with self._write() as conn:
            conn.execute("DELETE FROM conversations WHERE id = ?", (conv_id,))

    # -- messages -----------------------------------------------------------------------------------------

    def add_message(self, conv_id: str, message: Message) -> None:
        """Append `message`; the first user prompt of a still-untitled chat becomes its title."""
        turn_json = _turn_json(message.turn) if message.turn is not None else None
        reasoning = message.turn.reasoning if message.turn is not None else ""
        answer = message.turn.answer if message.turn is not None else message.content
        with self._write() as conn:
            self._touch(conn, conv_id)
            conn.execute(
                "INSERT INTO messages"
                " (conversation_id, id, position, role, content, turn_json, created_at, reasoning, answer,"
                " versions_json)"
                " VALUES (?, ?,"
                " (SELECT COALESCE(MAX(position) + 1, 0) FROM messages WHERE conversation_id = ?),"
                " ?, ?, ?, ?, ?, ?, ?)",
                (
                    conv_id,
                    message.id,
                    conv_id,
                    message.role,
                    message.content,
                    turn_json,
                    _iso(message.created_at),
                    reasoning if message.role == "assistant" else "",
                    answer if message.role == "assistant" else "",
                    _versions_json(message.versions),
                ),
            )
            if message.role == "user":
                title = derive_title(message.content)
                if title:
                    conn.execute(
                        "UPDATE conversations SET title = ? WHERE id = ? AND title = ?",
                        (title, conv_id, DEFAULT_TITLE),
                    )

    @contextmanager
    def _patient(self, wait_s: float | None) -> Iterator[None]:
        """Hold the store's lock (taken by the caller) for at most about `wait_s` seconds while another
        program holds the file's write lock (SQLite's busy timeout), instead of the default `timeout_s`: a
        background save that gives up quickly and retries later never keeps a page's reads waiting."""
        if wait_s is None:
            yield
            return
        self._conn.execute(f"PRAGMA busy_timeout = {max(0, int(wait_s * 1000))}")
        try:
            yield
        finally:
            self._conn.execute(f"PRAGMA busy_timeout = {int(self._timeout * 1000)}")

    def save_turn(
        self,
        conv_id: str,
        message_id: str,
        turn: AssistantTurn,
        *,
        wait_s: float | None = None,
        insert_missing: bool = True,
    ) -> None:
        """Store the current state of an assistant turn; called repeatedly while it streams.

        The common case is a single-row UPDATE in autocommit mode, so it stays cheap even for a long
        reasoning trace saved every few seconds, and saving the same turn twice changes nothing. If the
        message row does not exist yet, an assistant message holding the turn is appended (upsert), so a
        caller that forgot `add_message` still loses nothing (unless `insert_missing` is False: then a missing
        row raises `UnknownConversation`, for a saver whose row may have been deleted on purpose; `wait_s` as in
        `save_turn_progress`). Bumps the conversation's `updated_at`: a reply that finishes is a change
        (exports and the list show when it ended; issue 10, item 10).
        """
        turn_json = _turn_json(turn)
        with self._lock, self._patient(wait_s):
            with self._typed_faults():
                cur = self._conn.execute(
                    "UPDATE messages SET turn_json = ?, reasoning = ?, answer = ? WHERE conversation_id = ? AND id = ?",
                    (turn_json, turn.reasoning, turn.answer, conv_id, message_id),
                )
            if cur.rowcount == 0:
                if not insert_missing:
                    raise UnknownConversation(conv_id)
                self.add_message(conv_id, Message(id=message_id, role="assistant", turn=turn))
                return
            with self._typed_faults():
                self._conn.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (_iso(self._now()), conv_id))

    def save_turn_progress(
        self,
        conv_id: str,
        message_id: str,
        meta: AssistantTurn,
        *,
        reasoning_add: str = "",
        answer_add: str = "",
        answer_reset: bool = False,
        wait_s: float | None = None,
    ) -> None:
        """Save what changed in a streaming turn since the last save: text appended to the reasoning and the
        answer (the answer restarted first if `answer_reset`), and the turn's small metadata `meta` (its
        texts are not stored in the JSON: `get_conversation` reads them from the text columns).

        One UPDATE, so each periodic save costs the new text, not the whole trace. Raises
        `UnknownConversation` if the message row does not exist (e.g. the conversation was deleted), and
        `StoreError` (kind `full`, `locked`, …) when the file refuses the write. `wait_s`: how long to wait
        for another program's write lock (default: the store's `timeout_s`).
        """
        light = meta.model_copy(update={"reasoning": "", "answer": "", "raw": ""})
        with self._lock, self._patient(wait_s):
            with self._typed_faults():
                cur = self._conn.execute(
                    "UPDATE messages SET turn_json = ?, reasoning = reasoning || ?,"
                    " answer = CASE WHEN ? THEN ? ELSE answer || ? END"
                    " WHERE conversation_id = ? AND id = ?",
                    (_turn_json(light), reasoning_add, answer_reset, answer_add, answer_add, conv_id, message_id),
                )
            if cur.rowcount == 0:
                raise UnknownConversation(conv_id)

    def delete_messages_from(self, conv_id: str, message_id: str) -> int:
        """Delete `message_id` and everything after it (regenerate / edit). Returns how many were removed."""
        with self._write() as conn:
            row = conn.execute(
                "SELECT position FROM messages WHERE conversation_id = ? AND id = ?", (conv_id, message_id)
            ).fetchone()
            if row is None:
                return 0
            cur = conn.execute("DELETE FROM messages WHERE conversation_id = ? AND position >= ?", (conv_id, row[0]))
            self._touch(conn, conv_id)
            return cur.rowcount

    # -- search -------------------------------------------------------------------------------------------

    def search(self, query: str, limit: int = 50) -> list[SearchHit]:
        """Case-insensitive substring search over prompts, answers, reasoning and step titles.

        ASCII queries use LIKE (with %, _ and \\ escaped so they match literally), which runs in C; other
        queries use a Python function because LIKE folds only ASCII case. No FTS5: substring semantics are
        what people expect from a search box over their own chats, and the data is one person's history.
        """
        query = query.strip()
        if not query:
            return []
        if query.isascii():
            param = "%" + _escape_like(query) + "%"

            def cond(col: str) -> str:
                return f"{col} LIKE :q ESCAPE '\\'"
        else:
            param = query

            def cond(col: str) -> str:
                return f"rv_contains({col}, :q)"

        parts = [
            f"SELECT m.conversation_id AS cid, c.title AS title, m.id AS mid,"
            f" '{field}' AS field, {rank} AS rank, m.{col} AS text,"
            f" c.updated_at AS upd, c.rowid AS crow, m.position AS pos"
            f" FROM messages m JOIN conversations c ON c.id = m.conversation_id"
            f" WHERE m.role = '{role}' AND {cond('m.' + col)}"
            for field, rank, col, role in (
                ("prompt", 0, "content", "user"),
                ("answer", 1, "answer", "assistant"),
                ("reasoning", 2, "reasoning", "assistant"),
            )
        ]
        parts.append(_step_title_search(cond))
        sql = (
            "SELECT cid, title, mid, field, text FROM ("
            + " UNION ALL ".join(parts)
            + ") ORDER BY upd DESC, crow DESC, pos, rank LIMIT :limit"
        )
        with self._read() as conn:
            rows = conn.execute(sql, {"q": param, "limit": limit}).fetchall()
        in_reasoning = {(cid, mid) for cid, _, mid, field, _ in rows if field == "reasoning"}
        return [
            SearchHit(cid, title, mid, field, make_snippet(text, query))
            for cid, title, mid, field, text in rows
            if not (field == "step" and (cid, mid) in in_reasoning)  # a heuristic title is reasoning text anyway
        ]

    # -- settings -----------------------------------------------------------------------------------------

    def get_setting(self, key: str, default: Any = None) -> Any:
        with self._read() as conn:
            row = conn.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def set_setting(self, key: str, value: Any) -> None:
        """Store any JSON-serialisable value (secrets scrubbed, see `scrub_secrets`)."""
        text = json.dumps(scrub_secrets(value), ensure_ascii=False)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, text),
            )

    # -- compare runs (issue 7) --------------------------------------------------------------------------

    def add_compare_member(self, group_id: str, position: int, conversation_id: str, target: dict[str, Any]) -> None:
        """Make `conversation_id` column `position` (0-based) of compare run `group_id`.

        `target` is a JSON-serialisable description of the target (secrets scrubbed, see `scrub_secrets`).
        Raises `UnknownConversation` if the conversation does not exist, `sqlite3.IntegrityError` if the
        column or the conversation is already taken.
        """
        text = json.dumps(scrub_secrets(target), ensure_ascii=False)
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM conversations WHERE id = ?", (conversation_id,)).fetchone() is None:
                raise UnknownConversation(conversation_id)
            conn.execute(
                "INSERT INTO compare_members (group_id, position, conversation_id, target_json) VALUES (?, ?, ?, ?)",
                (group_id, position, conversation_id, text),
            )

    def compare_members(self, group_id: str) -> list[tuple[str, dict[str, Any]]]:
        """The run's columns in order: (conversation id, target description); [] for an unknown group."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT conversation_id, target_json FROM compare_members WHERE group_id = ? ORDER BY position",
                (group_id,),
            ).fetchall()
        return [(cid, json.loads(text)) for cid, text in rows]

    def compare_index(self) -> dict[str, tuple[str, int]]:
        """Every conversation that belongs to a compare run: conversation id → (group id, position)."""
        with self._read() as conn:
            rows = conn.execute("SELECT conversation_id, group_id, position FROM compare_members").fetchall()
        return {cid: (gid, pos) for cid, gid, pos in rows}

    def compare_group_of(self, conversation_id: str) -> str | None:
        """The compare run the conversation is a column of, or None for an ordinary chat."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT group_id FROM compare_members WHERE conversation_id = ?", (conversation_id,)
            ).fetchone()
        return None if row is None else str(row[0])

    def delete_compare_group(self, group_id: str) -> None:
        """Delete the run and its conversations (idempotent)."""
        with self._write() as conn:
            conn.execute(
                "DELETE FROM conversations"
                " WHERE id IN (SELECT conversation_id FROM compare_members WHERE group_id = ?)",
                (group_id,),
            )

    # -- import -------------------------------------------------------------------------------------------

    def import_conversation(self, conv: Conversation) -> Conversation:
        """Insert a whole conversation (from a JSON export) as is; a clashing id gets a fresh one.

        Message ids only need to be unique within their conversation (the key is (conversation, id)), so
        importing a copy of a conversation that is still in the database works without rewriting them.
        """
        ids = [m.id for m in conv.messages]
        if len(ids) != len(set(ids)):
            raise ValueError("the conversation has duplicate message ids")
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM conversations WHERE id = ?", (conv.id,)).fetchone():
                conv = conv.model_copy(update={"id": new_id()})
            self._insert_conversation(conn, conv)
            conn.executemany(
                "INSERT INTO messages"
                " (conversation_id, id, position, role, content, turn_json, created_at, reasoning, answer,"
                " versions_json)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        conv.id,
                        m.id,
                        pos,
                        m.role,
                        m.content,
                        _turn_json(m.turn) if m.turn is not None else None,
                        _iso(m.created_at),
                        m.turn.reasoning if m.turn is not None and m.role == "assistant" else "",
                        (m.turn.answer if m.turn is not None else m.content) if m.role == "assistant" else "",
                        _versions_json(m.versions),
                    )
                    for pos, m in enumerate(conv.messages)
                ],
            )
        stored = self.get_conversation(conv.id)
        assert stored is not None  # just inserted under our lock
        return stored
