"""Real faults of a real SQLite history file, built without root, for the tests (issue 11, items 5-7).

* `full_disk(store)`: the file can't grow (SQLite's `max_page_count` set to the current size, which makes
  SQLite fail exactly as on a full disk: SQLITE_FULL). Leave the block and space is back.
* `write_locked(path)`: another connection holds the write lock (as another process would).
* `corrupt_page(path, page)`: one page overwritten with garbage bytes.
* `garbage_file(path)`: a file that is not a database at all.
* `read_only(path)`: a `Store` opened read-only; a chmod does not stop root (the tests' user), this does.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from viewer.store import Store

PAGE_SIZE = 4096


@contextmanager
def full_disk(store: Store) -> Iterator[None]:
    """While inside, every write that needs a new page fails with SQLITE_FULL ("database or disk is full")."""
    conn = store._conn  # the Store's own connection: max_page_count is per connection
    with store._lock:
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
        conn.execute(f"PRAGMA max_page_count = {pages}")
    try:
        yield
    finally:
        with store._lock:
            conn.execute("PRAGMA max_page_count = 4294967294")


@contextmanager
def write_locked(path: Path) -> Iterator[None]:
    """Another connection holds the database's write lock while inside."""
    other = sqlite3.connect(str(path), isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        yield
    finally:
        other.execute("ROLLBACK")
        other.close()


def corrupt_page(path: Path, page: int) -> None:
    """Overwrite page number `page` (1-based, as SQLite counts) with 0xFF bytes."""
    data = bytearray(path.read_bytes())
    start = (page - 1) * PAGE_SIZE
    assert start + PAGE_SIZE <= len(data), f"{path} has only {len(data) // PAGE_SIZE} pages"
    data[start : start + PAGE_SIZE] = b"\xff" * PAGE_SIZE
    path.write_bytes(bytes(data))


def garbage_file(path: Path) -> None:
    path.write_bytes(b"these are my notes, not a database\n" * 200)


def digest(path: Path) -> str:
    """The file's content hash: the tests check that no attempt to open or use it changed a byte."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
