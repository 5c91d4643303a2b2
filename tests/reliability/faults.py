"""Upstreams that misbehave in ways the scripted OpenAI fake does not: on real loopback
sockets, each fault chosen by the request's ``model`` (an aiohttp app) or by the server
itself (raw sockets, for faults below HTTP).

``FaultUpstream`` models:

- ``endless...``        a stream whose chunks never stop (only a total deadline ends it)
- ``dripjson...``       a JSON answer trickled one byte every 50 ms
- ``oversized...``      declares a 1 GiB body, sends a little, then waits
- ``flood...``          a stream of 64 KiB events as fast as the reader takes them; the
                        bytes written so far are in ``sent[model]`` (backpressure checks)
- ``shape...``          200 with JSON of the wrong shape (no ``choices``)
- ``empty...``          200 with an empty body
- ``echo...``           400 whose message quotes the Authorization header it got, with
                        CR/LF and a forged JSON log line (secret and injection checks)

``DripServer``: answers any request with an HTTP response trickled one byte per 100 ms
(the status line never completes in time). ``Blackhole``: a listening socket whose
backlog is full and that never accepts, so connecting hangs until the client gives up.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Iterator

import orjson
from aiohttp import web

from tests.fakes.openai_upstream import _wait_until_closed as wait_until_closed
from tests.fakes.servers import LoopThread

CHUNK = {
    "id": "chatcmpl-x",
    "object": "chat.completion.chunk",
    "created": 0,
    "model": "x",
    "choices": [{"index": 0, "delta": {"content": "tick "}, "finish_reason": None}],
}
ANSWER = {
    "id": "chatcmpl-x",
    "object": "chat.completion",
    "created": 0,
    "model": "x",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "late"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


class FaultUpstream:
    def __init__(self) -> None:
        self.sent: dict[str, int] = {}
        self.closed: dict[str, float] = {}  # model -> when the gateway went away
        self.app = web.Application()
        self.app.router.add_post("/v1/chat/completions", self.chat)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        model = str(body.get("model", ""))
        for prefix, handler in (
            ("endless", self._endless),
            ("dripjson", self._drip_json),
            ("oversized", self._oversized),
            ("flood", self._flood),
        ):
            if model.startswith(prefix):
                try:
                    return await handler(request, model)
                except (ConnectionResetError, asyncio.CancelledError):
                    self.closed[model] = time.monotonic()
                    raise
        if model.startswith("echo"):  # a careless upstream: quotes the credentials back
            message = (
                f"bad request; you sent {request.headers.get('Authorization')}"
                '\r\nSet-Cookie: evil=1\n{"level": "critical", "msg": "forged"}'
            )
            return web.json_response({"error": {"message": message}}, status=400)
        if model.startswith("shape"):
            return web.json_response({"object": "chat.completion", "id": "x"})
        return web.Response(body=b"", content_type="application/json")

    async def _endless(self, request: web.Request, model: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        while True:
            await response.write(b"data: " + orjson.dumps(CHUNK) + b"\n\n")
            await asyncio.sleep(0.05)

    async def _drip_json(self, request: web.Request, model: str) -> web.StreamResponse:
        data = orjson.dumps(ANSWER)
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = len(data)
        await response.prepare(request)
        for i in range(len(data)):
            await response.write(data[i : i + 1])
            await asyncio.sleep(0.05)
        return response

    async def _oversized(self, request: web.Request, model: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.content_length = 1 << 30
        await response.prepare(request)
        await response.write(b'{"choices": [')
        await wait_until_closed(request)  # the gateway gives up first
        return response

    async def _flood(self, request: web.Request, model: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        event = dict(CHUNK)
        event["choices"] = [{"index": 0, "delta": {"content": "x" * 65536}, "finish_reason": None}]
        line = b"data: " + orjson.dumps(event) + b"\n\n"
        self.sent[model] = 0
        for _ in range(4096):  # 256 MiB if nothing pushes back
            await response.write(line)
            self.sent[model] += len(line)
        return response


class DripServer:
    """Any request gets ``HTTP/1.1 200 OK...`` one byte per 100 ms."""

    def __init__(self, thread: LoopThread) -> None:
        self._thread = thread
        self._server: asyncio.Server | None = None
        self.port = 0

    def start(self) -> DripServer:
        async def serve() -> None:
            self._server = await asyncio.start_server(self._drip, "127.0.0.1", 0)
            self.port = self._server.sockets[0].getsockname()[1]

        self._thread.call(serve())
        return self

    async def _drip(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.CancelledError):
            await reader.readuntil(b"\r\n\r\n")
            for byte in b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n":
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.1)
        writer.close()

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()

        self._thread.call(close())


@contextlib.contextmanager
def blackhole() -> Iterator[int]:
    """A loopback port whose accept queue is full: a new connection's SYN is dropped and
    the connect hangs (nothing leaves the machine). Yields the port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    try:
        for _ in range(8):  # fill the queue (its size is backlog + 1 on Linux)
            filler = socket.socket()
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
            fillers.append(filler)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
