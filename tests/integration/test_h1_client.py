"""The lean upstream HTTP/1.1 client (adapters.h1) against scripted servers on real
sockets: keep-alive reuse, the stale keep-alive retry, chunked and gzip bodies, bodies
delimited by the connection's end, lines, limits, timeouts and failures."""

from __future__ import annotations

import asyncio
import gzip
import ssl

import pytest
import trustme

from hybridinference.adapters import h1
from tests.fakes.scripted_http import Handler, ScriptedServer, read_request, serving

HEADERS = h1.ConnectionPool.header_block({"Content-Type": "application/json"})


def answer(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


def echo_forever(server_requests: list[bytes]) -> Handler:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        while (request := await read_request(reader)) is not None:
            server_requests.append(request[0])
            writer.write(answer(b'{"n": %d}' % len(server_requests)))

    return handle


async def test_requests_reuse_one_keep_alive_connection_and_send_one_head() -> None:
    seen: list[bytes] = []
    async with serving(echo_forever(seen)) as (server, pool):
        for n in (1, 2, 3):
            response = await pool.request(b"POST", "/chat/completions", HEADERS, b"{}", 2.0)
            assert response.status == 200
            assert await response.read(1024, 2.0) == b'{"n": %d}' % n
            response.release()
        assert server.connections == 1
        assert pool.open_connections == 1
    head = seen[0].split(b"\r\n")
    assert head[0] == b"POST /v1/chat/completions HTTP/1.1"
    assert b"Content-Type: application/json" in head
    assert b"Content-Length: 2" in head
    assert any(line.startswith(b"Host: 127.0.0.1:") for line in head)


async def test_a_keep_alive_connection_the_server_dropped_is_retried_once_fresh() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await read_request(reader)
        writer.write(answer(b"first" if n == 1 else b"fresh"))
        if n == 1:  # the next request on this connection finds it closed, unanswered
            await read_request(reader)
            writer.transport.abort()

    async with serving(handle) as (server, pool):
        response = await pool.request(b"POST", "/x", HEADERS, b"{}", 2.0)
        assert await response.read(1024, 2.0) == b"first"
        response.release()
        response = await pool.request(b"POST", "/x", HEADERS, b"{}", 2.0)
        assert await response.read(1024, 2.0) == b"fresh"
        response.release()
        assert server.connections == 2


async def test_a_fresh_connection_closed_before_the_answer_is_an_error() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        await read_request(reader)
        writer.transport.abort()

    async with serving(handle) as (server, pool):
        with pytest.raises(h1.ConnectionClosed):
            await pool.request(b"POST", "/x", HEADERS, b"{}", 2.0)
        assert server.connections == 1  # not retried: the server may have seen it


async def test_chunked_gzip_body_is_decoded_and_read_line_by_line() -> None:
    payload = gzip.compress(b"data: one\n\ndata: two\n\n")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n")
        writer.write(b"Content-Encoding: gzip\r\n\r\n")
        for piece in (payload[:7], payload[7:]):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")
        await read_request(reader)

    async with serving(handle) as (_server, pool):
        response = await pool.request(b"POST", "/x", HEADERS, b"{}", 2.0)
        lines = []
        while line := await response.readline(1024, 2.0):
            lines.append(line)
        assert lines == [b"data: one\n", b"\n", b"data: two\n", b"\n"]
        response.release()
        assert pool.open_connections == 1


async def test_a_body_ended_by_closing_the_connection_is_complete() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npart one, ")
        await writer.drain()
        await asyncio.sleep(0.01)
        writer.write(b"part two")

    async with serving(handle) as (_server, pool):
        response = await pool.request(b"POST", "/x", HEADERS, b"{}", 2.0)
        assert await response.read(1024, 2.0) == b"part one, part two"
        response.release()
        assert pool.open_connections == 0


async def test_limits_refuse_a_declared_oversized_body_and_an_overlong_line() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\nsome")
        await read_request(reader)

    async with serving(handle) as (_server, pool):
        response = await pool.request(b"POST", "/x", HEADERS, b"{}", 2.0)
        with pytest.raises(h1.BodyTooLarge):
            await response.read(1024, 2.0)
        response.close()
        response = await pool.request(b"POST", "/x", HEADERS, b"{}", 2.0)
        with pytest.raises(h1.BodyTooLarge):
            await response.readline(2, 2.0)
        response.close()


async def test_a_whole_line_over_the_limit_is_refused_even_when_it_arrives_at_once() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        await read_request(reader)
        writer.write(answer(b"1234\n12345\n"))
        await read_request(reader)

    async with serving(handle) as (_server, pool):
        response = await pool.request(b"POST", "/x", HEADERS, b"{}", 2.0)
        await asyncio.sleep(0.05)  # the whole body is buffered before the first readline
        assert await response.readline(5, 2.0) == b"1234\n"  # exactly the limit passes
        with pytest.raises(h1.BodyTooLarge):
            await response.readline(5, 2.0)
        response.close()


async def test_no_answer_times_out_and_closing_tells_the_server() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        await read_request(reader)
        await reader.read()  # until the client closes

    async with serving(handle) as (server, pool):
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TimeoutError):
            await pool.request(b"POST", "/x", HEADERS, b"{}", 0.2)
        assert 0.15 < loop.time() - started < 1.5
        await asyncio.wait_for(server.closed.wait(), 2.0)  # the request closed its connection
        assert pool.open_connections == 0


async def test_a_stream_left_early_closes_its_connection() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        writer.write(b"6\r\nline1\n\r\n")
        await reader.read()

    async with serving(handle) as (server, pool):
        response = await pool.request(b"POST", "/x", HEADERS, b"{}", 2.0)
        assert await response.readline(1024, 2.0) == b"line1\n"
        response.release()  # not complete: released means closed
        await asyncio.wait_for(server.closed.wait(), 2.0)


async def test_refused_and_garbage_are_named() -> None:
    listener = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()
    pool = h1.ConnectionPool(f"http://127.0.0.1:{port}", connect_timeout=1.0)
    with pytest.raises(h1.ConnectFailed) as caught:
        await pool.request(b"GET", "/", HEADERS, b"", 2.0)
    assert caught.value.reason == "connection refused"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        await read_request(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await reader.read()

    async with serving(handle) as (_server, pool):
        with pytest.raises(h1.ProtocolError):
            await pool.request(b"POST", "/x", HEADERS, b"{}", 2.0)


def test_header_blocks_refuse_line_breaks_and_urls_must_be_http() -> None:
    with pytest.raises(ValueError, match="line break"):
        h1.ConnectionPool.header_block({"Authorization": "Bearer x\r\nEvil: 1"})
    with pytest.raises(ValueError, match="http"):
        h1.ConnectionPool("ftp://example.org", connect_timeout=1.0)
    pool = h1.ConnectionPool("https://api.example.org/v1/", connect_timeout=1.0)
    assert (pool.host, pool.port, pool.prefix) == ("api.example.org", 443, "/v1")


async def test_finish_waits_briefly_for_the_end_of_the_body_to_pool_the_connection() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        while await read_request(reader) is not None:
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            writer.write(b"5\r\nlast\n\r\n")
            await writer.drain()
            await asyncio.sleep(0.01)  # the terminating chunk follows a little later ...
            if n == 1:
                writer.write(b"0\r\n\r\n")
            # ... or, on the second connection, never

    async with serving(handle) as (server, pool):
        response = await pool.request(b"POST", "/x", HEADERS, b"{}", 2.0)
        assert await response.readline(1024, 2.0) == b"last\n"
        await response.finish(1.0)
        response.release()
        assert pool.open_connections == 1  # pooled: the end arrived in time
        response = await pool.request(b"POST", "/x", HEADERS, b"{}", 2.0)
        assert await response.readline(1024, 2.0) == b"last\n"
        response.release()
        assert server.connections == 1  # the pooled connection was reused
        pool2 = h1.ConnectionPool(f"http://127.0.0.1:{pool.port}", connect_timeout=1.0)
        response = await pool2.request(b"POST", "/x", HEADERS, b"{}", 2.0)
        assert await response.readline(1024, 2.0) == b"last\n"
        await response.finish(0.1)  # no end comes: given up, the connection is closed
        response.release()
        await asyncio.sleep(0.05)  # the transport reports the close a turn later
        assert pool2.open_connections == 0
        await pool2.aclose()


async def test_https_verifies_the_server_certificate_and_reuses_the_connection() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    seen: list[bytes] = []
    server = ScriptedServer(echo_forever(seen))
    listener = await asyncio.start_server(server.serve, "127.0.0.1", 0, ssl=server_context)
    port = listener.sockets[0].getsockname()[1]
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    pool = h1.ConnectionPool(
        f"https://localhost:{port}/v1", connect_timeout=2.0, ssl_context=trusting
    )
    stranger = h1.ConnectionPool(f"https://localhost:{port}/v1", connect_timeout=2.0)
    try:
        for n in (1, 2):
            response = await pool.request(b"POST", "/chat/completions", HEADERS, b"{}", 2.0)
            assert await response.read(1024, 2.0) == b'{"n": %d}' % n
            response.release()
        assert server.connections == 1
        assert b"Host: localhost:%d" % port in seen[0]
        with pytest.raises(h1.ConnectFailed) as caught:  # the system store does not know our CA
            await stranger.request(b"POST", "/chat/completions", HEADERS, b"{}", 2.0)
        assert caught.value.reason == "TLS error"
    finally:
        await pool.aclose()
        await stranger.aclose()
        listener.close()


async def test_a_second_unasked_answer_closes_the_connection() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        while await read_request(reader) is not None:
            writer.write(answer(b"one") + answer(b"extra"))  # two answers, one request

    async with serving(handle) as (server, pool):
        response = await pool.request(b"POST", "/x", HEADERS, b"{}", 2.0)
        assert await response.read(1024, 2.0) == b"one"
        response.release()
        response = await pool.request(b"POST", "/x", HEADERS, b"{}", 2.0)
        assert await response.read(1024, 2.0) == b"one"  # not "extra": a fresh connection
        response.release()
        assert server.connections == 2
