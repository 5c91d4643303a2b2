"""``weighted``: random order drawn by route weight (without replacement)."""

from __future__ import annotations

import random
from collections.abc import Sequence

from hybridinference.routing.routes import Route


class WeightedStrategy:
    name = "weighted"

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def order(self, routes: Sequence[Route]) -> list[Route]:
        if len(routes) <= 1:
            return list(routes)
        # Efraimidis–Spirakis: key u^(1/w) sorts a weighted sample without replacement.
        keyed = []
        for route in routes:
            weight = route.weight
            key = self._rng.random() ** (1.0 / weight) if weight > 0 else -1.0
            keyed.append((key, route))
        keyed.sort(key=lambda pair: pair[0], reverse=True)
        return [route for _, route in keyed]
