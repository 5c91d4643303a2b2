"""``weighted``: random order drawn by route weight (without replacement)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from hybridinference.config.schema import ModelConfig
from hybridinference.routing.routes import Route
from hybridinference.routing.strategies.base import RequestInfo


def weighted_order(routes: Sequence[Route], rng: random.Random) -> list[Route]:
    if len(routes) <= 1:
        return list(routes)
    # Efraimidis–Spirakis: key u^(1/w) sorts a weighted sample without replacement.
    keyed = []
    for route in routes:
        weight = route.weight
        key = rng.random() ** (1.0 / weight) if weight > 0 else -1.0
        keyed.append((key, route))
    keyed.sort(key=lambda pair: pair[0], reverse=True)
    return [route for _, route in keyed]


class WeightedStrategy:
    name = "weighted"

    def __init__(self, model: ModelConfig, rng: random.Random) -> None:
        del model
        self._rng = rng

    def order(self, routes: Sequence[Route], request: RequestInfo) -> list[Route]:
        del request
        return weighted_order(routes, self._rng)
