"""The PostgreSQL store (asyncpg): a small connection pool, COPY-based batch inserts.

``postgresql://user@host:port/db?schema=NAME`` puts every table in schema ``NAME``
(default ``public``); the schema is created by the first migration run. Request rows
are COPY'd into a per-connection temporary table, then moved with ``INSERT ... ON
CONFLICT DO NOTHING`` so a replayed row is never duplicated and only new rows add to
their key's spend, all in one transaction.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from hybridinference.errors import ConfigError
from hybridinference.schemas.keys import ApiKeyRecord, KeySpend
from hybridinference.schemas.overrides import OverrideAudit, OverrideRecord
from hybridinference.schemas.records import RequestRecord
from hybridinference.storage import migrations, overrides
from hybridinference.storage.rows import (
    KEY_COLUMNS,
    KEY_FIELDS,
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
from hybridinference.storage.usage import QUANTILES, UsageQuery, UsageRow, sort_rows

STAGE = "requests_stage"
CONNECT_TIMEOUT = 5.0
COMMAND_TIMEOUT = 30.0
POOL_SIZE = 10
CREATE_STAGE = (
    f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} (LIKE requests INCLUDING DEFAULTS) "
    "ON COMMIT DELETE ROWS"
)
INSERT_STAGED = (
    f"INSERT INTO requests ({REQUEST_COLUMNS}) SELECT {REQUEST_COLUMNS} FROM {STAGE} "
    "ORDER BY request_id ON CONFLICT (request_id) DO NOTHING RETURNING request_id"
)
ADD_SPEND = (
    "INSERT INTO key_spend AS s (key_id, period, cost, tokens, requests) "
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key_id, period) DO UPDATE SET "
    "cost = s.cost + excluded.cost, tokens = s.tokens + excluded.tokens, "
    "requests = s.requests + excluded.requests"
)
ERROR = "status >= 400 AND status <> 499"
USAGE_WORK_MEM = "64MB"  # the percentile sorts stay in memory


def split_url(url: str) -> tuple[str, str]:
    """(DSN without our ``schema`` parameter, schema name)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    schema = next((v for k, v in query if k == "schema"), "public")
    if not schema.replace("_", "").isalnum():
        raise ConfigError(f"storage.url: schema {schema!r} must be letters, digits and _")
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


class PostgresStore:
    def __init__(self, dsn: str, schema: str) -> None:
        self._dsn = dsn
        self.schema = schema
        self._pool: asyncpg.Pool | None = None
        self._pool_lock = asyncio.Lock()

    @classmethod
    def from_url(cls, url: str) -> PostgresStore:
        return cls(*split_url(url.replace("postgres://", "postgresql://", 1)))

    async def _get_pool(self) -> asyncpg.Pool:
        async with self._pool_lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=0,  # no background reconnect loop while the database is away
                    max_size=POOL_SIZE,
                    timeout=CONNECT_TIMEOUT,
                    command_timeout=COMMAND_TIMEOUT,
                    server_settings={
                        "search_path": self.schema,
                        "application_name": "hybridinference",
                    },
                )
            return self._pool

    async def migrate(self) -> list[int]:
        pool = await self._get_pool()
        async with pool.acquire() as conn, conn.transaction():
            # Serialise concurrent starters on this schema; released at commit.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self.schema)
            # Only when missing: CREATE SCHEMA needs CREATE on the database even with
            # IF NOT EXISTS, which a least-privilege role on ``public`` may not have.
            if not await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", self.schema
            ):
                await conn.execute(f'CREATE SCHEMA "{self.schema}"')
            await conn.execute(migrations.version_table_sql("DOUBLE PRECISION"))
            applied = {r[0] for r in await conn.fetch("SELECT version FROM schema_migrations")}
            done: list[int] = []
            for migration in migrations.pending(applied):
                for statement in migration.statements["postgresql"]:
                    await conn.execute(statement)
                await conn.execute(
                    "INSERT INTO schema_migrations VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    time.time(),
                )
                done.append(migration.version)
            return done

    async def schema_version(self) -> int:
        pool = await self._get_pool()
        exists = await pool.fetchval(
            "SELECT to_regclass($1) IS NOT NULL", f'"{self.schema}".schema_migrations'
        )
        if not exists:
            return 0
        return int(await pool.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations"))

    async def write_requests(self, records: Sequence[RequestRecord]) -> int:
        unique = list({r.request_id: r for r in reversed(records)}.values())
        pool = await self._get_pool()
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(CREATE_STAGE)
            await conn.copy_records_to_table(
                STAGE, records=[request_row(r) for r in unique], columns=list(REQUEST_FIELDS)
            )
            inserted = {row[0] for row in await conn.fetch(INSERT_STAGED)}
            new = [r for r in unique if r.request_id in inserted]
            deltas = spend_deltas(new)
            if deltas:
                await conn.executemany(ADD_SPEND, deltas)
            return len(new)

    async def recent_requests(self, limit: int) -> list[RequestRecord]:
        pool = await self._get_pool()
        rows = await pool.fetch(
            f"SELECT {REQUEST_COLUMNS} FROM requests ORDER BY created_at DESC LIMIT $1", limit
        )
        return [request_from_row(tuple(row)) for row in rows]

    async def export_requests(
        self, start: float, end: float, batch_size: int = 5000
    ) -> AsyncIterator[RequestRecord]:
        pool = await self._get_pool()
        after: tuple[float, str] = (start, "")
        while True:
            rows = await pool.fetch(
                f"SELECT {REQUEST_COLUMNS} FROM requests WHERE created_at >= $1 "
                "AND created_at < $2 AND (created_at, request_id) > ($3, $4) "
                "ORDER BY created_at, request_id LIMIT $5",
                start,
                end,
                *after,
                batch_size,
            )
            for row in rows:
                yield request_from_row(tuple(row))
            if len(rows) < batch_size:
                return
            after = (float(rows[-1]["created_at"]), str(rows[-1]["request_id"]))

    async def usage(self, query: UsageQuery) -> list[UsageRow]:
        pool = await self._get_pool()
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            # In-memory sorts; no JIT (its compile time exceeds its gain on these scans).
            await conn.execute(f"SET LOCAL work_mem = '{USAGE_WORK_MEM}'; SET LOCAL jit = off")
            rows = await conn.fetch(
                usage_sql(query),
                query.start,
                query.end,
                float(query.bucket_seconds),
                *(value for _, value in query.filters),
            )
        return sort_rows(_usage_row(query, tuple(row)) for row in rows)

    async def prune_requests(self, before: float, limit: int) -> int:
        pool = await self._get_pool()
        status = await pool.execute(
            "DELETE FROM requests WHERE request_id IN (SELECT request_id FROM requests "
            "WHERE created_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)",
            before,
            limit,
        )
        return int(status.rsplit(" ", 1)[-1])

    async def create_key(self, key: ApiKeyRecord) -> None:
        pool = await self._get_pool()
        placeholders = ", ".join(f"${i}" for i in range(1, len(KEY_FIELDS) + 1))
        await pool.execute(
            f"INSERT INTO api_keys ({KEY_COLUMNS}) VALUES ({placeholders})", *key_row(key)
        )

    async def list_keys(self) -> list[ApiKeyRecord]:
        pool = await self._get_pool()
        rows = await pool.fetch(f"SELECT {KEY_COLUMNS} FROM api_keys ORDER BY created_at, id")
        return [key_from_row(tuple(row)) for row in rows]

    async def get_key(self, key_id: str) -> ApiKeyRecord | None:
        pool = await self._get_pool()
        row = await pool.fetchrow(f"SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1", key_id)
        return key_from_row(tuple(row)) if row is not None else None

    async def update_key(
        self, key_id: str, changes: Mapping[str, Any], at: float
    ) -> ApiKeyRecord | None:
        values = {**key_values(changes), "updated_at": at}
        assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(values, 2))
        pool = await self._get_pool()
        row = await pool.fetchrow(
            f"UPDATE api_keys SET {assignments} WHERE id = $1 RETURNING {KEY_COLUMNS}",
            key_id,
            *values.values(),
        )
        return key_from_row(tuple(row)) if row is not None else None

    async def revoke_key(self, key_id: str, at: float) -> bool:
        pool = await self._get_pool()
        status = await pool.execute(
            "UPDATE api_keys SET revoked_at = $2, updated_at = $2 "
            "WHERE id = $1 AND revoked_at IS NULL",
            key_id,
            at,
        )
        return status != "UPDATE 0"

    async def key_spend(self, now: float) -> dict[str, KeySpend]:
        pool = await self._get_pool()
        rows = await pool.fetch(
            "SELECT key_id, period, cost, tokens, requests FROM key_spend "
            "WHERE period = ANY($1::text[])",
            [day_period(now), month_period(now)],
        )
        return spend_from_rows((tuple(row) for row in rows), now)

    async def list_overrides(self) -> list[OverrideRecord]:
        return await overrides.pg_list(await self._get_pool())

    async def change_override(self, record: OverrideRecord, clear: bool) -> OverrideRecord | None:
        return await overrides.pg_change(await self._get_pool(), record, clear)

    async def override_audit(self, limit: int) -> list[OverrideAudit]:
        return await overrides.pg_audit(await self._get_pool(), limit)

    async def ping(self) -> None:
        pool = await self._get_pool()
        await pool.fetchval("SELECT 1")

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None


def usage_sql(query: UsageQuery) -> str:
    """One index range scan per time bucket (a LATERAL subquery per bucket start): each
    bucket's rows are sorted for the percentiles on their own, small and in memory,
    instead of one sort of the whole range. ``$1``/``$2``: range, ``$3``: bucket size,
    ``$4...``: the filters."""
    dims = ", ".join(query.columns)
    where = "".join(f" AND {column} = ${i}" for i, (column, _) in enumerate(query.filters, 4))
    quantiles = f"ARRAY[{', '.join(str(q) for q in QUANTILES)}]::float8[]"
    return (
        "SELECT b.n * $3::float8, g.* FROM generate_series(floor($1::float8 / $3::float8)::bigint, "
        "ceil($2::float8 / $3::float8)::bigint - 1) AS b(n) CROSS JOIN LATERAL ("
        f"SELECT {dims + ', ' if dims else ''}count(*), count(*) FILTER (WHERE {ERROR}), "
        "sum(prompt_tokens), sum(completion_tokens), sum(total_tokens), sum(cost), "
        f"percentile_cont({quantiles}) WITHIN GROUP (ORDER BY latency_ms), "
        f"percentile_cont({quantiles}) WITHIN GROUP (ORDER BY ttft_ms) "
        "FROM requests WHERE created_at >= greatest(b.n * $3::float8, $1::float8) "
        f"AND created_at < least((b.n + 1) * $3::float8, $2::float8){where}"
        f"{' GROUP BY ' + dims if dims else ''} HAVING count(*) > 0) AS g"
    )


def _usage_row(query: UsageQuery, row: tuple[Any, ...]) -> UsageRow:
    width = len(query.group_by)
    bucket, *dims = row[: width + 1]
    requests, errors, prompt, completion, total, cost, latency, ttft = row[width + 1 :]
    return UsageRow(
        bucket=float(bucket),
        group={name: dims[i] for i, name in enumerate(query.group_by)},
        requests=int(requests),
        errors=int(errors),
        prompt_tokens=int(prompt),
        completion_tokens=int(completion),
        total_tokens=int(total),
        cost=float(cost),
        latency_ms=tuple(latency) if latency is not None else (None,) * len(QUANTILES),
        ttft_ms=tuple(ttft) if ttft is not None else (None,) * len(QUANTILES),
    )
