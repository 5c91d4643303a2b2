"""Log-writer throughput: how many request rows per second each backend stores, in
batches as the ``LogWriter`` sends them (PostgreSQL: COPY to a staging table, then
``INSERT ... ON CONFLICT DO NOTHING`` and the spend upsert; SQLite: the same through
``executemany``).

    .venv/bin/python bench/storage/write.py [--rows 100000] [--batch 500]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time

import asyncpg

from hybridinference.schemas.records import Attempt, RequestRecord
from hybridinference.storage import open_store

DSN = "postgresql://postgres@127.0.0.1:5432/test"


def make(n: int) -> RequestRecord:
    return RequestRecord(
        request_id=f"bench-{n:09d}",
        created_at=time.time(),
        endpoint="chat",
        key_id=f"key_{n % 50}",
        model=f"model-{n % 8}",
        route=f"provider-{n % 3}/model-{n % 8}",
        status=200,
        error_type=None,
        latency_ms=50.0 + n % 1000,
        ttft_ms=10.0 + n % 300,
        prompt_tokens=100,
        completion_tokens=20,
        total_tokens=120,
        cost=0.0001,
        stream=n % 2 == 0,
        attempts=(Attempt(route="provider-0/model-0", outcome="ok", latency_ms=49.0, status=200),),
    )


async def run(url: str, rows: int, batch: int) -> float:
    store = open_store(url)
    await store.migrate()
    records = [make(n) for n in range(rows)]
    began = time.perf_counter()
    for low in range(0, rows, batch):
        await store.write_requests(records[low : low + batch])
    elapsed = time.perf_counter() - began
    await store.aclose()
    return rows / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    schema = f"bench_write_{os.getpid()}"
    try:
        rate = await run(f"{DSN}?schema={schema}", args.rows, args.batch)
        print(f"postgresql: {rate:,.0f} rows/s (batches of {args.batch})")
    finally:
        conn = await asyncpg.connect(DSN)
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        await conn.close()
    with tempfile.TemporaryDirectory() as folder:
        rate = await run(f"sqlite:///{folder}/bench.db", args.rows, args.batch)
        print(f"sqlite: {rate:,.0f} rows/s (batches of {args.batch})")


if __name__ == "__main__":
    asyncio.run(main())
