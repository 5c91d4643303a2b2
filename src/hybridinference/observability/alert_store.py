"""Where the alert logger keeps alerts: an ``alerts`` table in the gateway's database
(SQLite or PostgreSQL), created idempotently on first use and kept apart from the
request-log schema so neither side's migrations touch the other's table."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import orjson

from hybridinference.background import background_executor
from hybridinference.errors import ConfigError
from hybridinference.observability.alerts import StoredAlert
from hybridinference.sqlite_file import connect_wal

T = TypeVar("T")
COLUMNS = (
    "fingerprint, starts_at, name, status, severity, summary, ends_at, labels, annotations, "
    "generator_url, receiver, received_at, updated_at"
)
UPDATED_ON_CONFLICT = (
    "status = excluded.status, ends_at = excluded.ends_at, summary = excluded.summary, "
    "annotations = excluded.annotations, updated_at = excluded.updated_at"
)


def _create_table(real: str) -> str:
    return f"""CREATE TABLE IF NOT EXISTS alerts (
    fingerprint TEXT NOT NULL,
    starts_at {real} NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    severity TEXT,
    summary TEXT,
    ends_at {real},
    labels TEXT NOT NULL,
    annotations TEXT NOT NULL,
    generator_url TEXT NOT NULL,
    receiver TEXT NOT NULL,
    received_at {real} NOT NULL,
    updated_at {real} NOT NULL,
    PRIMARY KEY (fingerprint, starts_at)
)"""


INDEX = "CREATE INDEX IF NOT EXISTS alerts_updated_at ON alerts (updated_at)"


class AlertStore(Protocol):
    async def save(self, alerts: Sequence[StoredAlert]) -> None:
        """Insert, or update the row of an alert already stored (same fingerprint/start)."""

    async def recent(self, status: str | None, limit: int) -> list[StoredAlert]:
        """Newest first by last notification."""

    async def aclose(self) -> None: ...


def _row(alert: StoredAlert) -> tuple[Any, ...]:
    return (
        alert.fingerprint,
        alert.starts_at,
        alert.name,
        alert.status,
        alert.severity,
        alert.summary,
        alert.ends_at,
        orjson.dumps(alert.labels).decode(),
        orjson.dumps(alert.annotations).decode(),
        alert.generator_url,
        alert.receiver,
        alert.received_at,
        alert.updated_at,
    )


def _alert(row: Sequence[Any]) -> StoredAlert:
    return StoredAlert(
        fingerprint=row[0],
        starts_at=float(row[1]),
        name=row[2],
        status=row[3],
        severity=row[4],
        summary=row[5],
        ends_at=float(row[6]) if row[6] is not None else None,
        labels=orjson.loads(row[7]),
        annotations=orjson.loads(row[8]),
        generator_url=row[9],
        receiver=row[10],
        received_at=float(row[11]),
        updated_at=float(row[12]),
    )


class SQLiteAlertStore:
    """One connection on one dedicated thread (the event loop never touches the disk)."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._executor = background_executor("alerts-sqlite")
        self._conn: sqlite3.Connection | None = None

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = connect_wal(self._path)
            conn.execute(_create_table("REAL"))
            conn.execute(INDEX)
            self._conn = conn
        return self._conn

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(self._connect()))

    async def save(self, alerts: Sequence[StoredAlert]) -> None:
        rows = [_row(a) for a in alerts]
        marks = ", ".join("?" * 13)

        def write(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute("BEGIN")
                conn.executemany(
                    f"INSERT INTO alerts ({COLUMNS}) VALUES ({marks}) "
                    f"ON CONFLICT (fingerprint, starts_at) DO UPDATE SET {UPDATED_ON_CONFLICT}",
                    rows,
                )

        await self._run(write)

    async def recent(self, status: str | None, limit: int) -> list[StoredAlert]:
        where, params = ("WHERE status = ?", (status, limit)) if status else ("", (limit,))
        sql = f"SELECT {COLUMNS} FROM alerts {where} ORDER BY updated_at DESC LIMIT ?"
        rows = await self._run(lambda conn: conn.execute(sql, params).fetchall())
        return [_alert(r) for r in rows]

    async def aclose(self) -> None:
        if self._conn is not None:
            conn = self._conn
            await self._run(lambda _: conn.close())
            self._conn = None
        self._executor.shutdown(wait=True)


def split_schema(url: str) -> tuple[str, str]:
    """``postgresql://...?schema=NAME`` (as ``storage.url`` allows) → (DSN, schema)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    schema = next((v for k, v in query if k == "schema"), "public")
    if not schema.replace("_", "").isalnum():
        raise ConfigError(f"alert database: schema {schema!r} must be letters, digits and _")
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


class PostgresAlertStore:
    def __init__(self, url: str) -> None:
        self._dsn, self._schema = split_schema(url)
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def _ready(self) -> asyncpg.Pool:
        async with self._lock:
            if self._pool is None:
                pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=1,
                    max_size=4,
                    server_settings={"search_path": self._schema},
                )
                async with pool.acquire() as conn:
                    await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self._schema}"')
                    await conn.execute(_create_table("DOUBLE PRECISION"))
                    await conn.execute(INDEX)
                self._pool = pool
            return self._pool

    async def save(self, alerts: Sequence[StoredAlert]) -> None:
        pool = await self._ready()
        marks = ", ".join(f"${i}" for i in range(1, 14))
        async with pool.acquire() as conn:
            await conn.executemany(
                f"INSERT INTO alerts ({COLUMNS}) VALUES ({marks}) "
                f"ON CONFLICT (fingerprint, starts_at) DO UPDATE SET {UPDATED_ON_CONFLICT}",
                [_row(a) for a in alerts],
            )

    async def recent(self, status: str | None, limit: int) -> list[StoredAlert]:
        pool = await self._ready()
        if status:
            sql = (
                f"SELECT {COLUMNS} FROM alerts WHERE status = $1 ORDER BY updated_at DESC LIMIT $2"
            )
            rows = await pool.fetch(sql, status, limit)
        else:
            sql = f"SELECT {COLUMNS} FROM alerts ORDER BY updated_at DESC LIMIT $1"
            rows = await pool.fetch(sql, limit)
        return [_alert(tuple(r)) for r in rows]

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


ALERT_BACKENDS: Mapping[str, Callable[[str], AlertStore]] = {
    "sqlite": lambda url: SQLiteAlertStore(url.removeprefix("sqlite:///")),
    "postgresql": PostgresAlertStore,
    "postgres": PostgresAlertStore,
}


def open_alert_store(url: str) -> AlertStore:
    factory = ALERT_BACKENDS.get(url.split(":", 1)[0])
    if factory is None:
        raise ConfigError(
            f"alert database: unknown URL scheme in {url.split(':', 1)[0]!r} "
            f"(expected one of {sorted(ALERT_BACKENDS)})"
        )
    return factory(url)
