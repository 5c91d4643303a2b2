"""HTTP calls shared by the adapters, on the lean client (``adapters.h1``): one JSON POST,
a streamed POST read line by line under the first-byte and idle deadlines, and the
health probe. Status errors go through ``http.error_for_status`` (the one mapping) and
transport errors through ``http.map_transport_errors``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any

import orjson

from hybridinference.adapters.base import UpstreamCall
from hybridinference.adapters.h1 import FINISH_SECONDS, ConnectionPool, Response
from hybridinference.adapters.http import error_for_status, map_transport_errors, remaining
from hybridinference.errors import UpstreamProtocolError

MAX_RESPONSE_BYTES = 64 * 1024 * 1024
MAX_ERROR_BYTES = 1024 * 1024
#: one stream line (a whole tool call's arguments may come in one event); longer is an error
MAX_LINE_BYTES = 16 * 1024 * 1024
PROBE_TIMEOUT = 5.0
#: a probe's answer is a model list; some (OpenRouter's) run past a megabyte
MAX_PROBE_BYTES = 16 * 1024 * 1024


def _post(
    pool: ConnectionPool, path: str, body: object, headers: bytes, call: UpstreamCall
) -> Awaitable[Response]:
    """Send the request; the response once its head arrived within the first-byte time
    (the pool's coroutine itself: no frame of its own on the await chain)."""
    return pool.request(
        b"POST",
        path,
        headers,
        orjson.dumps(body),
        call.remaining(call.first_byte_timeout),
    )


async def post_json(
    pool: ConnectionPool,
    path: str,
    body: object,
    headers: bytes,
    call: UpstreamCall,
    route: str,
) -> Any:
    """POST ``body`` to ``path`` (below the pool's base URL); the decoded JSON answer, or
    the mapped error."""
    with map_transport_errors(route):
        response = await _post(pool, path, body, headers, call)
        try:
            data = await response.read(MAX_RESPONSE_BYTES, call.remaining(call.idle_timeout))
        finally:
            response.release()
        if response.status >= 300:
            raise error_for_status(
                response.status, data, response.headers.get("retry-after"), route
            )
        return orjson.loads(data)


@asynccontextmanager
async def open_stream(
    pool: ConnectionPool,
    path: str,
    body: object,
    headers: bytes,
    call: UpstreamCall,
    route: str,
) -> AsyncIterator[Response]:
    """POST ``body`` and yield the streaming response once its status is good. Failures
    inside the block are mapped too. Leaving before the end of the body closes the
    connection, so the upstream sees the cancellation; a complete one is pooled again."""
    with map_transport_errors(route):
        response = await _post(pool, path, body, headers, call)
        try:
            if response.status >= 300:
                error_body = await response.read(MAX_ERROR_BYTES, call.remaining(call.idle_timeout))
                raise error_for_status(
                    response.status, error_body, response.headers.get("retry-after"), route
                )
            yield response
        except BaseException:
            response.close()  # left early (or failed): the upstream sees the cancellation
            raise
        else:  # the adapter saw its last event: the end of the body is usually right behind
            await response.finish(FINISH_SECONDS)
        finally:
            response.release()


async def lines(response: Response, call: UpstreamCall) -> AsyncIterator[bytes]:
    """The body's lines (ending included) until its end: the first within the first-byte
    timeout, each later one within the idle timeout, none past the deadline or longer
    than ``MAX_LINE_BYTES``."""
    wait = call.first_byte_timeout
    while True:
        line = await response.readline(MAX_LINE_BYTES, call.remaining(wait))
        if not line:
            return
        wait = call.idle_timeout
        yield line


async def health_probe(pool: ConnectionPool, path: str, headers: bytes, route: str) -> None:
    """A GET that costs no tokens (a model list); returns on a good status within
    ``PROBE_TIMEOUT`` seconds in all, else raises the mapped error."""
    deadline = asyncio.get_running_loop().time() + PROBE_TIMEOUT
    with map_transport_errors(route):
        response = await pool.request(b"GET", path, headers, b"", PROBE_TIMEOUT)
        try:
            body = await response.read(MAX_PROBE_BYTES, remaining(deadline, PROBE_TIMEOUT))
        finally:
            response.release()
        if response.status >= 300:
            raise error_for_status(response.status, body, None, route)


def decode_json(data: str | bytes, route: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise UpstreamProtocolError(f"{route} sent a malformed stream event") from exc


def protocol_error(route: str, what: str) -> UpstreamProtocolError:
    return UpstreamProtocolError(f"{route} {what}")
