"""``cancel_on_disconnect``: a watcher task waits in ``receive()`` for ``http.disconnect``
and cancels the work, which runs in the caller's task (end to end, with a client that
goes away: tests/e2e/test_disconnect.py)."""

from __future__ import annotations

import asyncio

import pytest

from hybridinference.gateway.exchange import ClientDisconnected, cancel_on_disconnect


async def test_a_disconnect_cancels_the_work_and_says_so() -> None:
    messages: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    cancelled = asyncio.Event()

    async def work() -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    waiting = asyncio.create_task(cancel_on_disconnect(messages.get, work()))
    await asyncio.sleep(0.01)
    await messages.put({"type": "http.disconnect"})
    with pytest.raises(ClientDisconnected):
        await asyncio.wait_for(waiting, 5)
    assert cancelled.is_set()


async def test_work_that_finishes_first_returns_its_result() -> None:
    messages: asyncio.Queue[dict[str, str]] = asyncio.Queue()

    async def work() -> str:
        await asyncio.sleep(0)
        return "answer"

    assert await cancel_on_disconnect(messages.get, work()) == "answer"
