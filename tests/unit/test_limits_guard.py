"""The ``Limiter`` around a backend: failure policy per limit, outage log and counters,
automatic recovery, settlement off the response path, lease renewal; and the in-process
backend's window arithmetic on an injected clock."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import pytest

from hybridinference.gateway.limits import LimitExceeded, format_reset, quota_headers
from hybridinference.limits.estimate import TokenEstimator, billing_calendar
from hybridinference.limits.guard import FailurePolicy, Limiter
from hybridinference.limits.memory import MemoryBackend
from hybridinference.limits.model import Admission, Calendar, Decision, KeyLimits, Settlement

CALENDAR = Calendar("2026-11-29", "2026-11", 100.0, 1000.0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class SwitchableBackend:
    """A memory backend that can be made unreachable, as Redis going away would be."""

    name = "switchable"

    def __init__(self, clock: Clock) -> None:
        self.inner = MemoryBackend(clock, lease_seconds=30)
        self.down = False
        self.settled: list[Settlement] = []
        self.renewed: list[str] = []

    def _check(self) -> None:
        if self.down:
            raise ConnectionError("connection refused")

    async def admit(self, admission: Admission) -> Decision:
        self._check()
        return await self.inner.admit(admission)

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        self._check()
        self.settled.extend(settlements)
        await self.inner.settle(settlements)

    async def renew(self, leases: Sequence[Admission]) -> None:
        self._check()
        self.renewed.extend(a.ticket for a in leases)

    async def ping(self) -> None:
        self._check()

    async def aclose(self) -> None:
        return None


POLICY = FailurePolicy(
    {
        "requests": "open",
        "tokens": "open",
        "concurrency": "open",
        "daily_budget": "closed",
        "monthly_budget": "closed",
    }
)
_tickets = iter(range(10**9))


def admission(limits: KeyLimits, tokens: int = 10, cost: int = 0) -> Admission:
    return Admission("k", f"t{next(_tickets)}", limits, tokens, cost, CALENDAR)


def limiter(backend: SwitchableBackend, clock: Clock, lease: float = 30) -> Limiter:
    return Limiter(backend, POLICY, clock=clock, timeout=1, retry_interval=2, lease_seconds=lease)


async def test_fail_open_and_closed_per_limit_then_recover(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    backend = SwitchableBackend(clock)
    guard = limiter(backend, clock)
    rate_only, with_budget = KeyLimits(rpm=1), KeyLimits(rpm=1, daily_budget=1.0)
    assert (await guard.admit(admission(rate_only))).allowed
    backend.down = True
    with caplog.at_level(logging.WARNING, logger="hybridinference.limits.guard"):
        opened = await guard.admit(admission(rate_only))  # would be over the limit
        closed = await guard.admit(admission(with_budget))
        again = await guard.admit(admission(rate_only))
    assert opened.allowed and opened.degraded
    assert not closed.allowed and closed.refused_by == "unavailable" and closed.degraded
    assert again.allowed
    assert not guard.available
    assert guard.stats.failed_open == 2 and guard.stats.failed_closed == 1
    assert guard.stats.outages == 1
    assert guard.stats.backend_errors == 1  # not retried within retry_interval
    unreachable = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(unreachable) == 1  # one line per outage, not per request
    backend.down = False
    clock.now += 1  # still inside retry_interval: the policy still applies
    assert (await guard.admit(admission(rate_only))).degraded
    clock.now += 2
    with caplog.at_level(logging.WARNING, logger="hybridinference.limits.guard"):
        back = await guard.admit(admission(rate_only))
    assert not back.degraded and not back.allowed  # enforcing again: the minute is used
    assert guard.available
    assert any("is back" in r.getMessage() for r in caplog.records)


async def test_settlements_are_batched_off_the_response_path() -> None:
    clock = Clock()
    backend = SwitchableBackend(clock)
    guard = limiter(backend, clock)
    guard.start()
    items = [admission(KeyLimits(tpm=1000, concurrency=5)) for _ in range(3)]
    for item in items:
        assert (await guard.admit(item)).allowed
    for item in items:
        guard.settle(Settlement(item, 1, 0))  # returns at once
    await guard.aclose()  # drains the queue
    assert [s.admission.ticket for s in backend.settled] == [i.ticket for i in items]
    assert guard.stats.settled == 3


async def test_settlement_failure_is_counted_not_raised() -> None:
    clock = Clock()
    backend = SwitchableBackend(clock)
    guard = limiter(backend, clock)
    guard.start()
    items = [admission(KeyLimits(tpm=100_000)) for _ in range(600)]
    for item in items:
        await guard.admit(item)
    backend.down = True
    for item in items:  # more than one batch: shutdown gives up after the first failure
        guard.settle(Settlement(item, 1, 0))
    await guard.aclose()
    assert guard.stats.settle_dropped == 600
    assert guard.stats.backend_errors == 1


async def test_running_requests_renew_their_leases() -> None:
    clock = Clock()
    backend = SwitchableBackend(clock)
    guard = limiter(backend, clock, lease=0.06)
    guard.start()
    running = admission(KeyLimits(concurrency=2))
    done = admission(KeyLimits(concurrency=2))
    await guard.admit(running)
    await guard.admit(done)
    guard.settle(Settlement(done, 0, 0))
    await asyncio.sleep(0.1)
    await guard.aclose()
    assert running.ticket in backend.renewed
    assert done.ticket not in backend.renewed


async def test_memory_window_slides_on_the_clock() -> None:
    clock = Clock()
    backend = MemoryBackend(clock, lease_seconds=30)
    limits = KeyLimits(rpm=2, tpm=30)
    assert (await backend.admit(admission(limits, tokens=10))).allowed
    clock.now += 20
    assert (await backend.admit(admission(limits, tokens=10))).allowed
    refused = await backend.admit(admission(limits, tokens=10))
    assert refused.refused_by == "requests"
    assert refused.retry_after == pytest.approx(40)  # when the first leaves the window
    clock.now += 40.001
    decision = await backend.admit(admission(limits, tokens=25))
    assert not decision.allowed and decision.refused_by == "tokens"
    assert decision.retry_after == pytest.approx(20 - 0.001)
    clock.now += 20
    assert (await backend.admit(admission(limits, tokens=25))).allowed


async def test_memory_concurrency_lease_expires() -> None:
    clock = Clock()
    backend = MemoryBackend(clock, lease_seconds=5)
    limits = KeyLimits(concurrency=1)
    assert (await backend.admit(admission(limits))).allowed
    assert not (await backend.admit(admission(limits))).allowed
    clock.now += 5.1  # its process died: nobody renewed or settled it
    assert (await backend.admit(admission(limits))).allowed


async def test_memory_budget_follows_the_calendar() -> None:
    clock = Clock()
    backend = MemoryBackend(clock, lease_seconds=5)
    limits = KeyLimits(daily_budget=0.000001)  # 1000 nanos
    assert (await backend.admit(admission(limits, cost=1000))).allowed
    assert not (await backend.admit(admission(limits, cost=1))).allowed
    tomorrow = Calendar("2026-11-30", "2026-11", 100.0, 1000.0)
    item = Admission("k", "next-day", limits, 1, 1000, tomorrow)
    assert (await backend.admit(item)).allowed


def test_estimates_err_high_and_read_the_text() -> None:
    estimator = TokenEstimator(chars_per_token=3, default_output_tokens=100)
    body = {"messages": [{"role": "user", "content": "x" * 30}]}
    assert estimator.input_tokens(body, raw_size=10_000) == 10 + 4 + 3
    parts = {"messages": [{"role": "user", "content": [{"type": "text", "text": "abcdef"}]}]}
    assert estimator.input_tokens(parts, raw_size=0) == 2 + 4 + 3
    assert estimator.input_tokens({"input": ["aaa", "bbb"]}, raw_size=0) == 2 + 3
    assert estimator.input_tokens({"model": "m"}, raw_size=300) == 100
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    with_image = {"messages": [{"role": "user", "content": [image, {"type": "text", "text": "a"}]}]}
    assert estimator.input_tokens(with_image, raw_size=0) == 765 + 1 + 4 + 3
    assert estimator.output_tokens({}, embeddings=False) == 100
    assert estimator.output_tokens({"max_tokens": 7, "n": 2}, embeddings=False) == 14
    assert estimator.output_tokens({"max_completion_tokens": 9}, embeddings=False) == 9
    assert estimator.output_tokens({"max_tokens": 7}, embeddings=True) == 0


def test_billing_calendar() -> None:
    noon_dec_31 = 1798718400.0  # 2026-12-31 12:00 UTC
    calendar = billing_calendar(noon_dec_31)
    assert (calendar.day, calendar.month) == ("2026-12-31", "2026-12")
    assert calendar.day_reset == pytest.approx(12 * 3600)
    assert calendar.month_reset == pytest.approx(12 * 3600)


def test_reset_format_and_refusal_headers() -> None:
    assert format_reset(0.25) == "250ms"
    assert format_reset(1.5) == "1.5s"
    assert format_reset(360) == "6m0s"
    assert format_reset(61.25) == "1m1.25s"
    decision = Decision(False, "daily_budget", 3600.2)
    error = LimitExceeded("spent", decision)
    headers = error.headers()
    assert headers["Retry-After"] == "3601"
    assert headers["x-should-retry"] == "false"
    assert error.status_code == 429 and error.error_type == "insufficient_quota"
    assert quota_headers(Decision(True)) == {}
