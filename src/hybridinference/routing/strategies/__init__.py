"""Routing strategies: name → factory. Each is a small class with no I/O in its decision.

Adding one: a module here, an entry in ``STRATEGIES``, a unit test.
"""

from __future__ import annotations

from collections.abc import Mapping

from hybridinference.routing.strategies.base import Strategy, StrategyFactory
from hybridinference.routing.strategies.weighted import WeightedStrategy

STRATEGIES: Mapping[str, StrategyFactory] = {
    "weighted": WeightedStrategy,
}

__all__ = ["STRATEGIES", "Strategy", "StrategyFactory"]
