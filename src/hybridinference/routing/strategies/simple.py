"""The simple strategies: ``round_robin``, ``least_busy`` and ``cost``."""

from __future__ import annotations

import random
from collections.abc import Sequence

from hybridinference.config.schema import ModelConfig
from hybridinference.routing.pricing import effective_costs
from hybridinference.routing.routes import Route
from hybridinference.routing.strategies.base import RequestInfo


class RoundRobinStrategy:
    """Each request starts one route further along; the rest follow in config order."""

    name = "round_robin"

    def __init__(self, model: ModelConfig, rng: random.Random) -> None:
        del model, rng
        self._next = 0

    def order(self, routes: Sequence[Route], request: RequestInfo) -> list[Route]:
        del request
        count = len(routes)
        if count <= 1:
            return list(routes)
        start = self._next % count
        self._next = start + 1
        return [*routes[start:], *routes[:start]]


def busyness(route: Route) -> float:
    """Requests a route is working on: the engine's own numbers when it reports them
    (running + waiting), never fewer than the gateway's in-flight count; per unit weight."""
    busy = float(route.load.in_flight)
    engine = route.load.engine
    if engine is not None:
        busy = max(busy, engine.running + engine.waiting)
    return busy / route.weight if route.weight > 0 else busy * 1e9


class LeastBusyStrategy:
    """Fewest requests in flight first; ties broken at random."""

    name = "least_busy"

    def __init__(self, model: ModelConfig, rng: random.Random) -> None:
        del model
        self._rng = rng

    def order(self, routes: Sequence[Route], request: RequestInfo) -> list[Route]:
        del request
        rng = self._rng
        return sorted(routes, key=lambda r: (busyness(r), rng.random()))


class CostStrategy:
    """Cheapest expected cost for this request first (quota routes at their shadow
    price, capped routes plus their congestion price); equal costs go to the heavier
    weight."""

    name = "cost"

    def __init__(self, model: ModelConfig, rng: random.Random) -> None:
        self._floor = model.strategy_options.quota_floor
        self._expected = model.strategy_options.expected_output_tokens
        self._rng = rng

    def order(self, routes: Sequence[Route], request: RequestInfo) -> list[Route]:
        costs = effective_costs(routes, request, self._floor, self._expected)
        rng = self._rng
        ranked = sorted(
            range(len(routes)), key=lambda i: (costs[i], -routes[i].weight, rng.random())
        )
        return [routes[i] for i in ranked]
