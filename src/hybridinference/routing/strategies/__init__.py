"""Routing strategies: name → factory. Each is a small class with no I/O in its decision.

- ``weighted``: random by weight. ``round_robin``: rotate. ``least_busy``: fewest in flight.
- ``latency``: lowest recent TTFT (EWMA or quantile), with exploration.
- ``cost``: cheapest expected cost (quota routes at their shadow price).
- ``local_first``: local engines until their load crosses a threshold, then cloud.
- ``slo``: cheapest mix meeting a tail-TTFT target (LP over at most two routes).

Adding one: a module here, an entry in ``STRATEGIES``, a unit test.
"""

from __future__ import annotations

from collections.abc import Mapping

from hybridinference.routing.strategies.base import RequestInfo, Strategy, StrategyFactory
from hybridinference.routing.strategies.latency import LatencyStrategy
from hybridinference.routing.strategies.local_first import LocalFirstStrategy
from hybridinference.routing.strategies.simple import (
    CostStrategy,
    LeastBusyStrategy,
    RoundRobinStrategy,
)
from hybridinference.routing.strategies.slo import SLOStrategy
from hybridinference.routing.strategies.weighted import WeightedStrategy

STRATEGIES: Mapping[str, StrategyFactory] = {
    "weighted": WeightedStrategy,
    "round_robin": RoundRobinStrategy,
    "least_busy": LeastBusyStrategy,
    "latency": LatencyStrategy,
    "cost": CostStrategy,
    "local_first": LocalFirstStrategy,
    "slo": SLOStrategy,
}

__all__ = ["STRATEGIES", "RequestInfo", "Strategy", "StrategyFactory"]
