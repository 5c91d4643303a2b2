"""Opening a SQLite database file that other connections and processes share (the request
log, the alert store): WAL mode, a busy timeout, and the one case the timeout misses.

Switching a file to WAL takes an exclusive lock. When two connections try it at once
(``--workers 2`` starting on a new file, or several stores migrating together) SQLite
answers one of them ``database is locked`` at once instead of waiting, to avoid a
deadlock, so its busy timeout never applies. The switch is retried here until the same
timeout has passed.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

BUSY_TIMEOUT = 30.0


def connect_wal(path: str, timeout: float = BUSY_TIMEOUT) -> sqlite3.Connection:
    """An autocommit connection to ``path`` (its folder created) in WAL mode, waiting up
    to ``timeout`` seconds for locks held by other connections."""
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, isolation_level=None, timeout=timeout)
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return conn
        except sqlite3.OperationalError as exc:
            busy = exc.sqlite_errorname.startswith("SQLITE_BUSY")
            if not busy or time.monotonic() + delay > deadline:
                conn.close()
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
