"""Retention: delete request rows older than the configured age, in small batches.

Each batch is its own short transaction (at most ``batch_size`` rows; ``SKIP LOCKED`` on
PostgreSQL), with a pause between batches, so pruning never holds long locks or starves
the log writer. Several gateway processes may prune at once; they skip each other's rows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from hybridinference.background import cancel_and_wait
from hybridinference.storage.base import Store

logger = logging.getLogger(__name__)
DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    max_age_days: float
    batch_size: int = 5_000
    pause: float = 0.05  # seconds between batches
    interval: float = 3_600.0  # seconds between pruning runs


async def prune(store: Store, policy: RetentionPolicy, now: float) -> int:
    """Delete every row older than the policy allows; returns how many."""
    before = now - policy.max_age_days * DAY
    total = 0
    while True:
        deleted = await store.prune_requests(before, policy.batch_size)
        total += deleted
        if deleted < policy.batch_size:
            return total
        await asyncio.sleep(policy.pause)


class Pruner:
    """Runs ``prune`` every ``policy.interval`` seconds in the background."""

    def __init__(self, store: Store, policy: RetentionPolicy, clock: Callable[[], float]) -> None:
        self._store = store
        self._policy = policy
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="request-log-retention")

    async def _loop(self) -> None:
        while True:
            try:
                deleted = await prune(self._store, self._policy, self._clock())
                if deleted:
                    logger.info("retention: pruned %d request log rows", deleted)
            except Exception:
                logger.exception("retention: pruning failed; retrying next interval")
            await asyncio.sleep(self._policy.interval)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
