"""The translating adapters' shared upstream calls (adapters.upstream on adapters.h1)
against scripted servers on real sockets: keep-alive reuse, status mapping, first-byte
and idle timeouts, line limits, a stream left early, the probe's bound, and the paths the
native adapters send (the Gemini model name as one encoded segment, ``?alt=sse`` kept)."""

from __future__ import annotations

import asyncio
from contextlib import AbstractAsyncContextManager

import pytest

from hybridinference.adapters import upstream
from hybridinference.adapters.base import Endpoint, UpstreamCall
from hybridinference.adapters.gemini import GeminiAdapter
from hybridinference.adapters.h1 import ConnectionPool
from hybridinference.adapters.upstream import health_probe, lines, open_stream, post_json
from hybridinference.config.schema import GeminiProviderConfig
from hybridinference.errors import (
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamTimeout,
)
from tests.fakes.scripted_http import Handler, ScriptedServer
from tests.fakes.scripted_http import serving as scripted_serving

HEADERS = ConnectionPool.header_block({"Content-Type": "application/json"})
ROUTE = "up"
STREAM_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


def serving(handler: Handler) -> AbstractAsyncContextManager[tuple[ScriptedServer, ConnectionPool]]:
    return scripted_serving(handler, prefix="/base")


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def make_call(first_byte: float = 2.0, idle: float = 2.0) -> UpstreamCall:
    deadline = asyncio.get_running_loop().time() + 10
    return UpstreamCall(Endpoint.CHAT, {}, "r", first_byte, idle, deadline)


async def test_json_calls_share_one_connection_and_statuses_are_mapped() -> None:
    answers = [
        b'HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n{"a": 1}',
        b"HTTP/1.1 429 Too Many\r\nRetry-After: 7\r\nContent-Length: 2\r\n\r\n{}",
    ]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        for answer in answers:
            assert await server.request(reader) == b'{"q":true}'
            writer.write(answer)
        await reader.read()

    async with serving(handle) as (server, pool):
        assert await post_json(pool, "/v1/x", {"q": True}, HEADERS, make_call(), ROUTE) == {"a": 1}
        with pytest.raises(UpstreamRateLimited) as caught:
            await post_json(pool, "/v1/x", {"q": True}, HEADERS, make_call(), ROUTE)
        assert caught.value.retry_after == 7
        assert server.connections == 1
        assert server.heads[0].startswith(b"POST /base/v1/x HTTP/1.1\r\n")


async def test_a_stream_left_early_closes_the_connection() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        await server.request(reader)
        writer.write(STREAM_HEAD + chunk(b"one\n") + chunk(b"two\n"))
        await reader.read()  # until the client closes

    async with serving(handle) as (server, pool):
        call = make_call()
        async with open_stream(pool, "/s", {}, HEADERS, call, ROUTE) as response:
            async for line in lines(response, call):
                assert line == b"one\n"
                break
        await asyncio.wait_for(server.closed.wait(), 2.0)
        assert pool.open_connections == 0


async def test_a_whole_stream_goes_back_to_the_pool() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        while await server.request(reader) is not None:
            writer.write(STREAM_HEAD + chunk(b"one\ntw") + chunk(b"o\nend") + b"0\r\n\r\n")

    async with serving(handle) as (server, pool):
        for _ in range(2):
            call = make_call()
            async with open_stream(pool, "/s", {}, HEADERS, call, ROUTE) as response:
                got = [line async for line in lines(response, call)]
            assert got == [b"one\n", b"two\n", b"end"]
        assert server.connections == 1


@pytest.mark.parametrize("lines_sent", [0, 1])
async def test_no_line_within_the_first_byte_or_idle_timeout_is_a_timeout(lines_sent: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        await server.request(reader)
        writer.write(STREAM_HEAD + chunk(b"one\n") * lines_sent)
        await reader.read()

    async with serving(handle) as (server, pool):
        call = make_call(first_byte=0.2, idle=0.2)
        got = []
        with pytest.raises(UpstreamTimeout):
            async with open_stream(pool, "/s", {}, HEADERS, call, ROUTE) as response:
                async for line in lines(response, call):
                    got.append(line)
        assert len(got) == lines_sent
        await asyncio.wait_for(server.closed.wait(), 2.0)


async def test_an_overlong_line_and_a_stream_error_status_are_mapped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(upstream, "MAX_LINE_BYTES", 64)
    answers = [
        STREAM_HEAD + chunk(b"x" * 100 + b"\n") + b"0\r\n\r\n",
        b'HTTP/1.1 400 Bad\r\nContent-Length: 30\r\n\r\n{"error": {"message": "nope"}}',
    ]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        while answers and await server.request(reader) is not None:
            writer.write(answers.pop(0))
        await reader.read()

    async with serving(handle) as (server, pool):
        call = make_call()
        with pytest.raises(UpstreamProtocolError):
            async with open_stream(pool, "/s", {}, HEADERS, call, ROUTE) as response:
                async for _line in lines(response, call):
                    pass
        with pytest.raises(UpstreamRejected) as caught:
            async with open_stream(pool, "/s", {}, HEADERS, call, ROUTE):
                pass
        assert caught.value.status_code == 400
        assert "nope" in caught.value.message


async def test_the_probe_is_bounded_in_all(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(upstream, "PROBE_TIMEOUT", 0.3)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        await server.request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")  # and no more
        await reader.read()

    async with serving(handle) as (server, pool):
        with pytest.raises(UpstreamTimeout):
            await health_probe(pool, "/models", HEADERS, ROUTE)
        assert server.heads[0].startswith(b"GET /base/models HTTP/1.1\r\n")


async def test_the_gemini_model_is_one_encoded_path_segment_and_alt_sse_is_kept() -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _n: int) -> None:
        while await server.request(reader) is not None:
            writer.write(b"HTTP/1.1 400 Bad\r\nContent-Length: 2\r\n\r\n{}")

    async with serving(handle) as (server, pool):
        config = GeminiProviderConfig(kind="gemini", base_url="http://unused")
        adapter = GeminiAdapter("gem", config, pool, "key")
        messages = [{"role": "user", "content": "hi"}]
        call = UpstreamCall(
            Endpoint.CHAT, {"model": "../a b?c%", "messages": messages}, "r", 2, 2, 1e9
        )
        with pytest.raises(UpstreamRejected):
            await adapter.complete(call)
        with pytest.raises(UpstreamRejected):
            async for _chunk in adapter.stream(call):
                pass
        targets = [head.split(b" ")[1] for head in server.heads]
        assert targets == [
            b"/base/v1beta/models/..%2Fa%20b%3Fc%25:generateContent",
            b"/base/v1beta/models/..%2Fa%20b%3Fc%25:streamGenerateContent?alt=sse",
        ]
        assert b"x-goog-api-key: key\r\n" in server.heads[0]
