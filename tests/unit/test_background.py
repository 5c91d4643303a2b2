"""The background thread that blocking work runs on yields the CPU to the event loop."""

from __future__ import annotations

import os
import threading

from hybridinference.background import THREAD_NICENESS, background_executor


def _niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_background_thread_runs_at_a_lower_priority_than_the_caller() -> None:
    before = _niceness()
    executor = background_executor("test-background")
    try:
        name, niceness = executor.submit(
            lambda: (threading.current_thread().name, _niceness())
        ).result(timeout=10)
    finally:
        executor.shutdown()
    assert name.startswith("test-background")
    assert niceness == min(19, before + THREAD_NICENESS)
    assert _niceness() == before  # the caller (the event loop's thread) is untouched
