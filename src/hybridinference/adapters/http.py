"""The one place upstream failures become gateway errors (statuses and transport
failures), and the aiohttp session the off-path HTTP uses (engine ``/metrics`` scrapes);
per-request upstream calls go through ``adapters.h1``."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import orjson

from hybridinference.adapters import h1
from hybridinference.errors import (
    GatewayError,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamServerError,
    UpstreamTimeout,
    UpstreamUnavailable,
)

MAX_ERROR_MESSAGE = 500


def create_session(connect_timeout: float) -> aiohttp.ClientSession:
    """A keep-alive aiohttp session with TCP_NODELAY, for the engine ``/metrics`` scrapes."""
    connector = aiohttp.TCPConnector(
        limit=0,  # the gateway's own limits bound concurrency, not the pool
        limit_per_host=0,
        ttl_dns_cache=300,
        keepalive_timeout=60,
        enable_cleanup_closed=False,
        socket_factory=_nodelay_socket,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None, connect=connect_timeout),
        json_serialize=lambda obj: orjson.dumps(obj).decode(),
        skip_auto_headers=("User-Agent",),
        auto_decompress=True,
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),  # upstream cookies are never wanted; saves a jar pass
    )


def _nodelay_socket(addr_info: tuple[int, int, int, str, tuple[str, int]]) -> socket.socket:
    family, type_, proto, _, _ = addr_info
    sock = socket.socket(family=family, type=type_, proto=proto)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def error_for_status(
    status: int, body: bytes, retry_after: str | None, route: str
) -> UpstreamError:
    """Map an upstream HTTP error status to a gateway error; most specific first."""
    detail = _upstream_message(body)
    suffix = f": {detail}" if detail else ""
    if status == 429:
        return UpstreamRateLimited(
            f"{route} is rate limited{suffix}", retry_after=_seconds(retry_after)
        )
    if status in (408, 504):
        return UpstreamTimeout(f"{route} timed out (HTTP {status}){suffix}")
    if status in (401, 402, 403):
        # The gateway's own credentials (or credit) were refused: a route fault, not the
        # client's; the body is not echoed, it may quote part of the key.
        return UpstreamUnavailable(f"{route} refused the gateway's credentials (HTTP {status})")
    if status == 404:
        return UpstreamServerError(f"{route} does not know the model (HTTP 404){suffix}")
    if status >= 500 or status < 400:
        return UpstreamServerError(f"{route} failed (HTTP {status}){suffix}")
    return UpstreamRejected(f"{route} rejected the request{suffix}", status_code=status)


def _upstream_message(body: bytes) -> str:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    message: object = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            message = err.get("message")
        elif isinstance(err, str):
            message = err
        else:
            message = data.get("message") or data.get("detail")
    return scrub_credentials(message[:MAX_ERROR_MESSAGE]) if isinstance(message, str) else ""


#: credential shapes a careless upstream may quote back in an error message (its own view
#: of the request's headers): the message is relayed to clients, the gateway's key is not
_CREDENTIALS = (
    re.compile(r"(?i)(bearer\s+)\S+"),
    re.compile(r"\b(sk-|sk-ant-|hi-|AIza)[A-Za-z0-9_\-]{6,}"),
    re.compile(r"(?i)((?:api[_-]?key|x-api-key|x-goog-api-key|authorization)[\"']?\s*[:=]\s*)\S+"),
)


def scrub_credentials(message: str) -> str:
    for pattern in _CREDENTIALS:
        message = pattern.sub(lambda m: m.group(1) + "[REDACTED]", message)
    return message


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


#: transport failure → the gateway error it becomes; the first entry that matches wins
TRANSPORT_ERRORS: tuple[tuple[type[BaseException], Callable[[str, Any], UpstreamError]], ...] = (
    (TimeoutError, lambda route, _exc: UpstreamTimeout(f"{route} timed out")),
    (
        h1.ConnectFailed,
        lambda route, exc: UpstreamUnavailable(f"{route} is unreachable ({exc.reason})"),
    ),
    (
        h1.ConnectionClosed,
        lambda route, _exc: UpstreamUnavailable(f"{route} closed the connection"),
    ),
    (
        h1.BodyTooLarge,
        lambda route, _exc: UpstreamProtocolError(f"{route} sent an oversized response"),
    ),
    (
        h1.ProtocolError,
        lambda route, _exc: UpstreamProtocolError(f"{route} sent a malformed response"),
    ),
    (
        orjson.JSONDecodeError,
        lambda route, _exc: UpstreamProtocolError(f"{route} sent invalid JSON"),
    ),
    (OSError, lambda route, _exc: UpstreamUnavailable(f"{route} connection failed")),
)


@contextmanager
def map_transport_errors(route: str) -> Iterator[None]:
    """Turn the upstream client's (``adapters.h1``) and the socket's failures into gateway
    errors (``TRANSPORT_ERRORS``), cause chained; gateway errors, cancellation and bugs
    pass through unchanged."""
    try:
        yield
    except GatewayError:
        raise
    except Exception as exc:
        for kind, error in TRANSPORT_ERRORS:
            if isinstance(exc, kind):
                raise error(route, exc) from exc
        raise


def remaining(deadline: float, limit: float) -> float:
    """Seconds until the sooner of ``limit`` from now and the absolute ``deadline``."""
    return max(0.0, min(limit, deadline - asyncio.get_running_loop().time()))
