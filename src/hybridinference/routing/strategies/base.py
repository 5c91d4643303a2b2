"""The strategy contract: order the eligible routes for one request.

A strategy is a small class built once per model from its config, an injected
``random.Random`` and nothing else: no I/O, no clock of its own (``RequestInfo.now``
carries the time), no per-request state that grows. The manager has already dropped
routes that cannot take the request (capabilities, circuit, health, quota, concurrency);
the strategy puts the rest in the order to try them.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol

from hybridinference.config.schema import ModelConfig
from hybridinference.readonly import readonly
from hybridinference.routing.routes import Route


@readonly
class RequestInfo:
    """What a decision may know about the request (estimates, cheap to compute)."""

    now: float = 0.0  # monotonic seconds, the clock latency statistics are kept on
    day: int = 0  # UTC day number, for daily quotas
    prompt_tokens: int = 0
    output_tokens: int = 256
    tools: bool = False
    images: bool = False


class Strategy(Protocol):
    name: str

    def order(self, routes: Sequence[Route], request: RequestInfo) -> list[Route]:
        """All the given routes, best first; the manager tries them in this order."""


class StrategyFactory(Protocol):
    def __call__(self, model: ModelConfig, rng: random.Random) -> Strategy: ...
