"""The strategy contract: order the candidate routes, with no I/O and no clock of its own."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol

from hybridinference.routing.routes import Route


class Strategy(Protocol):
    name: str

    def order(self, routes: Sequence[Route]) -> list[Route]:
        """All usable routes, best first; the manager tries them in this order."""


class StrategyFactory(Protocol):
    def __call__(self, rng: random.Random) -> Strategy: ...
