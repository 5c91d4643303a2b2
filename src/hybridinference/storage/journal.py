"""The local spill journal: request rows the database could not take, kept on disk in
order until they can be written.

Each gateway process appends JSON lines to its own segment file
(``journal-<ns>-<pid>.jsonl``), holding an exclusive ``flock`` on it for its lifetime.
On open, segments left by processes that died (their lock is free) are adopted and
replayed first, oldest first. Appends are whole batches: flushed, and ``fsync``'d when
``fsync`` is on (the default), so an acknowledged append survives a crash of the process
or the machine; a failed append is cut back so no torn line stays behind. A torn last
line of a dead process's segment is skipped and counted. Consumed segments are deleted
(the own one truncated), so the journal holds only rows not yet in the database.

All file work runs on one dedicated thread; the event loop never touches the disk.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from hybridinference.background import background_executor
from hybridinference.schemas.records import RequestRecord
from hybridinference.storage.rows import request_from_json, request_to_json

logger = logging.getLogger(__name__)
T = TypeVar("T")
PATTERN = "journal-*.jsonl"


@dataclass(slots=True)
class _Segment:
    path: Path
    handle: IO[bytes]
    offset: int = 0  # first byte not yet replayed
    size: int = 0
    own: bool = False


@dataclass(frozen=True, slots=True)
class JournalBatch:
    records: list[RequestRecord]
    segment: Path
    end: int  # offset after the last line read


class Journal:
    def __init__(self, directory: Path, *, fsync: bool = True) -> None:
        self.directory = directory
        self._fsync = fsync
        self._executor = background_executor("journal")
        self._segments: list[_Segment] = []
        self.corrupt_lines = 0

    async def _run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    @property
    def pending(self) -> bool:
        return any(s.offset < s.size or not s.own for s in self._segments)

    @property
    def pending_bytes(self) -> int:
        return sum(s.size - s.offset for s in self._segments)

    async def open(self) -> None:
        await self._run(self._open)

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"journal-{time.time_ns():020d}-{os.getpid()}.jsonl"
        own = self._lock(self.directory / name, create=True)
        if own is None:  # pragma: no cover - a fresh unique name is never locked
            raise OSError(f"cannot lock journal segment {name}")
        own.own = True
        orphans = [
            segment
            for path in sorted(self.directory.glob(PATTERN))
            if path.name != name and (segment := self._lock(path, create=False)) is not None
        ]
        if orphans:
            logger.warning(
                "replaying %d journal segment(s) left by a stopped gateway", len(orphans)
            )
        self._segments = [*orphans, own]

    @staticmethod
    def _lock(path: Path, *, create: bool) -> _Segment | None:
        try:
            handle = path.open("ab+" if create else "rb+")
        except FileNotFoundError:  # another process adopted and finished it
            return None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # a live process owns it
            handle.close()
            return None
        if not create and not path.exists():  # deleted between open and lock
            handle.close()
            return None
        return _Segment(path=path, handle=handle, size=os.fstat(handle.fileno()).st_size)

    async def append(self, records: Sequence[RequestRecord]) -> None:
        """Raises ``OSError`` when the rows could not be made durable."""
        data = b"".join(request_to_json(r) + b"\n" for r in records)
        await self._run(lambda: self._append(data))

    def _append(self, data: bytes) -> None:
        own = self._segments[-1]
        # Straight to the (O_APPEND) descriptor, past the file object's buffer: after a
        # failed write (disk full) a buffer would keep the rejected bytes and write them
        # out later, and its flush would make the cut-back below fail too.
        fd = own.handle.fileno()
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if self._fsync:
                os.fsync(fd)
        except OSError:
            try:
                os.ftruncate(fd, own.size)
            except OSError:
                logger.exception("could not cut back a failed journal append")
            raise
        own.size += len(data)

    async def read(self, limit: int) -> JournalBatch | None:
        """The oldest rows not yet replayed (at most ``limit``); None when empty."""
        return await self._run(lambda: self._read(limit))

    def _read(self, limit: int) -> JournalBatch | None:
        for segment in self._segments:
            if segment.offset >= segment.size:
                if not segment.own:
                    return JournalBatch([], segment.path, segment.offset)  # to delete it
                continue
            handle = segment.handle
            handle.seek(segment.offset)
            records: list[RequestRecord] = []
            position = segment.offset
            while len(records) < limit and position < segment.size:
                line = handle.readline(max(0, segment.size - position))
                position += len(line)
                if not line.endswith(b"\n"):
                    self.corrupt_lines += 1  # a torn write of a process that died
                    logger.error("skipping a torn line in journal %s", segment.path.name)
                    continue
                try:
                    records.append(request_from_json(line))
                except (ValueError, TypeError):
                    self.corrupt_lines += 1
                    logger.error("skipping an unreadable line in journal %s", segment.path.name)
            return JournalBatch(records, segment.path, position)
        return None

    async def commit(self, batch: JournalBatch) -> None:
        """Mark the batch's rows as written; drop segments that are used up."""
        await self._run(lambda: self._commit(batch))

    def _commit(self, batch: JournalBatch) -> None:
        for segment in list(self._segments):
            if segment.path != batch.segment:
                continue
            segment.offset = batch.end
            if segment.offset < segment.size:
                return
            if segment.own:
                segment.handle.truncate(0)
                segment.offset = segment.size = 0
            else:
                segment.path.unlink(missing_ok=True)
                segment.handle.close()
                self._segments.remove(segment)

    async def aclose(self) -> None:
        def close() -> None:
            for segment in self._segments:
                if segment.own and segment.size == 0:
                    segment.path.unlink(missing_ok=True)
                segment.handle.close()
            self._segments = []

        await self._run(close)
        self._executor.shutdown(wait=True)
