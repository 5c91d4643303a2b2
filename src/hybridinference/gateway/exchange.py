"""One request as the gateway sees it, from the first byte in to exactly one log row out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.types import Receive

from hybridinference.errors import GatewayError
from hybridinference.gateway.auth import Principal
from hybridinference.gateway.forwarded import client_address
from hybridinference.limits.model import Admission
from hybridinference.routing.trace import RequestTrace
from hybridinference.schemas.records import RequestRecord

if TYPE_CHECKING:
    from hybridinference.state import AppState

T = TypeVar("T")
CLIENT_CLOSED = 499  # nginx's code for "client closed request"


class ClientDisconnected(Exception):
    """The client went away before the response started."""


class Exchange:
    def __init__(self, state: AppState, request: Request, endpoint: str) -> None:
        scope = request.scope
        self._state = state
        self.request_id: str = scope["hybridinference.request_id"]
        self.endpoint = endpoint
        started: float = scope["hybridinference.started"]
        # read once: each get_running_loop() is a getpid() system call on CPython 3.11
        self.loop = loop = asyncio.get_running_loop()
        self.trace = RequestTrace(
            request_id=self.request_id,
            clock=time.perf_counter,
            started=started,
            loop_time=loop.time,
            deadline=loop.time() + state.config.timeouts.total,
            later=loop.call_soon,
        )
        self.principal: Principal | None = None
        self.model: str | None = None
        self.stream = False
        self.client_ip = client_address(scope, state.config.server.trusted_proxies)
        self.trace_id: str | None = scope.get("hybridinference.trace_id")
        # flags.content_logging (default: storage.store_content); per model once resolved
        self.content: dict[str, Any] | None = {} if state.flags.default.content_logging else None
        self._finished = False
        self.ticket: Admission | None = None  # a rate-limit reservation to settle
        self.limit_headers: dict[str, str] = {}

    def route_headers(self) -> dict[str, str]:
        route = self.trace.route
        headers = {"x-hybridinference-route": route.name} if route is not None else {}
        return {**self.limit_headers, **headers} if self.limit_headers else headers

    def finish(
        self, status: int, error: GatewayError | None = None, *, cancelled: bool = False
    ) -> None:
        """Emit the request's log row; only the first call counts."""
        if self._finished:
            return
        self._finished = True
        trace = self.trace
        now = trace.clock()
        usage = trace.usage
        record = RequestRecord(
            request_id=self.request_id,
            created_at=self._state.wall_clock() - (now - trace.started),
            endpoint=self.endpoint,
            key_id=self.principal.key_id if self.principal else None,
            model=self.model,
            route=trace.route.name if trace.route else None,
            status=status,
            error_type=(error.code or error.error_type)
            if error
            else ("cancelled" if cancelled else None),
            latency_ms=round((now - trace.started) * 1000, 3),
            ttft_ms=(
                round((trace.first_token_at - trace.started) * 1000, 3)
                if trace.first_token_at is not None
                else None
            ),
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            total_tokens=usage.total_tokens if usage else 0,
            cost=trace.cost(),
            stream=self.stream,
            attempts=tuple(trace.attempts),
            cancelled=cancelled,
            client_ip=self.client_ip,
            content=orjson.dumps(self.content).decode() if self.content else None,
            trace_id=self.trace_id,
        )
        if self._state.telemetry is not None:
            self._state.telemetry.observe(record)
        self._state.writer.submit(record)
        if self.ticket is not None and self._state.limits is not None:
            self._state.limits.reconcile(self.ticket, trace)

    def succeeded(self) -> None:
        self.finish(200)

    def disconnected(self) -> None:
        self.finish(CLIENT_CLOSED, cancelled=True)


async def cancel_on_disconnect(
    receive: Receive, work: Awaitable[T], loop: asyncio.AbstractEventLoop | None = None
) -> T:
    """Await ``work``; if the client disconnects first, cancel it (closing the upstream
    request) and raise ``ClientDisconnected``.

    ``work`` runs in the caller's task and only the watcher gets a task of its own: one
    task per request instead of two (measured in docs/performance.md). The watcher cancels
    the caller's task; ``uncancel`` tells that cancellation apart from any other.
    ``loop``: the running loop when the caller has it (saves looking it up again).
    """
    if loop is None:
        loop = asyncio.get_running_loop()
    current = asyncio.current_task(loop)
    assert current is not None
    disconnected = False

    async def watch() -> None:
        nonlocal disconnected
        while (await receive())["type"] != "http.disconnect":
            pass
        disconnected = True
        current.cancel()

    watcher = loop.create_task(watch())
    try:
        return await work
    except asyncio.CancelledError:
        if disconnected and current.uncancel() == 0:
            raise ClientDisconnected from None
        raise
    finally:
        watcher.cancel()
