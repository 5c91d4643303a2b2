"""Pure-ASGI middleware: request id in and out, and the clock started."""

from __future__ import annotations

import re
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = b"x-request-id"
_SAFE_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")


class RequestContextMiddleware:
    """Accepts a well-formed client ``X-Request-ID`` (else makes one) and echoes it on
    every response; records the start time for latency."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id: bytes | None = None
        for name, value in scope["headers"]:
            if name == REQUEST_ID_HEADER:
                if _SAFE_ID.match(value):
                    request_id = value
                break
        if request_id is None:
            request_id = secrets.token_hex(12).encode()
        scope["hybridinference.request_id"] = request_id.decode()
        scope["hybridinference.started"] = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, request_id)]
            await send(message)

        await self.app(scope, receive, send_with_id)
