"""The routing manager: resolve a model, order its routes, try them under a deadline.

A retryable failure before the first byte reaches the client moves on to the next
candidate; a non-retryable one ends the request. Every attempt is recorded on the
request's ``RequestTrace``.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from hybridinference.adapters.base import Endpoint, JSONObject, UpstreamCall
from hybridinference.errors import (
    AllRoutesFailed,
    FailedAttempt,
    GatewayError,
    ModelNotFound,
    NoRouteAvailable,
    UpstreamProtocolError,
)
from hybridinference.routing.routes import ModelRoutes, Route
from hybridinference.routing.strategies import Strategy
from hybridinference.routing.trace import RequestTrace


@dataclass(frozen=True, slots=True)
class RoutedModel:
    routes: ModelRoutes
    strategy: Strategy


@dataclass(slots=True)
class OpenStream:
    """A stream whose first chunk has arrived: from here on there is no failover."""

    route: Route
    first: JSONObject
    rest: AsyncIterator[JSONObject]

    async def aclose(self) -> None:
        closer = getattr(self.rest, "aclose", None)
        if closer is not None:
            await closer()


class RoutingManager:
    def __init__(
        self,
        models: Mapping[str, RoutedModel],
        *,
        max_attempts: int,
        rng: random.Random,
    ) -> None:
        self._models = dict(models)
        self._lookup: dict[str, RoutedModel] = {}
        for routed in models.values():
            for name in (routed.routes.name, *routed.routes.config.aliases):
                self._lookup[name] = routed
        self._max_attempts = max_attempts
        self._rng = rng

    @property
    def models(self) -> tuple[RoutedModel, ...]:
        return tuple(self._models.values())

    def resolve(self, name: str, allowed: tuple[str, ...] | None) -> RoutedModel:
        """The model by name or alias; one answer for unknown and forbidden (no enumeration)."""
        routed = self._lookup.get(name)
        if routed is None or (allowed is not None and not _permits(allowed, routed.routes)):
            raise ModelNotFound(
                f"The model {name!r} does not exist or you do not have access to it.",
                param="model",
            )
        return routed

    def usable(self, routed: RoutedModel) -> bool:
        return bool(routed.routes.routes)

    def _candidates(self, routed: RoutedModel) -> list[Route]:
        ordered = routed.strategy.order(routed.routes.routes)
        if not ordered:
            raise NoRouteAvailable(f"No route can serve {routed.routes.name!r} right now.")
        return ordered[: self._max_attempts]

    async def complete(
        self, routed: RoutedModel, endpoint: Endpoint, body: JSONObject, trace: RequestTrace
    ) -> JSONObject:
        failures: list[FailedAttempt] = []
        for route in self._candidates(routed):
            call = _call_for(route, endpoint, body, trace)
            started = trace.clock()
            route.load.in_flight += 1
            try:
                result = await route.adapter.complete(call)
            except GatewayError as exc:
                trace.record_attempt(route, exc, started)
                if not exc.retryable or trace.expired():
                    raise
                failures.append(FailedAttempt(route.name, exc))
                continue
            finally:
                route.load.in_flight -= 1
            trace.record_attempt(route, None, started)
            trace.served_by(route)
            return result
        raise AllRoutesFailed(failures)

    async def open_stream(
        self, routed: RoutedModel, endpoint: Endpoint, body: JSONObject, trace: RequestTrace
    ) -> OpenStream:
        failures: list[FailedAttempt] = []
        for route in self._candidates(routed):
            call = _call_for(route, endpoint, body, trace)
            started = trace.clock()
            iterator = aiter(route.adapter.stream(call))
            route.load.in_flight += 1
            error: GatewayError
            try:
                first = await anext(iterator)
            except StopAsyncIteration:
                error = UpstreamProtocolError(f"{route.name} sent an empty stream")
            except GatewayError as exc:
                error = exc
            except BaseException:
                route.load.in_flight -= 1
                await _close(iterator)
                raise
            else:
                trace.record_attempt(route, None, started)
                trace.served_by(route)
                return OpenStream(route, first, _counted(route, iterator))
            route.load.in_flight -= 1
            await _close(iterator)
            trace.record_attempt(route, error, started)
            if not error.retryable or trace.expired():
                raise error
            failures.append(FailedAttempt(route.name, error))
        raise AllRoutesFailed(failures)


async def _counted(route: Route, iterator: AsyncIterator[JSONObject]) -> AsyncIterator[JSONObject]:
    try:
        async for chunk in iterator:
            yield chunk
    finally:
        route.load.in_flight -= 1
        await _close(iterator)


async def _close(iterator: AsyncIterator[JSONObject]) -> None:
    closer = getattr(iterator, "aclose", None)
    if closer is not None:
        await closer()


def _permits(allowed: tuple[str, ...], routes: ModelRoutes) -> bool:
    return routes.name in allowed or any(alias in allowed for alias in routes.config.aliases)


def _call_for(
    route: Route, endpoint: Endpoint, body: JSONObject, trace: RequestTrace
) -> UpstreamCall:
    upstream_body = dict(body)
    upstream_body["model"] = route.upstream_model
    return UpstreamCall(
        endpoint=endpoint,
        body=upstream_body,
        request_id=trace.request_id,
        first_byte_timeout=route.timeouts.first_byte,
        idle_timeout=route.timeouts.idle,
        deadline=trace.deadline,
    )
