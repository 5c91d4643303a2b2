"""Many connections opening one new SQLite file at the same moment (workers starting
together, stores migrating together) all get it in WAL mode; SQLite refuses some of the
simultaneous switches at once with ``database is locked`` (about one start in sixteen
with four stores), which ``connect_wal`` waits out. Real files, real threads."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from hybridinference.sqlite_file import connect_wal

FILES = 40
OPENERS = 6


def test_simultaneous_opens_of_a_new_file_all_get_wal(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    modes: list[str] = []
    for n in range(FILES):
        path = str(tmp_path / f"db{n}" / "store.db")  # its folder does not exist yet
        barrier = threading.Barrier(OPENERS)

        def open_it(path: str = path, barrier: threading.Barrier = barrier) -> None:
            barrier.wait()
            try:
                conn = connect_wal(path)
                modes.append(conn.execute("PRAGMA journal_mode").fetchone()[0])
                conn.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
                conn.close()
            except BaseException as exc:  # collected: an assertion in a thread is lost
                errors.append(exc)

        threads = [threading.Thread(target=open_it) for _ in range(OPENERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    assert errors == []
    assert modes == ["wal"] * FILES * OPENERS


def test_other_errors_are_raised_at_once(tmp_path: Path) -> None:
    (tmp_path / "not-a-database").write_bytes(b"this is not a SQLite file" * 100)
    started = time.monotonic()
    with pytest.raises(sqlite3.DatabaseError, match="not a database"):
        connect_wal(str(tmp_path / "not-a-database"), timeout=30)
    assert time.monotonic() - started < 10  # not waited out like a lock
