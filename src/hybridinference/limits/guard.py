"""``Limiter``: the one object the gateway talks to. It wraps a backend with

- the failure policy: when the backend cannot answer, each limit a request is subject to
  fails *open* (let it through, unlimited) or *closed* (refuse it); the request is refused
  when any of its limits fails closed. The outage is logged once when it starts and once
  when it ends, counted in ``stats``, and the backend is not retried for
  ``retry_interval`` seconds (so requests do not each wait for a timeout); the first
  admission after that probes it again — recovery is automatic;
- settlement off the response path: a bounded queue drained in batches by one task;
- lease renewal: the concurrency slots of requests still running are extended every third
  of the lease, so only a dead process's slots ever expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from hybridinference.limits.base import LimitBackend
from hybridinference.limits.model import Admission, Decision, Dimension, Settlement

logger = logging.getLogger(__name__)

FailureMode = Literal["open", "closed"]


@dataclass(frozen=True, slots=True)
class FailurePolicy:
    modes: Mapping[Dimension, FailureMode]

    def refuses(self, admission: Admission) -> bool:
        return any(self.modes.get(d) == "closed" for d in admission.limits.dimensions())


@dataclass(slots=True)
class LimiterStats:
    admitted: int = 0
    refused: int = 0
    backend_errors: int = 0
    failed_open: int = 0  # admitted unchecked because the backend was unreachable
    failed_closed: int = 0  # refused because the backend was unreachable
    outages: int = 0
    settled: int = 0
    settle_dropped: int = 0
    renew_errors: int = 0


class Limiter:
    def __init__(
        self,
        backend: LimitBackend,
        policy: FailurePolicy,
        *,
        clock: Callable[[], float],
        timeout: float,
        retry_interval: float,
        lease_seconds: float,
        queue_size: int = 10_000,
        batch_size: int = 256,
    ) -> None:
        self.backend = backend
        self.policy = policy
        self.stats = LimiterStats()
        self._clock = clock
        self._timeout = timeout
        self._retry_interval = retry_interval
        self._lease_seconds = lease_seconds
        self._queue: deque[Settlement] = deque()
        self._queue_size = queue_size
        self._batch_size = batch_size
        self._wake = asyncio.Event()
        self._leases: dict[str, Admission] = {}  # running requests holding a slot
        self._down_since: float | None = None
        self._retry_at = float("-inf")
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False

    @property
    def available(self) -> bool:
        return self._down_since is None

    async def admit(self, admission: Admission) -> Decision:
        if self._clock() < self._retry_at:
            return self._fallback(admission)
        try:
            async with asyncio.timeout(self._timeout):
                decision = await self.backend.admit(admission)
        except Exception as exc:
            self._went_down(exc)
            return self._fallback(admission)
        if self._down_since is not None:
            self._came_back()
        if decision.allowed:
            self.stats.admitted += 1
            if admission.limits.concurrency is not None:
                self._leases[admission.ticket] = admission
        else:
            self.stats.refused += 1
        return decision

    def _fallback(self, admission: Admission) -> Decision:
        if self.policy.refuses(admission):
            self.stats.failed_closed += 1
            return Decision(False, "unavailable", self._retry_interval, degraded=True)
        self.stats.failed_open += 1
        return Decision(True, degraded=True)

    def _went_down(self, exc: Exception) -> None:
        self.stats.backend_errors += 1
        self._retry_at = self._clock() + self._retry_interval
        if self._down_since is None:
            self._down_since = self._clock()
            self.stats.outages += 1
            logger.error(
                "rate-limit backend %s unreachable (%s: %s); applying the failure policy "
                "(open: %s; closed: %s) until it answers again",
                self.backend.name,
                type(exc).__name__,
                exc,
                ", ".join(d for d, m in self.policy.modes.items() if m == "open") or "none",
                ", ".join(d for d, m in self.policy.modes.items() if m == "closed") or "none",
            )

    def _came_back(self) -> None:
        assert self._down_since is not None
        logger.warning(
            "rate-limit backend %s is back after %.1f s",
            self.backend.name,
            self._clock() - self._down_since,
        )
        self._down_since = None

    def settle(self, settlement: Settlement) -> None:
        """Queue a finished request's correction; never blocks, never raises."""
        self._leases.pop(settlement.admission.ticket, None)
        if len(self._queue) >= self._queue_size:
            self.stats.settle_dropped += 1
            return
        self._queue.append(settlement)
        self._wake.set()

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._drain(), name="limits-settle"),
            asyncio.create_task(self._renew(), name="limits-renew"),
        ]

    async def _drain(self) -> None:
        while not (self._closing and not self._queue):
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            batch = [self._queue.popleft() for _ in range(min(self._batch_size, len(self._queue)))]
            try:
                async with asyncio.timeout(self._timeout * 4):
                    await self.backend.settle(batch)
                self.stats.settled += len(batch)
            except Exception as exc:
                # Reservations stand (tokens age out of the window, leases expire);
                # spend stays at the estimate. Counted, logged, never retried forever.
                self.stats.settle_dropped += len(batch)
                self.stats.backend_errors += 1
                logger.warning("settling %d request(s) failed: %s", len(batch), exc)
                if self._closing:  # shutting down: do not wait a timeout per batch
                    self.stats.settle_dropped += len(self._queue)
                    self._queue.clear()

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(self._lease_seconds / 3)
            if not self._leases or not self.available:
                continue
            try:
                async with asyncio.timeout(self._timeout * 4):
                    await self.backend.renew(list(self._leases.values()))
            except Exception as exc:
                self.stats.renew_errors += 1
                logger.warning("renewing %d lease(s) failed: %s", len(self._leases), exc)

    async def aclose(self) -> None:
        """Settle what is queued, then stop and close the backend."""
        self._closing = True
        self._wake.set()
        for task in self._tasks[1:]:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.backend.aclose()
