"""The limiter backends against the same scenarios: the in-process one and the Redis one
(real Redis at 127.0.0.1:6379, one key prefix per test so parallel runs never collide)."""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from hybridinference.limits.base import LimitBackend
from hybridinference.limits.memory import MemoryBackend
from hybridinference.limits.model import Admission, Calendar, KeyLimits, Settlement
from hybridinference.limits.redis_store import RedisBackend, connect

REDIS_URL = "redis://127.0.0.1:6379/0"
CALENDAR = Calendar(day="2026-11-29", month="2026-11", day_reset=3600.0, month_reset=86400.0)


def redis_available() -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        return False
    return True


def require_redis() -> None:
    if not redis_available():
        if os.environ.get("CI"):
            pytest.fail("Redis is not running on 127.0.0.1:6379 (CI needs it)")
        pytest.skip("Redis is not running on 127.0.0.1:6379")


def admission(limits: KeyLimits, tokens: int = 10, cost: int = 0, subject: str = "k1") -> Admission:
    return Admission(subject, secrets.token_hex(6), limits, tokens, cost, CALENDAR)


@pytest.fixture
def prefix() -> str:
    return f"test-{secrets.token_hex(6)}"


async def _cleanup(prefix: str) -> None:
    client = Redis.from_url(REDIS_URL)
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def backend(request: pytest.FixtureRequest, prefix: str) -> AsyncIterator[LimitBackend]:
    if request.param == "memory":
        yield MemoryBackend(time.monotonic, lease_seconds=30)
        return
    require_redis()
    store = RedisBackend(connect(REDIS_URL, timeout=2), prefix=prefix, lease_seconds=30)
    yield store
    await store.aclose()
    await _cleanup(prefix)


async def test_requests_per_minute(backend: LimitBackend) -> None:
    limits = KeyLimits(rpm=5)
    decisions = [await backend.admit(admission(limits)) for _ in range(8)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 3
    assert decisions[0].requests is not None and decisions[0].requests.remaining == 4
    assert decisions[4].requests is not None and decisions[4].requests.remaining == 0
    refused = decisions[5]
    assert refused.refused_by == "requests"
    assert 0 < refused.retry_after <= 60
    assert refused.tokens is None


async def test_subjects_are_independent(backend: LimitBackend) -> None:
    limits = KeyLimits(rpm=1)
    assert (await backend.admit(admission(limits, subject="a"))).allowed
    assert (await backend.admit(admission(limits, subject="b"))).allowed
    assert not (await backend.admit(admission(limits, subject="a"))).allowed


async def test_tokens_reserved_then_reconciled(backend: LimitBackend) -> None:
    limits = KeyLimits(tpm=100)
    first = admission(limits, tokens=40)
    assert (await backend.admit(first)).allowed
    second = await backend.admit(admission(limits, tokens=40))
    assert second.allowed and second.tokens is not None and second.tokens.remaining == 20
    refused = await backend.admit(admission(limits, tokens=40))
    assert not refused.allowed and refused.refused_by == "tokens"
    assert 0 < refused.retry_after <= 60
    await backend.settle([Settlement(first, tokens=10, cost_nanos=0)])  # it used fewer
    assert (await backend.admit(admission(limits, tokens=40))).allowed


async def test_request_larger_than_the_whole_limit_is_refused(backend: LimitBackend) -> None:
    decision = await backend.admit(admission(KeyLimits(tpm=100), tokens=101))
    assert not decision.allowed and decision.refused_by == "tokens"


async def test_concurrency_slots_are_released(backend: LimitBackend) -> None:
    limits = KeyLimits(concurrency=2)
    held = [admission(limits), admission(limits)]
    for item in held:
        assert (await backend.admit(item)).allowed
    third = await backend.admit(admission(limits))
    assert not third.allowed and third.refused_by == "concurrency"
    await backend.settle([Settlement(held[0], tokens=0, cost_nanos=0)])
    assert (await backend.admit(admission(limits))).allowed


async def test_budgets_reserve_estimates_and_settle_real_cost(backend: LimitBackend) -> None:
    limits = KeyLimits(daily_budget=1.0, monthly_budget=5.0)
    third_of_a_dollar = 333_333_333
    items = [admission(limits, cost=third_of_a_dollar) for _ in range(3)]
    for item in items:
        assert (await backend.admit(item)).allowed
    refused = await backend.admit(admission(limits, cost=third_of_a_dollar))
    assert refused.refused_by == "daily_budget"
    assert refused.retry_after == pytest.approx(CALENDAR.day_reset)
    await backend.settle([Settlement(items[0], tokens=0, cost_nanos=0)])  # it failed: free
    assert (await backend.admit(admission(limits, cost=third_of_a_dollar))).allowed


async def test_monthly_budget(backend: LimitBackend) -> None:
    limits = KeyLimits(monthly_budget=0.000002)  # 2000 nano-dollars
    assert (await backend.admit(admission(limits, cost=1500))).allowed
    refused = await backend.admit(admission(limits, cost=1500))
    assert refused.refused_by == "monthly_budget"
    assert refused.retry_after == pytest.approx(CALENDAR.month_reset)


async def test_refusal_changes_nothing(backend: LimitBackend) -> None:
    limits = KeyLimits(rpm=10, concurrency=1)
    assert (await backend.admit(admission(limits))).allowed
    for _ in range(5):
        assert not (await backend.admit(admission(limits))).allowed
    decision = await backend.admit(admission(KeyLimits(rpm=10)))
    assert decision.requests is not None and decision.requests.remaining == 8


async def test_concurrent_admissions_from_two_clients_never_exceed(prefix: str) -> None:
    """Two clients (as two processes would) racing 300 admissions: exactly the limit."""
    require_redis()
    stores = [
        RedisBackend(connect(REDIS_URL, timeout=2), prefix=prefix, lease_seconds=30)
        for _ in range(2)
    ]
    limits = KeyLimits(rpm=120)
    try:
        decisions = await asyncio.gather(
            *(stores[i % 2].admit(admission(limits)) for i in range(300))
        )
    finally:
        for store in stores:
            await store.aclose()
        await _cleanup(prefix)
    assert sum(d.allowed for d in decisions) == 120


async def test_lease_of_a_dead_process_expires_and_renewal_keeps_it(prefix: str) -> None:
    require_redis()
    store = RedisBackend(connect(REDIS_URL, timeout=2), prefix=prefix, lease_seconds=0.3)
    limits = KeyLimits(concurrency=1)
    try:
        kept = admission(limits, subject="kept")
        assert (await store.admit(kept)).allowed
        assert (await store.admit(admission(limits, subject="dead"))).allowed
        for _ in range(4):  # renew "kept" across more than one lease length
            await asyncio.sleep(0.15)
            await store.renew([kept])
        assert not (await store.admit(admission(limits, subject="kept"))).allowed
        assert (await store.admit(admission(limits, subject="dead"))).allowed
    finally:
        await store.aclose()
        await _cleanup(prefix)


async def test_window_slides(prefix: str) -> None:
    require_redis()
    store = RedisBackend(connect(REDIS_URL, timeout=2), prefix=prefix, lease_seconds=30, window=0.4)
    limits = KeyLimits(rpm=2, tpm=50)
    try:
        assert (await store.admit(admission(limits, tokens=20))).allowed
        assert (await store.admit(admission(limits, tokens=20))).allowed
        refused = await store.admit(admission(limits, tokens=20))
        assert not refused.allowed and refused.retry_after <= 0.4
        await asyncio.sleep(0.5)
        again = await store.admit(admission(limits, tokens=20))
        assert again.allowed
        assert again.tokens is not None and again.tokens.remaining == 30
    finally:
        await store.aclose()
        await _cleanup(prefix)


async def test_keys_expire_and_share_one_cluster_slot(prefix: str) -> None:
    require_redis()
    store = RedisBackend(connect(REDIS_URL, timeout=2), prefix=prefix, lease_seconds=30)
    client = Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        limits = KeyLimits(rpm=5, tpm=100, concurrency=3, daily_budget=1, monthly_budget=2)
        assert (await store.admit(admission(limits, cost=5))).allowed
        keys = sorted([k async for k in client.scan_iter(match=f"{prefix}:*")])
        assert len(keys) == 6
        assert all("{k1}" in k for k in keys)
        for key in keys:
            assert await client.ttl(key) > 0  # nothing lives forever
    finally:
        await client.aclose()
        await store.aclose()
        await _cleanup(prefix)


async def test_a_lost_budget_counter_restarts_from_the_request_log(
    backend: LimitBackend,
) -> None:
    """A restarted process or a flushed Redis has no counter: it must not hand out a
    fresh budget, so the counter starts at the spend the request log already has."""
    limits = KeyLimits(daily_budget=0.000010, monthly_budget=1.0)  # 10,000 nano-dollars
    logged = Admission("k1", "t-1", limits, 1, 4_000, CALENDAR, logged_day=7_000)
    assert not (await backend.admit(logged)).allowed  # 7,000 + 4,000 > 10,000
    small = Admission("k1", "t-2", limits, 1, 3_000, CALENDAR, logged_day=7_000)
    assert (await backend.admit(small)).allowed  # exactly 10,000
    # From now on the limiter's own counter rules (the log lags behind it).
    again = Admission("k1", "t-3", limits, 1, 1, CALENDAR, logged_day=0)
    decision = await backend.admit(again)
    assert not decision.allowed and decision.refused_by == "daily_budget"


async def test_admitted_windows_report_when_they_reset(backend: LimitBackend) -> None:
    decision = await backend.admit(admission(KeyLimits(rpm=5, tpm=100), tokens=10))
    assert decision.requests is not None and decision.tokens is not None
    assert 59 <= decision.requests.reset <= 60  # this request leaves the window in 60 s
    assert 59 <= decision.tokens.reset <= 60
