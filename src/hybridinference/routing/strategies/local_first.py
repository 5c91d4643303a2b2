"""``local_first``: local engines while they have room, then the cloud (cheapest first).

A local route has room when its engine reports (``/metrics``, scraped by the health
monitor) no more than ``local_max_waiting`` queued requests and KV-cache usage below
``local_max_kv_usage``; for an engine without metrics, when the gateway has fewer than
``local_max_in_flight`` requests on it. Full local routes come last, as a final resort.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from hybridinference.config.schema import ModelConfig
from hybridinference.routing.pricing import effective_costs
from hybridinference.routing.routes import Route
from hybridinference.routing.strategies.base import RequestInfo
from hybridinference.routing.strategies.simple import busyness

STALE_AFTER = 30.0  # seconds: older engine numbers are ignored


class LocalFirstStrategy:
    name = "local_first"

    def __init__(self, model: ModelConfig, rng: random.Random) -> None:
        options = model.strategy_options
        self._rng = rng
        self._max_waiting = options.local_max_waiting
        self._max_kv = options.local_max_kv_usage
        self._max_in_flight = options.local_max_in_flight
        self._floor = options.quota_floor
        self._expected = options.expected_output_tokens

    def has_room(self, route: Route, now: float) -> bool:
        engine = route.load.engine
        if engine is not None and now - engine.at <= STALE_AFTER:
            return engine.waiting <= self._max_waiting and engine.kv_usage < self._max_kv
        return route.load.in_flight < self._max_in_flight

    def order(self, routes: Sequence[Route], request: RequestInfo) -> list[Route]:
        now = request.now
        roomy: list[Route] = []
        full: list[Route] = []
        cloud: list[Route] = []
        for route in routes:
            if not route.local:
                cloud.append(route)
            elif self.has_room(route, now):
                roomy.append(route)
            else:
                full.append(route)
        rng = self._rng
        roomy.sort(key=lambda r: (busyness(r), rng.random()))
        if len(cloud) > 1:
            costs = effective_costs(cloud, request, self._floor, self._expected)
            ranked = sorted(range(len(cloud)), key=lambda i: (costs[i], rng.random()))
            cloud = [cloud[i] for i in ranked]
        full.sort(key=busyness)
        return [*roomy, *cloud, *full]
