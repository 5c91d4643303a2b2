"""Usage-rollup benchmark on PostgreSQL: N generated request rows (default 10 million,
spread over 30 days), then the 24-hour per-hour rollup ``/admin/usage`` runs, timed.

    .venv/bin/python bench/storage/rollup.py [--rows 10000000] [--dsn postgresql://...]

Rows are generated inside PostgreSQL with ``generate_series`` (no client round trips),
into a schema of their own that is created by the real migrations (same tables, same
indexes as a gateway) and dropped at the end unless ``--keep``. Results go to stdout;
docs/storage.md records them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from pathlib import Path

import asyncpg

from hybridinference.storage.postgres import USAGE_WORK_MEM, PostgresStore, usage_sql
from hybridinference.storage.usage import UsageQuery

DAY = 86_400.0
GENERATE = """
INSERT INTO requests (request_id, created_at, endpoint, key_id, model, route, status,
    error_type, latency_ms, ttft_ms, prompt_tokens, completion_tokens, total_tokens, cost,
    stream, attempts, cancelled, client_ip, content)
SELECT 'bench-' || lpad(i::text, 9, '0'),
       $1::float8 + i * $2::float8,
       'chat',
       'key_' || (i % 50),
       'model-' || (i % 8),
       'provider-' || (i % 3) || '/model-' || (i % 8),
       CASE WHEN i % 50 = 0 THEN 502 ELSE 200 END,
       CASE WHEN i % 50 = 0 THEN 'upstream_error' END,
       50 + (i * 7919) % 1000,
       CASE WHEN i % 2 = 0 THEN 10 + (i * 104729) % 300 END,
       100 + i % 400, 20 + i % 300, 120 + i % 400 + i % 300,
       (100 + i % 400) * 0.000001,
       i % 2, '[]', 0, '127.0.0.1', NULL
FROM generate_series($3::bigint, $4::bigint) AS i
"""


async def generate(conn: asyncpg.Connection, rows: int, start: float, chunk: int) -> None:
    """Load with the secondary indexes dropped, then rebuild exactly the ones the
    migrations made (much faster than maintaining them row by row; same end state)."""
    indexes = await conn.fetch(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
        "AND tablename = 'requests' AND indexname <> 'requests_pkey'"
    )
    for index in indexes:
        await conn.execute(f'DROP INDEX "{index["indexname"]}"')
    step = 30 * DAY / rows
    for low in range(0, rows, chunk):
        high = min(rows, low + chunk) - 1
        await conn.execute(GENERATE, start, step, low, high)
        print(f"  generated {high + 1:,} rows", flush=True)
    for index in indexes:
        await conn.execute(index["indexdef"])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a local process (the PostgreSQL backend)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def server_cpu(conn: asyncpg.Connection, pid: int, query: UsageQuery) -> float:
    """CPU the database spends on the store's rollup SQL, whatever else runs on the
    machine (wall time on a shared, loaded machine says little)."""
    async with conn.transaction():
        await conn.execute(f"SET LOCAL work_mem = '{USAGE_WORK_MEM}'; SET LOCAL jit = off")
        before = cpu_seconds(pid)
        await conn.fetch(usage_sql(query), query.start, query.end, float(query.bucket_seconds))
        return cpu_seconds(pid) - before


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="Keep the schema afterwards.")
    parser.add_argument("--schema", help="Reuse the rows of a kept schema (from --keep).")
    parser.add_argument("--now", type=float, help="The generation time of a kept schema.")
    args = parser.parse_args()
    schema = args.schema or f"bench_rollup_{os.getpid()}"
    store = PostgresStore(args.dsn, schema)
    await store.migrate()
    now = args.now or time.time()
    conn = await asyncpg.connect(args.dsn, server_settings={"search_path": schema})
    try:
        if not args.schema:
            began = time.perf_counter()
            await generate(conn, args.rows, now - 30 * DAY, chunk=1_000_000)
            print(f"generated {args.rows:,} rows in {time.perf_counter() - began:.1f} s")
            print(f"schema {schema}, now {now!r}")
            began = time.perf_counter()
            await conn.execute("VACUUM ANALYZE requests")
            print(f"vacuum analyze: {time.perf_counter() - began:.1f} s")
        backend = await conn.fetchval("SELECT pg_backend_pid()")
        for group_by in ((), ("model",), ("key",), ("key", "model")):
            query = UsageQuery(start=now - DAY, end=now, bucket_seconds=3600, group_by=group_by)
            await store.usage(query)  # warm the cache
            timings, cpu = [], []
            for _ in range(args.runs):
                began = time.perf_counter()
                result = await store.usage(query)
                timings.append(time.perf_counter() - began)
                cpu.append(await server_cpu(conn, backend, query))
            in_range = sum(r.requests for r in result)
            print(
                f"24 h per-hour rollup, group_by={','.join(group_by) or '-'}: "
                f"{len(result)} rows over {in_range:,} requests; wall median "
                f"{statistics.median(timings) * 1000:.0f} ms (max {max(timings) * 1000:.0f}); "
                f"database CPU median {statistics.median(cpu) * 1000:.0f} ms ({args.runs} runs)"
            )
        explained = UsageQuery(start=now - DAY, end=now, group_by=("model",))
        async with conn.transaction():
            await conn.execute(f"SET LOCAL work_mem = '{USAGE_WORK_MEM}'; SET LOCAL jit = off")
            plan = await conn.fetch(
                "EXPLAIN (ANALYZE, BUFFERS) " + usage_sql(explained), now - DAY, now, 3600.0
            )
        print("\n".join(row[0] for row in plan))
    finally:
        if not args.keep:
            await conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await conn.close()
        await store.aclose()


if __name__ == "__main__":
    asyncio.run(main())
