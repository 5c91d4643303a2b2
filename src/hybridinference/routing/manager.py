"""The routing manager: resolve a model, pick and order its eligible routes, run them.

Per request: estimate the request (``request``), drop the routes that cannot take it
(capabilities → a 400 if none can; probe health, open circuits, spent quotas, full
concurrency caps → a 503 with Retry-After if none is left), let the model's strategy
order the rest, apply the client's OpenRouter-style options (``options``), keep the
first ``max_attempts``, and hand them to a ``Race`` (``legs``): failover, hedging,
outcome recording. No I/O happens before the first upstream call.
"""

from __future__ import annotations

import dataclasses
import enum
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hybridinference.adapters.base import Endpoint, JSONObject, UpstreamCall
from hybridinference.errors import InvalidRequest, ModelNotFound, NoRouteAvailable
from hybridinference.limits.upstream import UpstreamLimits
from hybridinference.routing.hedging import HedgeBudget
from hybridinference.routing.legs import Opener, Plan, Race
from hybridinference.routing.openers import (
    Clocks,
    CompleteOpener,
    OpenStream,
    StreamOpener,
)
from hybridinference.routing.options import (
    STRIPPED,
    SUFFIXES,
    ProviderPreferences,
    admits,
    arrange,
    parse_options,
)
from hybridinference.routing.request import estimate
from hybridinference.routing.routes import ModelRoutes, Route
from hybridinference.routing.strategies import RequestInfo, Strategy
from hybridinference.routing.trace import RequestTrace

__all__ = ["OpenStream", "RoutedModel", "RoutingManager"]


class _Unset(enum.Enum):
    UNSET = "unset"


#: ``allowed`` not given: the caller did not say which models the key may use, so the
#: ``models`` fallback list is ignored rather than trusted (None means "every model")
NO_FALLBACKS = _Unset.UNSET
Allowed = tuple[str, ...] | None | _Unset


@dataclass(frozen=True, slots=True)
class RoutedModel:
    routes: ModelRoutes
    strategy: Strategy
    budget: HedgeBudget = dataclasses.field(default_factory=lambda: HedgeBudget(0.0))
    sort: str | None = None  # set by a ``:floor``/``:nitro`` suffix
    fallbacks: bool = True  # flags.fallbacks: off means one attempt, no failover
    visibility: str = "public"  # runtime override: "unlisted" (not listed), "hidden" (404)
    parked: tuple[Route, ...] = ()  # routes a runtime override took out (shown, not used)


def capable(route: Route, info: RequestInfo) -> bool:
    caps = route.capabilities
    if info.tools and not caps.tools:
        return False
    if info.images and not caps.images:
        return False
    limit = caps.context_length
    return limit is None or info.prompt_tokens + info.output_tokens <= limit


def available(route: Route, info: RequestInfo) -> bool:
    return (
        route.health.usable()
        and route.circuit.allows(info.now)
        and not route.full()
        and not route.quota.exhausted(info.day)
    )


class RoutingManager:
    def __init__(
        self,
        models: Mapping[str, RoutedModel],
        *,
        max_attempts: int,
        rng: random.Random,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
        accounts: UpstreamLimits | None = None,
    ) -> None:
        self._models = dict(models)
        self._lookup: dict[str, RoutedModel] = {}
        for routed in models.values():
            if routed.visibility == "hidden":
                continue
            for name in (routed.routes.name, *routed.routes.config.aliases):
                self._lookup[name] = routed
                for suffix, sort in SUFFIXES.items():
                    self._lookup[f"{name}:{suffix}"] = dataclasses.replace(routed, sort=sort)
        self._max_attempts = max_attempts
        self._rng = rng
        self.clocks = Clocks(clock, wall_clock)
        self._complete: Opener[JSONObject] = CompleteOpener(self.clocks)
        self._stream: Opener[OpenStream] = StreamOpener(self.clocks)
        self._accounts = accounts  # provider account limits, 429 back-off (limits.upstream)
        self._clock_fns = (clock, wall_clock)
        if accounts is not None:
            self._complete = accounts.wrap(self._complete)
            self._stream = accounts.wrap(self._stream)

    @property
    def models(self) -> tuple[RoutedModel, ...]:
        return tuple(self._models.values())

    def with_models(self, models: Mapping[str, RoutedModel]) -> RoutingManager:
        """The same settings (attempts, clocks, account limits) over other models: how
        runtime overrides swap the routing without rebuilding it."""
        clock, wall_clock = self._clock_fns
        return RoutingManager(
            models,
            max_attempts=self._max_attempts,
            rng=self._rng,
            clock=clock,
            wall_clock=wall_clock,
            accounts=self._accounts,
        )

    @property
    def accounts(self) -> UpstreamLimits | None:
        """Provider account limits and 429 back-off per route (``limits.upstream``)."""
        return self._accounts

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

    def info(self, routed: RoutedModel, body: Mapping[str, Any]) -> RequestInfo:
        expected = routed.routes.config.strategy_options.expected_output_tokens
        prompt, output, tools, images = estimate(body, expected)
        clocks = self.clocks
        return RequestInfo(clocks.monotonic(), clocks.day(), prompt, output, tools, images)

    def candidates(
        self,
        routed: RoutedModel,
        info: RequestInfo,
        prefs: ProviderPreferences | None = None,
    ) -> list[Route]:
        """The routes to try for this request, in order (at most ``max_attempts``)."""
        name = routed.routes.name
        if not routed.routes.routes:  # every route disabled by a runtime override
            raise NoRouteAvailable(f"No route can serve {name!r} right now.", retry_after=30.0)
        fit = [r for r in routed.routes.routes if capable(r, info)]
        if not fit:
            raise InvalidRequest(
                f"No route of {name!r} supports this request (tools, images or its length)."
            )
        if prefs is not None:
            fit = [r for r in fit if admits(r, prefs)]
            if not fit:
                raise InvalidRequest(
                    f"No route of {name!r} matches the 'provider' preferences.", param="provider"
                )
        accounts, tokens = self._accounts, info.prompt_tokens + info.output_tokens
        eligible = [
            r
            for r in fit
            if available(r, info) and (accounts is None or accounts.ready(r.name, tokens))
        ]
        if not eligible:
            wait = min(r.circuit.retry_in(info.now) for r in fit)
            raise NoRouteAvailable(
                f"No route can serve {name!r} right now.", retry_after=max(1.0, wait)
            )
        ordered = routed.strategy.order(eligible, info)
        sort = prefs.sort if prefs is not None and prefs.sort else routed.sort
        if sort is not None or prefs is not None:
            ordered = arrange(ordered, sort, prefs, info)
        return ordered[: self._max_attempts if routed.fallbacks else 1]

    def _plan(self, routed: RoutedModel, body: JSONObject, allowed: Allowed) -> Plan:
        options = parse_options(body)
        prefs = options.provider if options is not None else None
        info = self.info(routed, body)
        routes = self.candidates(routed, info, prefs)
        if options is not None and routed.fallbacks and not isinstance(allowed, _Unset):
            for fallback in options.models:
                other = self.resolve(fallback, allowed)
                if other is not routed:
                    try:
                        routes += self.candidates(other, self.info(other, body), prefs)
                    except (InvalidRequest, NoRouteAvailable):
                        continue
        config = routed.routes.config
        hedging = config.hedging if config.hedging.enabled else None
        return Plan(routes, hedging, config.slo, routed.budget)

    async def _run(
        self,
        opener: Opener[Any],
        routed: RoutedModel,
        endpoint: Endpoint,
        body: JSONObject,
        trace: RequestTrace,
        allowed: Allowed,
    ) -> Any:
        plan = self._plan(routed, body, allowed)

        def make_call(route: Route) -> UpstreamCall:
            return _call_for(route, endpoint, body, trace)

        route, result = await Race(plan, opener, make_call, trace, self.clocks.monotonic).run()
        trace.served_by(route)
        return result

    # complete() and open_stream() hand back _run's coroutine rather than awaiting it: one
    # frame less on the request's await chain, which every wake-up of the request walks
    # ("Fewer frames on the request's await chain", docs/performance.md)

    def complete(
        self,
        routed: RoutedModel,
        endpoint: Endpoint,
        body: JSONObject,
        trace: RequestTrace,
        allowed: Allowed = NO_FALLBACKS,
    ) -> Awaitable[JSONObject]:
        return self._run(self._complete, routed, endpoint, body, trace, allowed)

    def open_stream(
        self,
        routed: RoutedModel,
        endpoint: Endpoint,
        body: JSONObject,
        trace: RequestTrace,
        allowed: Allowed = NO_FALLBACKS,
    ) -> Awaitable[OpenStream]:
        return self._run(self._stream, routed, endpoint, body, trace, allowed)

    def snapshot(self) -> list[dict[str, Any]]:
        """Health, circuit state, load, quota and latency of every route (admin view)."""
        now = self.clocks.monotonic()
        day = self.clocks.day()
        return [
            {
                "model": routed.routes.name,
                "strategy": routed.strategy.name,
                "hedging": routed.budget.describe(),
                "visibility": routed.visibility,
                "routes": [
                    {**_describe(route, now, day), "enabled": enabled}
                    for enabled, routes in ((True, routed.routes.routes), (False, routed.parked))
                    for route in routes
                ],
            }
            for routed in self._models.values()
        ]


def _describe(route: Route, now: float, day: int) -> dict[str, Any]:
    engine = route.load.engine
    return {
        "name": route.name,
        "provider": route.provider,
        "kind": route.location,
        "weight": route.weight,
        "pricing": {"input": route.pricing.input, "output": route.pricing.output},
        "in_flight": route.load.in_flight,
        "engine": None
        if engine is None
        else {
            "running": engine.running,
            "waiting": engine.waiting,
            "kv_usage": engine.kv_usage,
            "age": round(now - engine.at, 3),
        },
        "health": route.health.describe(now),
        "circuit": route.circuit.describe(now),
        "latency": dataclasses.asdict(route.stats.snapshot(now)),
        "quota": route.quota.describe(day) if route.limits.has_quota else None,
        "max_concurrency": route.limits.max_concurrency,
    }


def _permits(allowed: tuple[str, ...], routes: ModelRoutes) -> bool:
    return routes.name in allowed or any(alias in allowed for alias in routes.config.aliases)


def _call_for(
    route: Route, endpoint: Endpoint, body: JSONObject, trace: RequestTrace
) -> UpstreamCall:
    upstream_body = dict(body)
    upstream_body["model"] = route.upstream_model
    for field in STRIPPED:
        upstream_body.pop(field, None)
    return UpstreamCall(
        endpoint=endpoint,
        body=upstream_body,
        request_id=trace.request_id,
        first_byte_timeout=route.timeouts.first_byte,
        idle_timeout=route.timeouts.idle,
        deadline=trace.deadline,
        clock=trace.loop_time,
    )
