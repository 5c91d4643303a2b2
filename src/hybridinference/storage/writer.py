"""The request-log writer: a bounded queue the response never waits on, flushed in
batches by one background task, drained on shutdown.

A batch that fails to write is kept and retried (with back-off) rather than dropped;
while the database is away the queue fills, and only a full queue drops rows — each drop
counted and logged.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from hybridinference.schemas.records import RequestRecord
from hybridinference.storage.base import Store

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class WriterStats:
    written: int = 0
    dropped: int = 0
    failed_batches: int = 0


class LogWriter:
    def __init__(
        self, store: Store, *, queue_size: int, batch_size: int, flush_interval: float
    ) -> None:
        self._store = store
        self._queue: asyncio.Queue[RequestRecord] = asyncio.Queue(maxsize=queue_size)
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.stats = WriterStats()

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def submit(self, record: RequestRecord) -> None:
        """Never blocks, never raises."""
        try:
            self._queue.put_nowait(record)
        except asyncio.QueueFull:
            self.stats.dropped += 1
            logger.error("request log queue full; dropped row %s", record.request_id)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="request-log-writer")

    async def _run(self) -> None:
        while not (self._closing and self._queue.empty()):
            try:
                first = await asyncio.wait_for(self._queue.get(), timeout=self._flush_interval)
            except TimeoutError:
                continue
            batch = [first]
            await self._fill(batch)
            await self._write(batch)

    async def _fill(self, batch: list[RequestRecord]) -> None:
        loop = asyncio.get_running_loop()
        until = loop.time() + self._flush_interval
        while len(batch) < self._batch_size:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            if self._closing or loop.time() >= until:
                return
            await asyncio.sleep(min(0.01, self._flush_interval))

    async def _write(self, batch: list[RequestRecord]) -> None:
        delay = 0.1
        while True:
            try:
                await self._store.write_requests(batch)
            except Exception:
                self.stats.failed_batches += 1
                logger.exception("request log write failed; retrying %d rows", len(batch))
                if self._closing and delay > 2:
                    self.stats.dropped += len(batch)
                    logger.error("shutting down: gave up on %d request log rows", len(batch))
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self.stats.written += len(batch)
            return

    async def aclose(self) -> None:
        """Drain everything queued, then stop."""
        self._closing = True
        if self._task is not None:
            await self._task
            self._task = None
