"""The ``Store`` protocol, one suite run against both backends: SQLite (a temp file)
and PostgreSQL (a unique schema on the test database)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from hybridinference.schemas.keys import ApiKeyRecord
from hybridinference.schemas.records import Attempt, RequestRecord
from hybridinference.storage import Store, open_store
from hybridinference.storage.migrations import LATEST, MIGRATIONS
from hybridinference.storage.retention import Pruner, RetentionPolicy, prune
from hybridinference.storage.usage import UsageQuery, percentile
from tests.fakes.postgres import execute as admin_sql
from tests.fakes.postgres import postgres_schema, schema_url

HOUR = 3600.0
T0 = 1_790_000_000.0 - 1_790_000_000.0 % 86_400  # midnight UTC


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/store.db"
        return
    with postgres_schema() as schema:
        yield schema_url(schema)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = open_store(store_url)
    await opened.migrate()
    yield opened
    await opened.aclose()


def record(n: int, **fields: object) -> RequestRecord:
    values: dict[str, object] = {
        "request_id": f"req-{n:04d}",
        "created_at": T0 + n,
        "endpoint": "chat",
        "key_id": "key_a",
        "model": "m1",
        "route": "fake/m1",
        "status": 200,
        "error_type": None,
        "latency_ms": 10.0 * (n + 1),
        "ttft_ms": 5.0 * (n + 1),
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "total_tokens": 7,
        "cost": 0.25,
        "stream": n % 2 == 0,
        "attempts": (Attempt(route="fake/m1", outcome="ok", latency_ms=1.5, status=200),),
    }
    values.update(fields)
    return RequestRecord(**values)  # type: ignore[arg-type]


async def test_migrations_are_idempotent(store_url: str) -> None:
    first, second = open_store(store_url), open_store(store_url)
    try:
        assert await first.schema_version() == 0
        assert await first.migrate() == [m.version for m in MIGRATIONS]
        assert await second.migrate() == []
        assert await second.schema_version() == LATEST
    finally:
        await first.aclose()
        await second.aclose()


async def test_concurrent_migrations_apply_each_version_once(store_url: str) -> None:
    stores = [open_store(store_url) for _ in range(4)]
    try:
        applied = await asyncio.gather(*(s.migrate() for s in stores))
        flat = sorted(v for versions in applied for v in versions)
        assert flat == [m.version for m in MIGRATIONS]
        assert await asyncio.gather(*(s.schema_version() for s in stores)) == [LATEST] * 4
    finally:
        for s in stores:
            await s.aclose()


async def test_writes_are_idempotent_and_spend_counts_new_rows_once(store: Store) -> None:
    batch = [record(1), record(2), record(3, key_id="key_b", cost=1.0), record(4, key_id=None)]
    assert await store.write_requests(batch) == 4
    assert await store.write_requests([*batch[1:], record(5), record(5)]) == 1
    rows = await store.recent_requests(100)
    assert sorted(r.request_id for r in rows) == [f"req-{n:04d}" for n in range(1, 6)]
    assert {r.request_id: r for r in rows}["req-0002"] == record(2)
    spend = await store.key_spend(T0 + 60)
    assert spend["key_a"].day_cost == pytest.approx(0.75)
    assert spend["key_a"].day_requests == 3
    assert spend["key_a"].month_tokens == 21
    assert spend["key_b"].month_cost == pytest.approx(1.0)
    assert "key_c" not in spend
    next_day = await store.key_spend(T0 + 86_400)  # same month (T0 is not a month's end)
    assert next_day["key_a"] == replace(spend["key_a"], day_cost=0, day_tokens=0, day_requests=0)
    assert await store.key_spend(T0 + 40 * 86_400) == {}


async def test_a_large_batch_over_stored_rows_adds_only_the_new_ones(store: Store) -> None:
    # 150 rows: several INSERT statements of different sizes on SQLite; 30 already stored
    assert await store.write_requests([record(n) for n in range(1, 31)]) == 30
    assert await store.write_requests([record(n) for n in range(1, 151)]) == 120
    rows = await store.recent_requests(1000)
    assert sorted(r.request_id for r in rows) == [f"req-{n:04d}" for n in range(1, 151)]
    assert {r.request_id: r for r in rows}["req-0137"] == record(137)
    assert (await store.key_spend(T0 + 60))["key_a"].day_requests == 150


async def test_content_and_attempts_round_trip(store: Store) -> None:
    original = record(
        7,
        content='{"request": {"messages": []}}',
        attempts=(
            Attempt(route="a", outcome="upstream_timeout", latency_ms=5.0, status=504),
            Attempt(route="b", outcome="ok", latency_ms=2.0, status=200),
        ),
        cancelled=True,
        client_ip="127.0.0.1",
        ttft_ms=None,
        trace_id="ab" * 16,
    )
    await store.write_requests([original])
    assert await store.recent_requests(1) == [original]


async def test_export_reads_a_time_range_in_order_across_batches(store: Store) -> None:
    await store.write_requests([record(n) for n in range(10)])
    exported = [r async for r in store.export_requests(T0 + 2, T0 + 8, batch_size=2)]
    assert [r.request_id for r in exported] == [f"req-{n:04d}" for n in range(2, 8)]


async def test_usage_rollup_by_model_and_hour(store: Store) -> None:
    rows = [
        record(0, latency_ms=10.0, ttft_ms=1.0),
        record(1, latency_ms=20.0, ttft_ms=2.0, status=500, error_type="upstream_error"),
        record(2, latency_ms=30.0, ttft_ms=None, status=499),
        record(3, latency_ms=40.0, ttft_ms=4.0),
        record(4, model="m2", route="fake/m2", latency_ms=7.0, cost=2.0),
        record(5, created_at=T0 + HOUR + 5, latency_ms=100.0, key_id="key_b"),
        record(6, created_at=T0 - 1, latency_ms=1.0),  # before the range
    ]
    await store.write_requests(rows)
    query = UsageQuery(start=T0, end=T0 + 2 * HOUR, bucket_seconds=3600, group_by=("model",))
    result = await store.usage(query)
    assert [(r.bucket, r.group, r.requests) for r in result] == [
        (T0, {"model": "m1"}, 4),
        (T0, {"model": "m2"}, 1),
        (T0 + HOUR, {"model": "m1"}, 1),
    ]
    m1 = result[0]
    assert m1.errors == 1 and m1.error_rate == pytest.approx(0.25)
    assert (m1.prompt_tokens, m1.completion_tokens, m1.total_tokens) == (12, 16, 28)
    assert m1.cost == pytest.approx(1.0)
    assert m1.latency_ms == pytest.approx((25.0, 38.5, 39.7))
    ttfts = [1.0, 2.0, 4.0]
    assert m1.ttft_ms == pytest.approx(tuple(percentile(ttfts, q) for q in (0.5, 0.95, 0.99)))
    assert result[1].cost == pytest.approx(2.0)
    assert result[1].latency_ms == pytest.approx((7.0, 7.0, 7.0))
    body = m1.to_json()
    assert body["latency_ms_p95"] == pytest.approx(38.5) and body["model"] == "m1"


async def test_usage_filters_and_grouping_by_key(store: Store) -> None:
    await store.write_requests(
        [record(0), record(1, key_id="key_b"), record(2, key_id="key_b", model="m2")]
    )
    mine = await store.usage(UsageQuery(start=T0, end=T0 + HOUR, key_id="key_b"))
    assert [(r.group, r.requests) for r in mine] == [({}, 2)]
    by_key = await store.usage(
        UsageQuery(start=T0, end=T0 + HOUR, bucket_seconds=86_400, group_by=("key", "model"))
    )
    assert [(r.group["key"], r.group["model"], r.requests) for r in by_key] == [
        ("key_a", "m1", 1),
        ("key_b", "m1", 1),
        ("key_b", "m2", 1),
    ]
    assert await store.usage(UsageQuery(start=T0, end=T0 + HOUR, model="nope")) == []


async def test_retention_prunes_old_rows_in_small_batches(store: Store) -> None:
    await store.write_requests([record(n, created_at=T0 - 10 * 86_400 + n) for n in range(12)])
    await store.write_requests([record(100 + n) for n in range(3)])
    assert await store.prune_requests(T0 - 86_400, limit=5) == 5
    policy = RetentionPolicy(max_age_days=1, batch_size=2, pause=0)
    assert await prune(store, policy, now=T0) == 7
    assert len(await store.recent_requests(100)) == 3


async def test_keys_create_get_update_revoke(store: Store) -> None:
    key = ApiKeyRecord(
        id="key_x",
        name="ci",
        key_hash="h" * 64,
        prefix="hi-abc",
        allowed_models=("m1", "m2"),
        created_at=T0,
        owner="team-a",
        rpm_limit=60,
        daily_budget=5.0,
    )
    await store.create_key(key)
    assert await store.get_key("key_x") == key
    assert await store.get_key("key_missing") is None
    updated = await store.update_key(
        "key_x",
        {
            "rpm_limit": None,
            "tpm_limit": 1000,
            "max_concurrency": 4,
            "monthly_budget": 50.0,
            "allowed_models": None,
            "owner": "team-b",
        },
        at=T0 + 5,
    )
    assert updated == replace(
        key,
        rpm_limit=None,
        tpm_limit=1000,
        max_concurrency=4,
        monthly_budget=50.0,
        allowed_models=None,
        owner="team-b",
        updated_at=T0 + 5,
    )
    assert await store.update_key("key_missing", {"name": "x"}, at=T0) is None
    with pytest.raises(ValueError, match="key_hash"):
        await store.update_key("key_x", {"key_hash": "evil"}, at=T0)
    assert await store.revoke_key("key_x", T0 + 9) is True
    assert await store.revoke_key("key_x", T0 + 10) is False
    listed = await store.list_keys()
    assert [(k.id, k.revoked_at, k.active) for k in listed] == [("key_x", T0 + 9, False)]
    await store.ping()


async def test_the_background_pruner_keeps_only_recent_rows(store: Store) -> None:
    await store.write_requests([record(n, created_at=T0 - 3 * 86_400) for n in range(5)])
    await store.write_requests([record(10)])
    pruner = Pruner(store, RetentionPolicy(max_age_days=2, batch_size=2, pause=0), lambda: T0)
    pruner.start()
    try:
        for _ in range(500):
            if len(await store.recent_requests(10)) == 1:
                break
            await asyncio.sleep(0.02)
    finally:
        await pruner.aclose()
    assert [r.request_id for r in await store.recent_requests(10)] == ["req-0010"]


async def test_nul_characters_are_dropped_so_both_backends_take_the_row(store: Store) -> None:
    assert await store.write_requests([record(1, model="bad\x00model")]) == 1
    assert (await store.recent_requests(1))[0].model == "badmodel"


def test_postgres_needs_no_database_privileges_beyond_its_own_schema() -> None:
    """A least-privilege role that owns its schema (no CREATE on the database) can
    migrate and write: the migration only creates a schema that is missing."""

    async def as_role(url: str) -> tuple[list[int], int]:
        store = open_store(url)
        try:
            return await store.migrate(), await store.write_requests([record(1)])
        finally:
            await store.aclose()

    with postgres_schema() as schema:
        role = f"{schema}_role"
        asyncio.run(admin_sql(f'CREATE ROLE "{role}" LOGIN'))
        try:
            asyncio.run(admin_sql(f'CREATE SCHEMA "{schema}" AUTHORIZATION "{role}"'))
            applied, written = asyncio.run(
                as_role(schema_url(schema).replace("postgres@", f"{role}@"))
            )
            assert (applied, written) == ([m.version for m in MIGRATIONS], 1)
        finally:
            asyncio.run(admin_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            asyncio.run(admin_sql(f'DROP ROLE IF EXISTS "{role}"'))
