"""Scripted HTTP/1.1 servers on real sockets, for the upstream client's tests
(``adapters.h1`` and ``adapters.upstream``): a handler gets each connection's reader and
writer and the connection's number (1, 2, ...) and writes whatever bytes the test needs,
well-formed or not."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from hybridinference.adapters.h1 import ConnectionPool

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    """One request's head and body (by Content-Length); None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length)


class ScriptedServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.heads: list[bytes] = []
        self.closed = asyncio.Event()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer, self.connections)
        finally:
            writer.close()
            self.closed.set()

    async def request(self, reader: asyncio.StreamReader) -> bytes | None:
        """Read one request, record its head, return its body; None at EOF."""
        request = await read_request(reader)
        if request is None:
            return None
        self.heads.append(request[0])
        return request[1]


@asynccontextmanager
async def serving(
    handler: Handler, prefix: str = "/v1"
) -> AsyncIterator[tuple[ScriptedServer, ConnectionPool]]:
    """A server for ``handler`` on 127.0.0.1 and a pool aimed at it (base path ``prefix``)."""
    server = ScriptedServer(handler)
    listener = await asyncio.start_server(server.serve, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    pool = ConnectionPool(f"http://127.0.0.1:{port}{prefix}", connect_timeout=2.0)
    try:
        yield server, pool
    finally:
        await pool.aclose()
        listener.close()
