"""``latency``: lowest recent time to first token first, with a little exploration.

The score is the route's TTFT EWMA (or a windowed quantile, ``latency_stat: quantile``),
inflated by its recent error share. Routes with fewer than ``min_samples`` measurements
go first so that cold routes get measured; with probability ``exploration`` a random
route is moved to the front so that a route that recovered gets noticed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from hybridinference.config.schema import ModelConfig
from hybridinference.routing.routes import Route
from hybridinference.routing.strategies.base import RequestInfo


class LatencyStrategy:
    name = "latency"

    def __init__(self, model: ModelConfig, rng: random.Random) -> None:
        options = model.strategy_options
        self._rng = rng
        self._exploration = options.exploration
        self._min_samples = options.min_samples
        self._quantile = options.latency_quantile if options.latency_stat == "quantile" else None

    def score(self, route: Route, now: float) -> float:
        stats = route.stats
        if stats.samples(now) < self._min_samples:
            return -1.0
        value = stats.ewma if self._quantile is None else stats.quantile(now, self._quantile)
        if value is None:
            return -1.0
        return value / max(0.01, 1.0 - stats.error_rate)

    def order(self, routes: Sequence[Route], request: RequestInfo) -> list[Route]:
        rng = self._rng
        now = request.now
        ranked = sorted(routes, key=lambda r: (self.score(r, now), rng.random()))
        if len(ranked) > 1 and rng.random() < self._exploration:
            ranked.insert(0, ranked.pop(rng.randrange(1, len(ranked))))
        return ranked
