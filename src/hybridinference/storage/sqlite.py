"""The embedded SQLite store: one file, one connection, one dedicated thread.

Every call runs on the same worker thread (sqlite3 connections are not thread-safe and
the event loop must never block on disk). WAL mode lets readers run beside the writer;
several processes may share the file (writes serialise on SQLite's lock, 30 s timeout).
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, TypeVar

import orjson

from hybridinference.background import background_executor
from hybridinference.schemas.keys import ApiKeyRecord, KeySpend
from hybridinference.schemas.overrides import OverrideAudit, OverrideRecord
from hybridinference.schemas.records import RequestRecord
from hybridinference.sqlite_file import connect_wal
from hybridinference.storage import migrations, overrides
from hybridinference.storage.rows import (
    KEY_COLUMNS,
    REQUEST_COLUMNS,
    REQUEST_FIELDS,
    day_period,
    key_from_row,
    key_row,
    key_values,
    month_period,
    request_from_row,
    request_row,
    spend_deltas,
    spend_from_rows,
)
from hybridinference.storage.usage import FACT_COLUMNS, UsageQuery, UsageRow, aggregate

T = TypeVar("T")
#: rows per INSERT statement. Each statement is one ``sqlite3_step`` with the GIL released
#: for all its rows; ``executemany`` took and released the GIL once per row, and every
#: one of those handovers with the busy event loop's thread cost CPU on both sides
#: (docs/performance.md). 64 rows × 20 columns stays far below SQLite's 32,766 variables;
#: a power of two, so that the rest of a batch splits into halves down to one row.
ROWS_PER_INSERT = 64
STORED_IDS = "SELECT request_id FROM requests WHERE request_id IN (SELECT value FROM json_each(?))"
_ROW_PLACEHOLDERS = "(" + ", ".join("?" * len(REQUEST_FIELDS)) + ")"
ADD_SPEND = (
    "INSERT INTO key_spend (key_id, period, cost, tokens, requests) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (key_id, period) DO UPDATE SET cost = cost + excluded.cost, "
    "tokens = tokens + excluded.tokens, requests = requests + excluded.requests"
)


class SQLiteStore:
    def __init__(self, path: str) -> None:
        self._path = path
        self._executor = background_executor("sqlite")
        self._conn: sqlite3.Connection | None = None

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        return cls(url.removeprefix("sqlite:///"))

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = connect_wal(self._path)
            conn.execute("PRAGMA synchronous=NORMAL")
            self._conn = conn
        return self._conn

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(self._connect()))

    async def migrate(self) -> list[int]:
        def apply(conn: sqlite3.Connection) -> list[int]:
            conn.execute("BEGIN IMMEDIATE")  # one writer at a time, across processes
            try:
                conn.execute(migrations.version_table_sql("REAL"))
                applied = {
                    row[0]
                    for row in conn.execute(f"SELECT version FROM {migrations.VERSION_TABLE}")
                }
                done: list[int] = []
                for migration in migrations.pending(applied):
                    for statement in migration.statements["sqlite"]:
                        conn.execute(statement)
                    conn.execute(
                        f"INSERT INTO {migrations.VERSION_TABLE} VALUES (?, ?, ?)",
                        (migration.version, migration.name, time.time()),
                    )
                    done.append(migration.version)
                conn.execute("COMMIT")
                return done
            except BaseException:
                if conn.in_transaction:  # SQLite may have rolled back already (disk full):
                    conn.execute("ROLLBACK")  # a failing ROLLBACK would hide the real error
                raise

        return await self._run(apply)

    async def schema_version(self) -> int:
        def read(conn: sqlite3.Connection) -> int:
            exists = conn.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?",
                (migrations.VERSION_TABLE,),
            ).fetchone()
            if exists is None:
                return 0
            row = conn.execute(f"SELECT max(version) FROM {migrations.VERSION_TABLE}").fetchone()
            return int(row[0] or 0)

        return await self._run(read)

    async def write_requests(self, records: Sequence[RequestRecord]) -> int:
        unique = list({r.request_id: r for r in reversed(records)}.values())

        def write(conn: sqlite3.Connection) -> int:
            conn.execute("BEGIN IMMEDIATE")  # the lookup and the inserts see one state
            try:
                stored = _stored_ids(conn, [r.request_id for r in unique])
                new = [r for r in unique if r.request_id not in stored]
                start = 0
                for size in _insert_sizes(len(new)):
                    values = [value for r in new[start : start + size] for value in request_row(r)]
                    conn.execute(_insert_sql(size), values)
                    start += size
                conn.executemany(ADD_SPEND, spend_deltas(new))
                conn.execute("COMMIT")
                return len(new)
            except BaseException:
                if conn.in_transaction:  # SQLite may have rolled back already (disk full):
                    conn.execute("ROLLBACK")  # a failing ROLLBACK would hide the real error
                raise

        return await self._run(write)

    async def recent_requests(self, limit: int) -> list[RequestRecord]:
        rows = await self._run(
            lambda conn: conn.execute(
                f"SELECT {REQUEST_COLUMNS} FROM requests ORDER BY created_at DESC LIMIT ?",
                (limit,),
            ).fetchall()
        )
        return [request_from_row(row) for row in rows]

    async def export_requests(
        self, start: float, end: float, batch_size: int = 5000
    ) -> AsyncIterator[RequestRecord]:
        after: tuple[float, str] = (start, "")
        while True:
            params = (start, end, *after, batch_size)

            def page(conn: sqlite3.Connection, params: tuple[Any, ...] = params) -> list[Any]:
                return conn.execute(
                    f"SELECT {REQUEST_COLUMNS} FROM requests WHERE created_at >= ? "
                    "AND created_at < ? AND (created_at, request_id) > (?, ?) "
                    "ORDER BY created_at, request_id LIMIT ?",
                    params,
                ).fetchall()

            rows = await self._run(page)
            for row in rows:
                yield request_from_row(row)
            if len(rows) < batch_size:
                return
            last = rows[-1]
            after = (float(last[1]), str(last[0]))

    async def usage(self, query: UsageQuery) -> list[UsageRow]:
        columns = ", ".join((*query.columns, FACT_COLUMNS))
        where = "".join(f" AND {column} = ?" for column, _ in query.filters)
        params = (query.start, query.end, *(value for _, value in query.filters))
        rows = await self._run(
            lambda conn: conn.execute(
                f"SELECT {columns} FROM requests WHERE created_at >= ? AND created_at < ?{where}",
                params,
            ).fetchall()
        )
        return aggregate(query, rows)

    async def prune_requests(self, before: float, limit: int) -> int:
        cursor = await self._run(
            lambda conn: conn.execute(
                "DELETE FROM requests WHERE rowid IN "
                "(SELECT rowid FROM requests WHERE created_at < ? LIMIT ?)",
                (before, limit),
            )
        )
        return int(cursor.rowcount)

    async def create_key(self, key: ApiKeyRecord) -> None:
        row = key_row(key)
        await self._run(
            lambda conn: conn.execute(
                f"INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ({', '.join('?' * len(row))})", row
            )
        )

    async def list_keys(self) -> list[ApiKeyRecord]:
        rows = await self._run(
            lambda conn: conn.execute(
                f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, id"
            ).fetchall()
        )
        return [key_from_row(row) for row in rows]

    async def get_key(self, key_id: str) -> ApiKeyRecord | None:
        row = await self._run(
            lambda conn: conn.execute(
                f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)
            ).fetchone()
        )
        return key_from_row(row) if row is not None else None

    async def update_key(
        self, key_id: str, changes: Mapping[str, Any], at: float
    ) -> ApiKeyRecord | None:
        values = {**key_values(changes), "updated_at": at}
        assignments = ", ".join(f"{name} = ?" for name in values)
        await self._run(
            lambda conn: conn.execute(
                f"UPDATE api_keys SET {assignments} WHERE id = ?", (*values.values(), key_id)
            )
        )
        return await self.get_key(key_id)

    async def revoke_key(self, key_id: str, at: float) -> bool:
        cursor = await self._run(
            lambda conn: conn.execute(
                "UPDATE api_keys SET revoked_at = ?, updated_at = ? "
                "WHERE id = ? AND revoked_at IS NULL",
                (at, at, key_id),
            )
        )
        return cursor.rowcount > 0

    async def key_spend(self, now: float) -> dict[str, KeySpend]:
        periods = (day_period(now), month_period(now))
        rows = await self._run(
            lambda conn: conn.execute(
                "SELECT key_id, period, cost, tokens, requests FROM key_spend "
                "WHERE period IN (?, ?)",
                periods,
            ).fetchall()
        )
        return spend_from_rows(rows, now)

    async def list_overrides(self) -> list[OverrideRecord]:
        return await self._run(overrides.lite_list)

    async def change_override(self, record: OverrideRecord, clear: bool) -> OverrideRecord | None:
        return await self._run(lambda conn: overrides.lite_change(conn, record, clear))

    async def override_audit(self, limit: int) -> list[OverrideAudit]:
        return await self._run(lambda conn: overrides.lite_audit(conn, limit))

    async def ping(self) -> None:
        await self._run(lambda conn: conn.execute("SELECT 1").fetchone())

    async def aclose(self) -> None:
        def close(conn: sqlite3.Connection) -> None:
            conn.close()

        if self._conn is not None:
            await self._run(close)
            self._conn = None
        self._executor.shutdown(wait=True)


def _stored_ids(conn: sqlite3.Connection, ids: list[str]) -> set[str]:
    """Which of ``ids`` the log holds already (a replayed journal batch, a retry of a
    batch that committed): their rows and spend are not added twice."""
    found = conn.execute(STORED_IDS, (orjson.dumps(ids).decode(),))
    return {row[0] for row in found}


def _insert_sizes(rows: int) -> list[int]:
    """Statement sizes for ``rows`` rows: full ones, then powers of two, so that at most
    seven distinct statements are ever prepared."""
    sizes = [ROWS_PER_INSERT] * (rows // ROWS_PER_INSERT)
    rest = rows % ROWS_PER_INSERT
    size = ROWS_PER_INSERT // 2
    while rest:
        if rest >= size:
            sizes.append(size)
            rest -= size
        size //= 2
    return sizes


@functools.cache
def _insert_sql(rows: int) -> str:
    values = ", ".join([_ROW_PLACEHOLDERS] * rows)
    return f"INSERT INTO requests ({REQUEST_COLUMNS}) VALUES {values}"
