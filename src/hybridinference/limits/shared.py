"""Routing knowledge shared between replicas through Redis: circuit breakers and latency
statistics, so that every replica routes on what all of them have seen.

Every ``interval`` seconds each replica publishes what it observed about each route
(``RouteKnowledge``) into one Redis hash per route, under its own instance id, and reads
back what the others published (entries older than ``stale_after`` are ignored: a dead
replica's opinion fades out on its own). The merge is the source's business
(``KnowledgeSource.absorb``): the gateway opens a local circuit when a peer's is open,
parks a route a peer's provider answered 429 on, and blends latency averages by sample
count. One pipelined round trip per interval, never on
a request's path. Redis unreachable: the round is skipped, counted and logged once; each
replica keeps routing on its own knowledge.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol

import orjson
from redis.asyncio import Redis

from hybridinference.background import cancel_and_wait

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RouteKnowledge:
    circuit_open_for: float  # seconds this replica's circuit stays open (0: not open)
    ewma: float | None  # TTFT moving average, seconds
    samples: int  # TTFT samples behind it
    error_rate: float
    paused_for: float = 0.0  # seconds the route stays parked after its provider's 429
    published_at: float = 0.0  # unix seconds, set when published


class KnowledgeSource(Protocol):
    def export(self) -> Mapping[str, RouteKnowledge]: ...

    def absorb(self, route: str, peers: Sequence[RouteKnowledge]) -> None: ...


@dataclass(slots=True)
class SyncStats:
    rounds: int = 0
    failures: int = 0
    peers_seen: int = 0


class SharedKnowledge:
    def __init__(
        self,
        client: Redis,
        source: KnowledgeSource,
        *,
        prefix: str,
        interval: float,
        wall_clock: Callable[[], float],
        instance: str | None = None,
    ) -> None:
        self._client = client
        self._source = source
        self._prefix = prefix
        self._interval = interval
        self._stale_after = 3 * interval
        self._wall_clock = wall_clock
        self.instance = instance or secrets.token_hex(6)
        self.stats = SyncStats()
        self._failing = False
        self._task: asyncio.Task[None] | None = None

    def _key(self, route: str) -> str:
        return f"{self._prefix}:routing:{route}"

    async def sync_once(self) -> None:
        """Publish ours, read theirs, hand theirs to the source."""
        now = self._wall_clock()
        ours = self._source.export()
        routes = sorted(ours)
        ttl_ms = round(self._stale_after * 1000) + 1000
        async with self._client.pipeline(transaction=False) as pipe:
            for route in routes:
                knowledge = {**asdict(ours[route]), "published_at": now}
                pipe.hset(self._key(route), self.instance, orjson.dumps(knowledge))
                pipe.pexpire(self._key(route), ttl_ms)
            for route in routes:
                pipe.hgetall(self._key(route))
            replies = await pipe.execute()
        self.stats.rounds += 1
        for route, entries in zip(routes, replies[2 * len(routes) :], strict=True):
            peers = self._peers(entries, now)
            self.stats.peers_seen = max(self.stats.peers_seen, len(peers))
            self._source.absorb(route, peers)

    def _peers(
        self, entries: Mapping[bytes | str, bytes | str], now: float
    ) -> list[RouteKnowledge]:
        peers = []
        for instance, raw in entries.items():
            name = instance.decode() if isinstance(instance, bytes) else instance
            if name == self.instance:
                continue
            knowledge = RouteKnowledge(**orjson.loads(raw))
            if now - knowledge.published_at <= self._stale_after:
                peers.append(knowledge)
        return peers

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="shared-routing-knowledge")

    async def _run(self) -> None:
        while True:
            try:
                async with asyncio.timeout(max(1.0, self._interval)):
                    await self.sync_once()
            except Exception as exc:
                self.stats.failures += 1
                if not self._failing:
                    logger.warning("sharing routing knowledge through Redis failed: %s", exc)
                self._failing = True
            else:
                if self._failing:
                    logger.warning("sharing routing knowledge through Redis works again")
                self._failing = False
            await asyncio.sleep(self._interval)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        await self._client.aclose()
