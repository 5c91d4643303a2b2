"""Active health: probes that cost no tokens, and local engines' load, off the request path.

One asyncio task (started in the app lifespan) runs two kinds of jobs, each on its own
interval with jitter so that several gateways do not probe in lockstep:

- a probe per provider: ``adapter.probe()`` (``/v1/models``, ``/health``, ``/api/tags`` —
  never a completion); ``unhealthy_after`` failures in a row mark the provider down, and
  routing skips it until a probe succeeds;
- a scrape per local engine with a ``/metrics`` URL: its running/waiting requests and KV
  usage land on the routes it serves, for ``local_first`` and ``least_busy``.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import Protocol

from hybridinference.adapters.base import Adapter
from hybridinference.background import cancel_and_wait
from hybridinference.config.routing import HealthConfig
from hybridinference.routing.engine_load import EngineLoad, MetricsScraper

logger = logging.getLogger(__name__)


class ProbeStatus(StrEnum):
    UNKNOWN = "unknown"
    UP = "up"
    DOWN = "down"


class ProviderHealth:
    """What the probes last said about one provider; shared by all its routes."""

    __slots__ = ("consecutive_failures", "last_error", "last_latency", "last_probe", "status")

    def __init__(self) -> None:
        self.status = ProbeStatus.UNKNOWN
        self.consecutive_failures = 0
        self.last_probe: float | None = None
        self.last_error: str | None = None
        self.last_latency: float | None = None

    def usable(self) -> bool:
        return self.status is not ProbeStatus.DOWN

    def succeeded(self, now: float, latency: float) -> None:
        if self.status is ProbeStatus.DOWN:
            logger.info("provider is back up after %d failed probes", self.consecutive_failures)
        self.status = ProbeStatus.UP
        self.consecutive_failures = 0
        self.last_probe = now
        self.last_latency = latency
        self.last_error = None

    def failed(self, now: float, error: str, unhealthy_after: int) -> None:
        self.consecutive_failures += 1
        self.last_probe = now
        self.last_error = error
        if self.consecutive_failures >= unhealthy_after:
            self.status = ProbeStatus.DOWN

    def describe(self, now: float) -> dict[str, object]:
        return {
            "status": self.status.value,
            "consecutive_failures": self.consecutive_failures,
            "last_probe_age": None if self.last_probe is None else round(now - self.last_probe, 3),
            "last_probe_latency": None
            if self.last_latency is None
            else round(self.last_latency, 6),
            "last_error": self.last_error,
        }


class LoadSink(Protocol):
    engine: EngineLoad | None


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    provider: str
    adapter: Adapter
    health: ProviderHealth


@dataclass(frozen=True, slots=True)
class ScrapeTarget:
    provider: str
    scraper: MetricsScraper
    sinks: tuple[LoadSink, ...]


@dataclass(slots=True)
class _Job:
    interval: float
    run: Callable[[], Awaitable[None]]
    due: float = 0.0


class HealthMonitor:
    def __init__(
        self,
        probes: Sequence[ProbeTarget],
        scrapes: Sequence[ScrapeTarget],
        config: HealthConfig,
        *,
        rng: random.Random,
        clock: Callable[[], float],
    ) -> None:
        self.probes = tuple(probes)
        self.scrapes = tuple(scrapes)
        self._config = config
        self._rng = rng
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    async def probe(self, target: ProbeTarget) -> None:
        started = self._clock()
        try:
            async with asyncio.timeout(self._config.timeout):
                await target.adapter.probe()
        except Exception as exc:  # any failure is a failed probe, never a crash
            message = getattr(exc, "message", None) or type(exc).__name__
            target.health.failed(self._clock(), str(message), self._config.unhealthy_after)
            logger.debug("probe of %s failed: %s", target.provider, message)
        else:
            now = self._clock()
            target.health.succeeded(now, now - started)

    async def scrape(self, target: ScrapeTarget) -> None:
        try:
            load = await target.scraper.scrape(self._config.timeout, self._clock())
        except Exception as exc:
            logger.debug("scrape of %s failed: %s", target.provider, type(exc).__name__)
            load = None  # stale numbers would mislead: fall back to in-flight counts
        for sink in target.sinks:
            sink.engine = load

    async def run_once(self) -> None:
        """Every probe and scrape once, concurrently (tests and startup use this)."""
        await asyncio.gather(
            *(self.probe(t) for t in self.probes), *(self.scrape(t) for t in self.scrapes)
        )

    def _jobs(self) -> list[_Job]:
        config = self._config
        jobs = [_Job(config.interval, partial(self.probe, t)) for t in self.probes]
        jobs += [_Job(config.metrics_interval, partial(self.scrape, t)) for t in self.scrapes]
        now = self._clock()
        for job in jobs:  # spread the first round over one interval
            job.due = now + job.interval * self._rng.random()
        return jobs

    async def _run(self) -> None:
        jobs = self._jobs()
        if not jobs:
            return
        jitter = self._config.jitter
        while True:
            now = self._clock()
            due = [job for job in jobs if job.due <= now]
            if not due:
                await asyncio.sleep(min(job.due for job in jobs) - now)
                continue
            await asyncio.gather(*(job.run() for job in due))
            now = self._clock()
            for job in due:
                job.due = now + job.interval * (1.0 + jitter * self._rng.uniform(-1.0, 1.0))

    def start(self) -> None:
        if self._task is None and self._config.probes:
            self._task = asyncio.create_task(self._run(), name="health-monitor")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
