"""The request-log writer: a bounded queue the response never waits on, flushed in
batches by one background task, with the journal as the fallback when the database is
down or slow.

- ``submit`` never blocks or raises; only a full queue drops a row (counted, logged).
- Each batch goes to the database within ``write_timeout``; if that fails the batch is
  appended to the journal and the database is retried with back-off. While the journal
  holds rows, new batches are appended behind them and the journal is replayed from its
  oldest row, so the table receives rows in the order they were produced; rows are
  idempotent on request id, so a batch that was written *and* journaled (a timeout after
  commit) is never duplicated.
- A batch the database answers but refuses is written row by row; a row refused on its
  own is counted (``stats.rejected``) and logged with its request id, never retried
  forever, so one bad row cannot block the log.
- If even the journal append fails, the rows are lost: counted in ``stats.lost``,
  ``stats.journal_failures``, and logged at ERROR — never silent.
- ``aclose`` drains the queue, then replays the journal while the database takes it (for
  at most ``SHUTDOWN_REPLAY_SECONDS``); what is left stays on disk and is replayed at the
  next start.

A process killed with SIGKILL loses only rows still in memory: those that arrived in the
last ``flush_interval`` plus those of an in-flight write (at most ``write_timeout``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from hybridinference.schemas.records import RequestRecord
from hybridinference.storage.base import Store
from hybridinference.storage.journal import Journal
from hybridinference.storage.redaction import Redactor

logger = logging.getLogger(__name__)
MAX_BACKOFF = 5.0
#: SQLSTATE class 53 (insufficient resources: disk full, out of memory) and SQLite's
#: "database or disk is full": the database is out of room, not refusing one row
_FULL_SQLSTATE = "53"
_FULL_WORDS = ("disk is full", "disk full", "no space left")
SHUTDOWN_REPLAY_SECONDS = 10.0  # a longer backlog is left for the next start
REPLAY_BATCHES = 4  # journal batches replayed per loop turn, so a backlog shrinks under load


@dataclass(slots=True)
class WriterStats:
    """Counters since start; read (never written) by metrics and health."""

    written: int = 0  # rows the database accepted directly or from the journal
    replayed: int = 0  # of which came from the journal
    journaled: int = 0  # rows appended to the journal
    dropped: int = 0  # rows refused because the queue was full
    lost: int = 0  # rows neither written nor journaled (journal append failed)
    failed_batches: int = 0  # database writes that failed or timed out
    rejected: int = 0  # rows the database refused on their own (logged with their id)
    journal_failures: int = 0  # journal appends that failed


class LogWriter:
    def __init__(
        self,
        store: Store,
        journal: Journal,
        *,
        queue_size: int,
        batch_size: int,
        flush_interval: float,
        write_timeout: float = 0.75,
        redactor: Redactor | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._journal = journal
        self._queue: asyncio.Queue[RequestRecord] = asyncio.Queue(maxsize=queue_size)
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._write_timeout = write_timeout
        self._redactor = redactor
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._wake = asyncio.Event()  # set by submit at the size _collect waits for
        self._wake_at = 0  # 0: the writer is not waiting
        self._retry_at = 0.0
        self._backoff = 0.1
        self.stats = WriterStats()

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    @property
    def database_up(self) -> bool:
        """False from a failed write until the next successful one."""
        return self._retry_at == 0.0

    @property
    def journal_pending_bytes(self) -> int:
        return self._journal.pending_bytes

    @property
    def journal_corrupt_lines(self) -> int:
        """Unreadable journal lines skipped (torn writes of killed processes)."""
        return self._journal.corrupt_lines

    def submit(self, record: RequestRecord) -> None:
        """Never blocks, never raises."""
        try:
            self._queue.put_nowait(record)
            if self._wake_at and self._queue.qsize() >= self._wake_at:
                self._wake.set()
        except asyncio.QueueFull:
            self.stats.dropped += 1
            logger.error("request log queue full; dropped row %s", record.request_id)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="request-log-writer")

    async def _run(self) -> None:
        while not (self._closing and self._queue.empty()):
            batch = await self._collect()
            if batch:
                await self._deliver(batch)
            if self._journal.pending and self._clock() >= self._retry_at:
                await self._replay(REPLAY_BATCHES)
        deadline = self._clock() + SHUTDOWN_REPLAY_SECONDS
        while self._journal.pending and self._clock() < deadline and await self._replay(1):
            pass
        if self._journal.pending:
            logger.warning(
                "shutting down with %d bytes of request log in the journal; "
                "they are replayed at the next start",
                self._journal.pending_bytes,
            )

    async def _collect(self) -> list[RequestRecord]:
        """Up to ``batch_size`` rows, waiting at most ``flush_interval`` after the first.

        Event-driven, not polled: an idle writer sleeps until a row arrives (or the
        journal's next retry is due), then until the batch is full or the interval is
        over; ``submit`` wakes it only at those two sizes. Polling every 10 ms cost the
        idle gateway 2.5 % of a core and woke the loop 100 times a second under load."""
        queue = self._queue
        if queue.empty() and not self._closing:
            await self._sleep(1, self._retry_in())
        if not self._closing and queue.qsize() < self._batch_size:
            await self._sleep(self._batch_size, self._flush_interval)
        batch: list[RequestRecord] = []
        while len(batch) < self._batch_size and not queue.empty():
            batch.append(queue.get_nowait())
        return batch

    def _retry_in(self) -> float | None:
        """Seconds until the journal's next replay is due; None with nothing to replay."""
        if not self._journal.pending:
            return None
        return max(0.0, self._retry_at - self._clock())

    async def _sleep(self, rows: int, seconds: float | None) -> None:
        """Until the queue holds ``rows`` rows, the writer is closing, or ``seconds`` pass."""
        self._wake.clear()
        self._wake_at = rows
        try:
            if seconds is None:
                await self._wake.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(seconds):
                        await self._wake.wait()
        finally:
            self._wake_at = 0

    async def _deliver(self, batch: list[RequestRecord]) -> None:
        if self._redactor is not None:
            batch = [self._redactor.record(r) for r in batch]
        direct = not self._journal.pending and self._clock() >= self._retry_at
        if direct and await self._write(batch):
            return
        try:
            await self._journal.append(batch)
        except OSError:
            self.stats.journal_failures += 1
            self.stats.lost += len(batch)
            logger.exception(
                "request log: database and journal both failed; lost %d rows", len(batch)
            )
            return
        self.stats.journaled += len(batch)

    async def _write(self, batch: list[RequestRecord]) -> bool:
        try:
            await asyncio.wait_for(self._store.write_requests(batch), self._write_timeout)
        except TimeoutError:
            self._down("timed out")
            return False
        except Exception as exc:
            if _out_of_space(exc) or not await self._reachable():
                self._down(repr(exc))
                return False
            # The database answers but refuses the batch: a row it cannot take (a value
            # out of range, say). Write row by row so one bad row never blocks the rest.
            logger.error("request log: batch refused (%r); writing its rows one by one", exc)
            return await self._write_each(batch)
        self._up(len(batch))
        return True

    async def _write_each(self, batch: list[RequestRecord]) -> bool:
        for record in batch:
            try:
                await asyncio.wait_for(self._store.write_requests([record]), self._write_timeout)
            except Exception as exc:
                if _out_of_space(exc) or not await self._reachable():
                    self._down(repr(exc))
                    return False  # the whole batch goes to the journal; rows are idempotent
                self.stats.rejected += 1
                logger.error("request log: row %s rejected: %r", record.request_id, exc)
                continue
            self._up(1)
        return True

    async def _reachable(self) -> bool:
        try:
            await asyncio.wait_for(self._store.ping(), self._write_timeout)
        except Exception:
            return False
        return True

    def _down(self, reason: str) -> None:
        self.stats.failed_batches += 1
        if self.database_up:
            logger.error("request log: database write failed (%s); spilling to journal", reason)
        self._retry_at = self._clock() + self._backoff
        self._backoff = min(self._backoff * 2, MAX_BACKOFF)

    def _up(self, rows: int) -> None:
        if not self.database_up:
            logger.warning("request log: database is back; replaying the journal")
        self._retry_at = 0.0
        self._backoff = 0.1
        self.stats.written += rows

    async def _replay(self, batches: int) -> bool:
        """Replay up to ``batches`` journal batches; False when a write failed."""
        for _ in range(batches):
            chunk = await self._journal.read(self._batch_size)
            if chunk is None:
                return True
            if chunk.records and not await self._write(chunk.records):
                return False
            await self._journal.commit(chunk)
            self.stats.replayed += len(chunk.records)
        return True

    async def aclose(self) -> None:
        """Drain the queue, replay the journal while the database takes it, then stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None


def _out_of_space(exc: BaseException) -> bool:
    """The store failed for want of room: an outage to spill through, not a bad row."""
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(_FULL_SQLSTATE):
        return True
    return any(words in str(exc).lower() for words in _FULL_WORDS)
