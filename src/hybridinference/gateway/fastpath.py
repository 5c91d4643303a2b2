"""A direct lane for the hot endpoints.

``GatewayApp`` is FastAPI with one difference: requests for the paths given to
``direct_lane`` (the inference endpoints) go from the app's own middleware straight to
the endpoint function, skipping FastAPI's per-request machinery — the exception and
telemetry middleware, router matching, dependency solving and exit stacks. Those layers
cost about a third of the gateway's CPU per request (profile in docs/performance.md)
and do nothing for endpoints that take the ``Request`` and answer every error themselves.

The routes stay registered with FastAPI (OpenAPI is unchanged, other methods on the same
path still get 405 from the router), the user middleware (request id, observability)
wraps the lane exactly as it wraps the full stack, and an exception the endpoint lets
escape gets the app's ``Exception`` handler, as it would through FastAPI.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]
Handler = Callable[[Request, Exception], Awaitable[Response]]


class GatewayApp(FastAPI):
    """FastAPI plus a direct lane for ``(method, path)`` pairs named in ``direct_lane``."""

    def __init__(self, **kwargs: Any) -> None:
        # FastAPI's built-in OpenTelemetry instrumentation stays off: the gateway's own
        # observability middleware opens the request spans and serves the metrics, and
        # FastAPI's per-request check for a configured provider (environment lookups)
        # alone cost about 4 % of the CPU per request (docs/performance.md).
        kwargs.setdefault("telemetry", {"tracing": False, "metrics": False, "logs": False})
        super().__init__(**kwargs)
        self._direct: set[tuple[str, str]] = set()

    def direct_lane(self, paths: Iterable[str], method: str = "POST") -> None:
        self._direct.update((method, path) for path in paths)

    def build_middleware_stack(self) -> ASGIApp:
        full = super().build_middleware_stack()
        routes = {
            (method, route.path): route
            for route in self.router.routes
            if isinstance(route, APIRoute) and _takes_only_request(route.endpoint)
            for method in route.methods or ()
            if (method, route.path) in self._direct
        }
        if not routes:
            return full
        lane: ASGIApp = DirectLane(routes, self.exception_handlers.get(Exception))
        for cls, args, kwargs in reversed(self.user_middleware):
            lane = cls(lane, *args, **kwargs)
        return Switch(frozenset(routes), lane, full)


def _takes_only_request(endpoint: Callable[..., Any]) -> bool:
    """Only such endpoints are safe to call directly (no FastAPI dependencies to solve)."""
    try:
        params = list(inspect.signature(endpoint, eval_str=True).parameters.values())
    except (NameError, TypeError, ValueError):
        return False
    return len(params) == 1 and params[0].annotation is Request


class Switch:
    """HTTP requests for a direct-lane (method, path) take the lane; all else the stack."""

    def __init__(self, keys: frozenset[tuple[str, str]], lane: ASGIApp, full: ASGIApp) -> None:
        self._keys = keys
        self._lane = lane
        self._full = full

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (scope["method"], scope["path"]) in self._keys:
            await self._lane(scope, receive, send)
        else:
            await self._full(scope, receive, send)


class DirectLane:
    def __init__(self, routes: dict[tuple[str, str], APIRoute], handler: Any) -> None:
        self._routes = routes
        self._handler: Handler | None = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._routes[(scope["method"], scope["path"])]
        scope["route"] = route  # as the router would set it (metrics and spans read it)
        scope["endpoint"] = route.endpoint
        scope["path_params"] = {}
        request = Request(scope, receive, send)
        try:
            response: Response = await route.endpoint(request)
        except Exception as exc:  # nothing has been sent yet: answer as FastAPI would
            if self._handler is None:
                raise
            response = await self._handler(request, exc)
        await response(scope, receive, send)
