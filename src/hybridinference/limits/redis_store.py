"""The Redis backend: one atomic script per admission, shared by every process and
replica; settlements and lease renewals are pipelined in batches off the response path.

The client is built to fail fast (no retries, short socket timeouts): when Redis is
unreachable the caller applies its failure policy at once instead of stalling requests.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hybridinference.limits.model import (
    WINDOW_SECONDS,
    Admission,
    Decision,
    Dimension,
    Quota,
    Settlement,
    usd_to_nanos,
)
from hybridinference.limits.scripts import ADMIT, SETTLE

UNLIMITED = -1


def connect(url: str, *, timeout: float, max_connections: int = 128) -> Redis:
    """A pooled client that fails fast; it reconnects on its own once Redis is back. When
    every connection is busy a caller waits (at most ``timeout``) instead of failing."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        decode_responses=True,
    )
    return Redis.from_pool(pool)


class SubjectKeys:
    """Key names of one subject (see ``limits.scripts`` for the layout)."""

    def __init__(self, prefix: str, subject: str) -> None:
        self.base = f"{prefix}:{{{subject}}}"

    def window(self) -> list[str]:
        return [f"{self.base}:rq", f"{self.base}:tk", f"{self.base}:tt", f"{self.base}:cc"]

    def spend(self, day: str, month: str) -> list[str]:
        return [f"{self.base}:sd:{day}", f"{self.base}:sm:{month}"]


def _opt(value: int | None) -> int:
    return UNLIMITED if value is None else value


def _budget(value: float | None) -> int:
    return UNLIMITED if value is None else usd_to_nanos(value)


class RedisBackend:
    name = "redis"

    def __init__(
        self, client: Redis, *, prefix: str, lease_seconds: float, window: float = WINDOW_SECONDS
    ) -> None:
        self._client = client
        self._window_ms = round(window * 1000)
        self._prefix = prefix
        self._lease_ms = round(lease_seconds * 1000)
        self._admit = client.register_script(ADMIT)
        self._settle = client.register_script(SETTLE)

    def _keys(self, admission: Admission) -> list[str]:
        keys = SubjectKeys(self._prefix, admission.subject)
        calendar = admission.calendar
        return [*keys.window(), *keys.spend(calendar.day, calendar.month)]

    @contextlib.asynccontextmanager
    async def _forget_connections_on_failure(self) -> AsyncIterator[None]:
        """After a connection failure every pooled connection is suspect (Redis went away
        or restarted): drop them all so the first call after recovery dials afresh."""
        try:
            yield
        except (RedisConnectionError, RedisTimeoutError, OSError):
            await self._client.connection_pool.disconnect()
            raise

    async def admit(self, admission: Admission) -> Decision:
        limits, calendar = admission.limits, admission.calendar
        args: list[Any] = [
            admission.ticket,
            _opt(limits.rpm),
            _opt(limits.tpm),
            admission.tokens,
            _opt(limits.concurrency),
            self._lease_ms,
            _budget(limits.daily_budget),
            _budget(limits.monthly_budget),
            admission.cost_nanos,
            round(calendar.day_reset * 1000),
            round(calendar.month_reset * 1000),
            self._window_ms,
            admission.logged_day,
            admission.logged_month,
        ]
        async with self._forget_connections_on_failure():
            reply = await self._admit(keys=self._keys(admission), args=args)
        allowed, refused, wait, rq_count, rq_reset, tk_total, tk_reset = reply
        requests = tokens = None
        if limits.rpm is not None:
            left = limits.rpm - int(rq_count) - 1
            requests = Quota(limits.rpm, max(0, left), int(rq_reset) / 1000)
        if limits.tpm is not None:
            left = limits.tpm - int(tk_total) - admission.tokens
            tokens = Quota(limits.tpm, max(0, left), int(tk_reset) / 1000)
        if int(allowed) == 1:
            return Decision(True, None, 0.0, requests, tokens)
        dimension: Dimension = refused
        return Decision(False, dimension, max(int(wait), 1) / 1000, requests, tokens)

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        async with (
            self._forget_connections_on_failure(),
            self._client.pipeline(transaction=False) as pipe,
        ):
            for settlement in settlements:
                admission = settlement.admission
                limits = admission.limits
                keys = self._keys(admission)
                flags = [
                    limits.tpm is not None,
                    limits.concurrency is not None,
                    limits.daily_budget is not None,
                    limits.monthly_budget is not None,
                ]
                args: list[Any] = [
                    admission.ticket,
                    admission.tokens,
                    settlement.tokens,
                    admission.cost_nanos,
                    settlement.cost_nanos,
                    *("1" if flag else "0" for flag in flags),
                ]
                await self._settle(
                    keys=[keys[1], keys[2], keys[3], keys[4], keys[5]], args=args, client=pipe
                )
            await pipe.execute()

    async def renew(self, leases: Sequence[Admission]) -> None:
        if not leases:
            return
        time_s, time_us = await self._client.time()
        expiry = int(time_s) * 1000 + int(time_us) // 1000 + self._lease_ms
        async with self._client.pipeline(transaction=False) as pipe:
            for admission in leases:
                key = SubjectKeys(self._prefix, admission.subject).window()[3]
                pipe.zadd(key, {admission.ticket: expiry}, xx=True)
                pipe.pexpire(key, 2 * self._lease_ms)
            await pipe.execute()

    async def ping(self) -> None:
        await self._client.ping()

    async def aclose(self) -> None:
        await self._client.aclose()
