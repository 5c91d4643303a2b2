"""A TCP proxy on loopback that a test can cut and restore: how the storage fault tests
make PostgreSQL unreachable without stopping the shared server.

``cut()`` drops every open connection and from then on closes new ones at once (the
client sees a reset, exactly like a database that went away); ``restore()`` forwards
again. Runs on its own event loop thread, so sync tests and gateways in other threads
can use it alike.
"""

from __future__ import annotations

import asyncio
import contextlib

from tests.fakes.servers import LoopThread, bind_socket


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._thread = LoopThread("tcp-proxy")
        self._writers: set[asyncio.StreamWriter] = set()
        self._cut = False
        self.connections = 0
        sock = bind_socket()
        self.port: int = sock.getsockname()[1]
        self._server: asyncio.Server = self._thread.call(self._start(sock))

    async def _start(self, sock: object) -> asyncio.Server:
        return await asyncio.start_server(self._handle, sock=sock)  # type: ignore[arg-type]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._cut:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self.connections += 1
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()

    async def _abort_all(self) -> None:
        self._cut = True
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _resume(self) -> None:
        self._cut = False

    def cut(self) -> None:
        self._thread.call(self._abort_all())

    def restore(self) -> None:
        self._thread.call(self._resume())

    def stop(self) -> None:
        async def close() -> None:
            await self._abort_all()
            self._server.close()

        self._thread.call(close())
        self._thread.stop()
