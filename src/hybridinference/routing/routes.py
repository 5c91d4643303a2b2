"""What routing chooses between: a route is one provider endpoint serving one model."""

from __future__ import annotations

from dataclasses import dataclass, field

from hybridinference.adapters.base import Adapter
from hybridinference.config.schema import ModelConfig, Pricing, Timeouts


@dataclass(slots=True)
class RouteLoad:
    """Live counters of one route, read by strategies (never written by them)."""

    in_flight: int = 0


@dataclass(frozen=True, slots=True)
class Route:
    name: str  # "provider/upstream-model": the provider endpoint, as logged and shown
    provider: str
    upstream_model: str
    adapter: Adapter
    weight: float
    pricing: Pricing
    location: str
    timeouts: Timeouts
    load: RouteLoad = field(default_factory=RouteLoad, compare=False)


@dataclass(frozen=True, slots=True)
class ModelRoutes:
    """A public model: its config and the routes that can serve it."""

    config: ModelConfig
    routes: tuple[Route, ...]

    @property
    def name(self) -> str:
        return self.config.name
