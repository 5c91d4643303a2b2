"""HTTP calls shared by the translating adapters: one JSON POST, or a streamed POST read
line by line under the first-byte and idle deadlines. Status errors go through
``http.error_for_status`` (the one mapping) and transport errors through
``http.map_transport_errors``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson

from hybridinference.adapters.base import UpstreamCall
from hybridinference.adapters.http import (
    error_for_status,
    map_transport_errors,
    read_limited,
    remaining,
)
from hybridinference.errors import UpstreamProtocolError

MAX_RESPONSE_BYTES = 64 * 1024 * 1024
MAX_ERROR_BYTES = 1024 * 1024


async def post_json(
    session: aiohttp.ClientSession,
    url: str,
    body: object,
    headers: Mapping[str, str],
    call: UpstreamCall,
    route: str,
) -> Any:
    """POST ``body``; the decoded JSON answer, or the mapped error."""
    with map_transport_errors(route):
        async with asyncio.timeout(remaining(call.deadline, call.first_byte_timeout)):
            response = await session.post(url, data=orjson.dumps(body), headers=headers)
        try:
            async with asyncio.timeout(remaining(call.deadline, call.idle_timeout)):
                data = await read_limited(response, MAX_RESPONSE_BYTES, route)
        finally:
            response.release()
        if response.status >= 300:
            raise error_for_status(
                response.status, data, response.headers.get("Retry-After"), route
            )
        return orjson.loads(data)


@asynccontextmanager
async def open_stream(
    session: aiohttp.ClientSession,
    url: str,
    body: object,
    headers: Mapping[str, str],
    call: UpstreamCall,
    route: str,
) -> AsyncIterator[aiohttp.ClientResponse]:
    """POST ``body`` and yield the streaming response once its status is good. Leaving
    early closes the connection so the upstream sees the cancellation."""
    with map_transport_errors(route):
        async with asyncio.timeout(remaining(call.deadline, call.first_byte_timeout)):
            response = await session.post(url, data=orjson.dumps(body), headers=headers)
        try:
            if response.status >= 300:
                async with asyncio.timeout(remaining(call.deadline, call.idle_timeout)):
                    error_body = await response.content.read(MAX_ERROR_BYTES)
                raise error_for_status(
                    response.status, error_body, response.headers.get("Retry-After"), route
                )
            yield response
        finally:
            if not response.content.at_eof():
                response.close()
            else:
                response.release()


async def lines(response: aiohttp.ClientResponse, call: UpstreamCall) -> AsyncIterator[bytes]:
    """The body's lines (ending included) until EOF: the first within the first-byte
    timeout, each later one within the idle timeout."""
    wait = call.first_byte_timeout
    content = response.content
    while True:
        async with asyncio.timeout(remaining(call.deadline, wait)):
            line = await content.readline()
        if not line:
            return
        wait = call.idle_timeout
        yield line


def decode_json(data: str | bytes, route: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise UpstreamProtocolError(f"{route} sent a malformed stream event") from exc


def protocol_error(route: str, what: str) -> UpstreamProtocolError:
    return UpstreamProtocolError(f"{route} {what}")
