"""Background work: the one way to stop a background task (refreshers, watchers,
probes), and the low-priority thread that blocking work (a database file, a journal) runs on."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` (if any) and wait until it has finished unwinding."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


#: how much lower than the event loop's thread the background threads run (``nice`` steps)
THREAD_NICENESS = 5


def lower_thread_priority() -> None:
    """Give the calling thread a lower CPU priority than the event loop's (Linux: a
    thread has its own nice value). A store's writer thread that shares a core with the
    loop otherwise keeps it for whole scheduler slices: at 1,000 requests/s the request
    log's batches held individual request steps for 4–6 ms (docs/performance.md). Still a
    share, not starvation: under saturation the writer gets about a quarter of a core."""
    with contextlib.suppress(OSError, AttributeError):  # not permitted, or not Linux
        thread = threading.get_native_id()
        niceness = os.getpriority(os.PRIO_PROCESS, thread)  # inherited from its creator
        os.setpriority(os.PRIO_PROCESS, thread, min(19, niceness + THREAD_NICENESS))


def background_executor(name: str) -> ThreadPoolExecutor:
    """One thread for blocking work (a database file, a journal) at a lower priority."""
    return ThreadPoolExecutor(
        max_workers=1, thread_name_prefix=name, initializer=lower_thread_priority
    )
