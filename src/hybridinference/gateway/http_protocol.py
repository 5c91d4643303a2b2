"""uvicorn's httptools protocol, with each response head written together with the first
body bytes.

uvicorn writes the status line and headers the moment the app sends
``http.response.start`` and the body with the next message: two ``send`` system calls per
answer, and for a client that reads the head as it arrives, two wake-ups before the body
is in (the head alone, then the body). Here the head is held until the first body
message of the same loop turn and goes out in the same write; a response whose body is
not ready within that turn (a stream that has nothing to say yet) gets its head written
at the end of the turn, as uvicorn would have. Everything else — parsing, keep-alive,
flow control, pipelining, timeouts — is uvicorn's own (pinned in pyproject.toml: this
relies on ``RequestResponseCycle.send`` writing through ``self.transport`` and awaiting
only the flow-control drain, true of uvicorn 0.54). Measured in docs/performance.md.

It also tells the app when the client goes away without a task per request waiting in
``receive()`` for ``http.disconnect``: the cycle is in the scope under
``DISCONNECT_WATCH`` and calls back the one function given to ``watch_disconnect`` when
the connection is lost before the response is complete (``exchange.cancel_on_disconnect``
uses it; under another server it falls back to a watcher task).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any

from uvicorn._types import ASGI3Application, ASGISendEvent
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

#: what ``uvicorn.Config(http=...)`` (and ``uvicorn --http``) takes to serve with it
UVICORN_HTTP = "hybridinference.gateway.http_protocol:OneWriteProtocol"
#: the scope key of a weak reference to the request's ``OneWriteCycle`` (``watch_disconnect``)
DISCONNECT_WATCH = "hybridinference.disconnect_watch"


class _Held:
    """Stands in for the transport while uvicorn renders the head: keeps what it writes."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self.data = b""

    def write(self, data: bytes) -> None:
        self.data += data

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _Prefixed:
    """Stands in for the transport for one body message: writes the held head with it."""

    def __init__(self, transport: asyncio.Transport, head: bytes) -> None:
        self._transport = transport
        self.head = head  # empty once written

    def write(self, data: bytes) -> None:
        head, self.head = self.head, b""
        self._transport.write(head + data if head else data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class OneWriteCycle(RequestResponseCycle):
    """A request/response cycle that sends the response head with its first body bytes."""

    _held: bytes = b""
    _flush: asyncio.Handle | None = None
    _on_disconnect: Callable[[], None] | None = None

    def watch_disconnect(self, callback: Callable[[], None] | None) -> bool:
        """Have ``callback`` called (once) if the connection is lost before the response is
        complete; ``None`` stops watching. False: the client has already gone."""
        self._on_disconnect = callback
        return not self.disconnected

    def _connection_lost(self) -> None:
        callback, self._on_disconnect = self._on_disconnect, None
        if callback is not None and self.disconnected:
            callback()

    async def send(self, message: ASGISendEvent) -> None:
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()  # first, so that uvicorn's send below never suspends
        if message["type"] == "http.response.start" and not self.response_started:
            transport = self.transport
            held = self.transport = _Held(transport)  # type: ignore[assignment]
            try:
                await super().send(message)
            finally:
                self.transport = transport
            self._held = held.data
            self._flush = asyncio.get_running_loop().call_soon(self._write_held)
            return
        if not self._held:
            await super().send(message)
            return
        assert self._flush is not None
        self._flush.cancel()
        self._flush = None  # it holds this cycle (a reference cycle the GC would have to find)
        transport = self.transport
        prefixed = self.transport = _Prefixed(transport, self._held)  # type: ignore[assignment]
        self._held = b""
        try:
            await super().send(message)
        finally:
            self.transport = transport
        if prefixed.head:  # nothing was written (a HEAD request's body): the head alone
            self._held = prefixed.head
            self._write_held()

    def _write_held(self) -> None:
        """The end of the turn came before a body message: the head goes out alone."""
        held, self._held = self._held, b""
        self._flush = None
        if held and not self.disconnected and not self.transport.is_closing():
            self.transport.write(held)


class OneWriteProtocol(HttpToolsProtocol):
    """``HttpToolsProtocol`` whose requests run as ``OneWriteCycle``."""

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: ASGI3Application) -> None:
        cycle.__class__ = OneWriteCycle
        # a weak reference: the cycle holds the scope, and a scope holding the cycle would
        # leave every request's objects for the garbage collector instead of freeing them
        cycle.scope[DISCONNECT_WATCH] = weakref.ref(cycle)  # type: ignore[literal-required]
        super()._start_asgi_task(cycle, app)

    def connection_lost(self, exc: Exception | None) -> None:
        cycle = self.cycle
        super().connection_lost(exc)
        if isinstance(cycle, OneWriteCycle):
            cycle._connection_lost()
