"""The embedded SQLite store: one file, one connection, one dedicated thread.

Every call runs on the same worker thread (sqlite3 connections are not thread-safe and
the event loop must never block on disk).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson

from hybridinference.schemas.keys import ApiKeyRecord
from hybridinference.schemas.records import Attempt, RequestRecord

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    endpoint TEXT NOT NULL,
    key_id TEXT,
    model TEXT,
    route TEXT,
    status INTEGER NOT NULL,
    error_type TEXT,
    latency_ms REAL NOT NULL,
    ttft_ms REAL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    total_tokens INTEGER NOT NULL,
    cost REAL NOT NULL,
    stream INTEGER NOT NULL,
    attempts TEXT NOT NULL,
    cancelled INTEGER NOT NULL,
    client_ip TEXT,
    content TEXT
);
CREATE INDEX IF NOT EXISTS requests_created_at ON requests (created_at);
CREATE INDEX IF NOT EXISTS requests_key_created ON requests (key_id, created_at);
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    allowed_models TEXT,
    created_at REAL NOT NULL,
    revoked_at REAL
);
"""
REQUEST_COLUMNS = (
    "request_id, created_at, endpoint, key_id, model, route, status, error_type, latency_ms, "
    "ttft_ms, prompt_tokens, completion_tokens, total_tokens, cost, stream, attempts, "
    "cancelled, client_ip, content"
)
KEY_COLUMNS = "id, name, key_hash, prefix, allowed_models, created_at, revoked_at"


class SQLiteStore:
    def __init__(self, path: str) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
        self._conn: sqlite3.Connection | None = None

    @classmethod
    def from_url(cls, url: str) -> SQLiteStore:
        return cls(url.removeprefix("sqlite:///"))

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            if self._path != ":memory:":
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self._path, isolation_level=None, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
            self._conn = conn
        return self._conn

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(self._connect()))

    async def write_requests(self, records: Sequence[RequestRecord]) -> None:
        rows = [_request_row(r) for r in records]

        def write(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute("BEGIN")
                conn.executemany(
                    f"INSERT OR IGNORE INTO requests ({REQUEST_COLUMNS}) "
                    f"VALUES ({', '.join('?' * 19)})",
                    rows,
                )

        await self._run(write)

    async def recent_requests(self, limit: int) -> list[RequestRecord]:
        def read(conn: sqlite3.Connection) -> list[Any]:
            return conn.execute(
                f"SELECT {REQUEST_COLUMNS} FROM requests ORDER BY created_at DESC LIMIT ?",
                (limit,),
            ).fetchall()

        return [_request_from_row(row) for row in await self._run(read)]

    async def create_key(self, key: ApiKeyRecord) -> None:
        allowed = orjson.dumps(list(key.allowed_models)).decode() if key.allowed_models else None
        row = (key.id, key.name, key.key_hash, key.prefix, allowed, key.created_at, key.revoked_at)
        await self._run(
            lambda conn: conn.execute(
                f"INSERT INTO api_keys ({KEY_COLUMNS}) VALUES (?,?,?,?,?,?,?)", row
            )
        )

    async def list_keys(self) -> list[ApiKeyRecord]:
        rows = await self._run(
            lambda conn: conn.execute(
                f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at"
            ).fetchall()
        )
        return [_key_from_row(row) for row in rows]

    async def revoke_key(self, key_id: str, at: float) -> bool:
        cursor = await self._run(
            lambda conn: conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (at, key_id),
            )
        )
        return cursor.rowcount > 0

    async def ping(self) -> None:
        await self._run(lambda conn: conn.execute("SELECT 1").fetchone())

    async def aclose(self) -> None:
        def close(conn: sqlite3.Connection) -> None:
            conn.close()

        if self._conn is not None:
            await self._run(close)
            self._conn = None
        self._executor.shutdown(wait=True)


def _request_row(r: RequestRecord) -> tuple[object, ...]:
    attempts = orjson.dumps(
        [
            {"route": a.route, "outcome": a.outcome, "latency_ms": a.latency_ms, "status": a.status}
            for a in r.attempts
        ]
    ).decode()
    return (
        r.request_id,
        r.created_at,
        r.endpoint,
        r.key_id,
        r.model,
        r.route,
        r.status,
        r.error_type,
        r.latency_ms,
        r.ttft_ms,
        r.prompt_tokens,
        r.completion_tokens,
        r.total_tokens,
        r.cost,
        int(r.stream),
        attempts,
        int(r.cancelled),
        r.client_ip,
        r.content,
    )


def _request_from_row(row: Any) -> RequestRecord:
    (
        request_id,
        created_at,
        endpoint,
        key_id,
        model,
        route,
        status,
        error_type,
        latency_ms,
        ttft_ms,
        prompt_tokens,
        completion_tokens,
        total_tokens,
        cost,
        stream,
        attempts,
        cancelled,
        client_ip,
        content,
    ) = row
    return RequestRecord(
        request_id=str(request_id),
        created_at=float(created_at),
        endpoint=str(endpoint),
        key_id=key_id,
        model=model,
        route=route,
        status=int(status),
        error_type=error_type,
        latency_ms=float(latency_ms),
        ttft_ms=ttft_ms,
        prompt_tokens=int(prompt_tokens),
        completion_tokens=int(completion_tokens),
        total_tokens=int(total_tokens),
        cost=float(cost),
        stream=bool(stream),
        attempts=tuple(Attempt(**a) for a in orjson.loads(str(attempts))),
        cancelled=bool(cancelled),
        client_ip=client_ip,
        content=content,
    )


def _key_from_row(row: Any) -> ApiKeyRecord:
    key_id, name, key_hash, prefix, allowed, created_at, revoked_at = row
    return ApiKeyRecord(
        id=str(key_id),
        name=str(name),
        key_hash=str(key_hash),
        prefix=str(prefix),
        allowed_models=tuple(orjson.loads(str(allowed))) if allowed else None,
        created_at=float(created_at),
        revoked_at=float(revoked_at) if revoked_at is not None else None,
    )
