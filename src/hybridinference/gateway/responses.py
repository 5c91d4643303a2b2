"""Responses: orjson JSON, the OpenAI error envelope, and an SSE response that never
buffers and cancels its producer the moment the client goes away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import orjson
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from hybridinference.errors import GatewayError
from hybridinference.gateway.exchange import ClientDisconnected, cancel_on_disconnect

SSE_HEADERS = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),
)


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class AnswerResponse(Response):
    """A 200 JSON answer: two ASGI messages with the headers built once, then ``after``
    (the request's log row and metrics), so that work is off the client's latency; it
    runs even when sending fails (the client went away), so the row is never lost."""

    def __init__(self, content: Any, headers: Mapping[str, str], after: Callable[[], None]) -> None:
        # Response.__init__ is skipped on purpose: its header building is generic
        self.status_code = 200
        self.background = None
        self.body = orjson.dumps(content)
        self._raw_headers = [
            (b"content-type", b"application/json"),
            (b"content-length", b"%d" % len(self.body)),
            *((k.encode(), v.encode()) for k, v in headers.items()),
        ]
        self._after = after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        del scope, receive
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self._raw_headers})
            await send({"type": "http.response.body", "body": self.body})
        finally:
            self._after()


def error_envelope(exc: GatewayError) -> dict[str, Any]:
    return {
        "error": {
            "message": exc.message,
            "type": exc.error_type,
            "param": exc.param,
            "code": exc.code,
        }
    }


def error_response(exc: GatewayError, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        error_envelope(exc),
        status_code=exc.status_code,
        headers={**exc.headers(), **(headers or {})},
    )


class EventStreamResponse(Response):
    """Streams ``body`` as it is produced. A client disconnect cancels the producer at once
    (closing the upstream request) and calls ``on_disconnect``."""

    def __init__(
        self,
        body: AsyncIterator[bytes],
        headers: Mapping[str, str],
        on_disconnect: Callable[[], None],
    ) -> None:
        # Response.__init__ is skipped on purpose: there is no body to render.
        self.status_code = 200
        self.background = None
        self._body = body
        self._raw_headers = [*SSE_HEADERS, *((k.encode(), v.encode()) for k, v in headers.items())]
        self._on_disconnect = on_disconnect

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        del scope
        # the pump runs in this task and only the disconnect watcher gets one (one task
        # and one loop turn less before the first byte than a pump task would take)
        try:
            await cancel_on_disconnect(receive, self._pump(send))
        except (ClientDisconnected, OSError):  # OSError: it went away while we wrote
            self._on_disconnect()
        except asyncio.CancelledError:  # the server gave up on us (shutdown): still one row
            self._on_disconnect()
            raise

    async def _pump(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self._raw_headers})
        try:
            async for data in self._body:
                await send({"type": "http.response.body", "body": data, "more_body": True})
        finally:
            closer = getattr(self._body, "aclose", None)
            if closer is not None:
                await closer()
        await send({"type": "http.response.body", "body": b"", "more_body": False})
