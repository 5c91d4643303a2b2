"""A fast mock OpenAI upstream for benchmarks: raw asyncio protocol on uvloop, httptools
parsing, TCP_NODELAY, one ``write`` per response (no Nagle/delayed-ACK trap).

Behaviour comes from the request's ``model`` (dash-separated tokens, any order):

- ``d<ms>``  answer (or start the stream) after ``<ms>`` milliseconds; default instantly
- ``n<k>``   a stream has ``<k>`` content chunks (default 20)
- ``g<ms>``  a stream's chunks are ``<ms>`` apart (default 0: all in one write)

``"stream": true`` in the body gets SSE (chunked transfer encoding) ending with a usage
chunk and ``[DONE]``; otherwise a chat.completion JSON object. Each content chunk's text is
``"t<i> "`` so a client can check that every chunk arrived intact and in order.

Run: ``python bench/mock_upstream.py [--host H] [--port P]``; it prints ``listening <port>``.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from dataclasses import dataclass

import httptools
import orjson
import uvloop

JSON_HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
NOT_FOUND = b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
MODELS = orjson.dumps({"object": "list", "data": [{"id": "mock", "object": "model"}]})


@dataclass(frozen=True, slots=True)
class Script:
    delay: float = 0.0
    chunks: int = 20
    gap: float = 0.0


def parse_script(model: str) -> Script:
    values = {"d": 0.0, "n": 20.0, "g": 0.0}
    for token in model.split("-"):
        if token[:1] in values and token[1:].isdigit():
            values[token[0]] = float(token[1:])
    return Script(values["d"] / 1000, int(values["n"]), values["g"] / 1000)


def completion(model: str) -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-mock",
            "object": "chat.completion",
            "created": 1700000000,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "Hello from the mock upstream."},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
        }
    )


def sse_chunk(model: str, index: int, last: bool) -> bytes:
    event = {
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "delta": {"content": f"t{index} "},
                "finish_reason": "stop" if last else None,
            }
        ],
    }
    return _http_chunk(b"data: " + orjson.dumps(event) + b"\n\n")


def sse_tail(model: str, chunks: int) -> bytes:
    usage = {
        "id": "chatcmpl-mock",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": [],
        "usage": {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks},
    }
    return (
        _http_chunk(b"data: " + orjson.dumps(usage) + b"\n\n")
        + _http_chunk(b"data: [DONE]\n\n")
        + b"0\r\n\r\n"
    )


def _http_chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class MockProtocol(asyncio.Protocol):
    """One connection: parse requests with httptools, answer each as scripted."""

    def __init__(self, cache: dict[str, tuple[Script, bytes]]) -> None:
        self._cache = cache
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._body: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, _exc: Exception | None) -> None:
        self._transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            if self._transport is not None:
                self._transport.close()

    # httptools callbacks
    def on_url(self, url: bytes) -> None:
        self._url = url

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        body = b"".join(self._body)
        self._body = []
        if self._parser.get_method() == b"GET":
            self._write(JSON_HEAD % len(MODELS) + MODELS)
            return
        if not self._url.endswith(b"/chat/completions"):
            self._write(NOT_FOUND)
            return
        request = orjson.loads(body)
        model = request.get("model", "mock")
        cached = self._cache.get(model)
        if cached is None:
            payload = completion(model)
            cached = self._cache[model] = (parse_script(model), payload)
        script, payload = cached
        if request.get("stream"):
            self._later(script.delay, self._stream, model, script, 0)
        else:
            self._later(script.delay, self._write, JSON_HEAD % len(payload) + payload)

    def _later(self, delay: float, func: object, *args: object) -> None:
        if delay > 0:
            self._loop.call_later(delay, func, *args)  # type: ignore[arg-type]
        else:
            func(*args)  # type: ignore[operator]

    def _write(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _stream(self, model: str, script: Script, index: int) -> None:
        head = SSE_HEAD if index == 0 else b""
        if script.gap <= 0:
            parts = [sse_chunk(model, i, i == script.chunks - 1) for i in range(script.chunks)]
            self._write(head + b"".join(parts) + sse_tail(model, script.chunks))
            return
        last = index == script.chunks - 1
        data = head + sse_chunk(model, index, last)
        if last:
            data += sse_tail(model, script.chunks)
        self._write(data)
        if not last and self._transport is not None:
            self._loop.call_later(script.gap, self._stream, model, script, index + 1)


async def serve(host: str, port: int) -> None:
    loop = asyncio.get_running_loop()
    cache: dict[str, tuple[Script, bytes]] = {}
    server = await loop.create_server(
        lambda: MockProtocol(cache), host, port, backlog=4096, reuse_address=True
    )
    bound = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"listening {bound}\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
