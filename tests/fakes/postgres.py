"""The test PostgreSQL (127.0.0.1:5432, database ``test``, trust auth): a unique schema
per test so parallel runs never collide, dropped afterwards.

Missing PostgreSQL fails the test in CI (CI=true) and skips it elsewhere, with the reason.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg
import pytest

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_DSN = f"postgresql://postgres@{PG_HOST}:{PG_PORT}/test"


async def execute(sql: str, dsn: str = PG_DSN) -> None:
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def require_postgres() -> None:
    try:
        asyncio.run(execute("SELECT 1"))
    except (OSError, asyncpg.PostgresError) as exc:
        reason = f"PostgreSQL at {PG_HOST}:{PG_PORT} database test is not reachable: {exc!r}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


def new_schema() -> str:
    return f"hi_test_{os.getpid()}_{secrets.token_hex(4)}"


def drop_schema(schema: str) -> None:
    asyncio.run(execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def schema_url(schema: str, host: str = PG_HOST, port: int = PG_PORT) -> str:
    return f"postgresql://postgres@{host}:{port}/test?schema={schema}"


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A fresh schema name (created by the store's first migration), dropped after."""
    require_postgres()
    schema = new_schema()
    try:
        yield schema
    finally:
        drop_schema(schema)


async def fetch(schema: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(PG_DSN, timeout=5, server_settings={"search_path": schema})
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()
