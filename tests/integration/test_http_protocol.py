"""The server protocol (``gateway.http_protocol``): a response head goes out in the same
write as the first body bytes, and alone when the body is not ready in the same turn.

A real uvicorn server on a real socket runs a small ASGI app; the protocol under test is
subclassed only to record what it hands the transport, and a plain ``http.client``
talks to it."""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
import uvloop

from hybridinference.gateway.http_protocol import OneWriteProtocol
from tests.fakes.servers import bind_socket

BODY = b'{"ok":true}'
LATE_BODY_DELAY = 0.3


class _Recording:
    """The real transport, with every write also kept in ``writes``."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport = transport
        self._writes = writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


WRITES: list[bytes] = []


class RecordingProtocol(OneWriteProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(_Recording(transport, WRITES))  # type: ignore[arg-type]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/json":
        headers = [(b"content-type", b"application/json"), (b"content-length", b"11")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": BODY})
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one", b"two"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/late":  # the body is not ready when the head is sent
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(LATE_BODY_DELAY)
        await send({"type": "http.response.body", "body": b"late"})


@pytest.fixture(scope="module")
def server() -> Iterator[int]:
    sock = bind_socket()
    config = uvicorn.Config(app, http=RecordingProtocol, lifespan="off", log_level="warning")
    srv = uvicorn.Server(config)
    srv.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=lambda: uvloop.run(srv.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.01)
    yield sock.getsockname()[1]
    srv.should_exit = True
    thread.join(10)


def _request(port: int, method: str, path: str) -> tuple[int, bytes]:
    WRITES.clear()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path)
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


def test_a_json_answer_is_one_write(server: int) -> None:
    status, body = _request(server, "GET", "/json")
    assert (status, body) == (200, BODY)
    assert len(WRITES) == 1
    assert WRITES[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert WRITES[0].endswith(b"\r\n\r\n" + BODY)


def test_a_stream_head_goes_with_its_first_chunk_and_later_chunks_alone(server: int) -> None:
    status, body = _request(server, "GET", "/stream")
    assert (status, body) == (200, b"onetwo")
    assert len(WRITES) == 3
    assert WRITES[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert WRITES[0].endswith(b"transfer-encoding: chunked\r\n\r\n3\r\none\r\n")
    assert WRITES[1:] == [b"3\r\ntwo\r\n", b"0\r\n\r\n"]


def test_a_head_request_still_gets_its_head(server: int) -> None:
    status, body = _request(server, "HEAD", "/json")
    assert (status, body) == (200, b"")
    assert len(WRITES) == 1
    assert WRITES[0].endswith(b"content-length: 11\r\n\r\n")


def test_a_head_whose_body_is_not_ready_is_sent_at_once(server: int) -> None:
    """The client sees the status before the body exists (it is not held for the body)."""
    with socket.create_connection(("127.0.0.1", server), timeout=10) as sock:
        sock.sendall(b"GET /late HTTP/1.1\r\nHost: test\r\n\r\n")
        started = time.monotonic()
        first = sock.recv(65536)
        waited = time.monotonic() - started
    assert first.startswith(b"HTTP/1.1 200 OK\r\n")
    assert first.endswith(b"\r\n\r\n")  # the head alone
    assert waited < LATE_BODY_DELAY / 2
