"""What routing chooses between: a route is one provider endpoint serving one model.

A route is immutable configuration plus a few live objects that the manager updates
and strategies only read: load (in flight, engine metrics), latency statistics, the
circuit breaker, the provider's probe health, and the quota used today.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hybridinference.adapters.base import Adapter
from hybridinference.config.routing import RouteCapabilities, RouteLimits
from hybridinference.config.schema import ModelConfig, Pricing, Timeouts
from hybridinference.routing.circuit import CircuitBreaker
from hybridinference.routing.engine_load import EngineLoad
from hybridinference.routing.health import ProviderHealth
from hybridinference.routing.quota import QuotaUsage
from hybridinference.routing.stats import LatencyStats


@dataclass(slots=True)
class RouteLoad:
    """Live counters of one route, read by strategies (never written by them)."""

    in_flight: int = 0
    engine: EngineLoad | None = None  # from the engine's /metrics, when it has one


@dataclass(frozen=True, slots=True)
class Route:
    name: str  # "provider/upstream-model": the provider endpoint, as logged and shown
    provider: str
    upstream_model: str
    adapter: Adapter
    weight: float
    pricing: Pricing
    location: str  # "local" or "cloud": the route's kind
    timeouts: Timeouts
    capabilities: RouteCapabilities = field(default_factory=RouteCapabilities)
    limits: RouteLimits = field(default_factory=RouteLimits)
    load: RouteLoad = field(default_factory=RouteLoad, compare=False)
    stats: LatencyStats = field(default_factory=LatencyStats, compare=False)
    circuit: CircuitBreaker = field(default_factory=CircuitBreaker, compare=False)
    health: ProviderHealth = field(default_factory=ProviderHealth, compare=False)
    quota: QuotaUsage = field(init=False, compare=False)
    cap: int | None = field(init=False, compare=False)  # limits.max_concurrency, unwrapped

    def __post_init__(self) -> None:
        object.__setattr__(self, "quota", QuotaUsage(self.limits))
        object.__setattr__(self, "cap", self.limits.max_concurrency)

    @property
    def local(self) -> bool:
        return self.location == "local"

    def full(self) -> bool:
        """At its concurrency cap: no new request may start here until one ends."""
        cap = self.cap
        return cap is not None and self.load.in_flight >= cap

    def price(self, prompt_tokens: int, output_tokens: int) -> float:
        """List price of a request in US dollars."""
        pricing = self.pricing
        return (pricing.input * prompt_tokens + pricing.output * output_tokens) / 1_000_000


@dataclass(frozen=True, slots=True)
class ModelRoutes:
    """A public model: its config and the routes that can serve it."""

    config: ModelConfig
    routes: tuple[Route, ...]

    @property
    def name(self) -> str:
        return self.config.name
