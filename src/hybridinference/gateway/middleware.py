"""Pure-ASGI middleware: request id in and out, and the clock started."""

from __future__ import annotations

import random
import re
import secrets
import time
from collections import OrderedDict

from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = b"x-request-id"
_SAFE_ID = re.compile(rb"^[A-Za-z0-9._:\-]{1,128}$")
#: a request head larger than this is refused (431) before any endpoint sees it; the
#: parser has buffered it by then, so the edge proxy should cap it lower (nginx: 8 KiB lines)
MAX_HEADER_BYTES = 64 * 1024
MAX_HEADERS = 256
_TOO_LARGE = (
    b'{"error":{"message":"Request headers are too large.","type":"invalid_request_error",'
    b'"param":null,"code":"headers_too_large"}}'
)


async def _too_large_head(request_id: bytes, send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 431,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(_TOO_LARGE)).encode()),
                (b"connection", b"close"),
                (REQUEST_ID_HEADER, request_id),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _TOO_LARGE})


def new_request_id() -> bytes:
    """24 hex digits: the time in milliseconds (12), then 48 random bits (12). Ids made
    in time order land at the end of the request log's primary-key index, so a batch of
    inserts touches a few index pages instead of one random page per row (SQLite: 28 →
    9 µs of CPU per row at 100,000 rows, docs/performance.md). An id is unique, not
    secret: the random bits come from ``random`` (reseeded in forked children), not a
    ``getrandom`` system call per request."""
    return b"%012x%012x" % (time.time_ns() // 1_000_000, random.getrandbits(48))


class RecentClientIds:
    """Client-chosen request ids seen lately in this process (bounded). A client that
    reuses one (a retry with the same ``X-Request-ID``) still gets its own log row: the
    repeat is logged as ``<id>~<suffix>`` instead of colliding with the first row."""

    def __init__(self, capacity: int = 65_536) -> None:
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def unique(self, client_id: str) -> str:
        if client_id in self._seen:
            return f"{client_id}~{secrets.token_hex(4)}"
        self._seen[client_id] = None
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return client_id


class RequestContextMiddleware:
    """Accepts a well-formed client ``X-Request-ID`` (else makes one) and echoes it on
    every response; records the start time for latency."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._recent = RecentClientIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id: bytes | None = None
        head_bytes = 0
        seen_id = False
        for name, value in scope["headers"]:
            head_bytes += len(name) + len(value) + 4
            if name == REQUEST_ID_HEADER and not seen_id:  # only the first one counts
                seen_id = True
                if _SAFE_ID.match(value):
                    request_id = value
        if request_id is None:
            request_id = new_request_id()
            scope["hybridinference.request_id"] = request_id.decode()
        else:
            scope["hybridinference.request_id"] = self._recent.unique(request_id.decode())
        scope["hybridinference.started"] = time.perf_counter()
        if head_bytes > MAX_HEADER_BYTES or len(scope["headers"]) > MAX_HEADERS:
            await _too_large_head(request_id, send)
            return

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, request_id)]
            await send(message)

        await self.app(scope, receive, send_with_id)
