"""Config → routing: adapters from the registry, routes per model, a strategy per model."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass

from hybridinference.adapters.base import Adapter
from hybridinference.adapters.registry import BuildContext, build_adapter, provider_enabled
from hybridinference.config.schema import GatewayConfig
from hybridinference.errors import ConfigError
from hybridinference.routing.manager import RoutedModel, RoutingManager
from hybridinference.routing.routes import ModelRoutes, Route
from hybridinference.routing.strategies import STRATEGIES


@dataclass(frozen=True, slots=True)
class Routing:
    manager: RoutingManager
    adapters: Mapping[str, Adapter]
    disabled_providers: tuple[str, ...]

    async def aclose(self) -> None:
        for adapter in self.adapters.values():
            await adapter.aclose()


def check_strategies(config: GatewayConfig) -> None:
    for index, model in enumerate(config.models):
        if model.strategy not in STRATEGIES:
            known = ", ".join(sorted(STRATEGIES))
            raise ConfigError(
                f"models[{index}].strategy: unknown strategy {model.strategy!r} "
                f"(expected one of: {known})"
            )


def build_routing(config: GatewayConfig, env: Mapping[str, str], rng: random.Random) -> Routing:
    check_strategies(config)
    ctx = BuildContext(env=env, timeouts=config.timeouts)
    adapters: dict[str, Adapter] = {}
    disabled = []
    for name, provider in config.providers.items():
        if provider_enabled(provider, env):
            adapters[name] = build_adapter(name, provider, ctx)
        else:
            disabled.append(name)
    models: dict[str, RoutedModel] = {}
    for model in config.models:
        routes = tuple(
            Route(
                name=f"{route.provider}/{route.model}",
                provider=route.provider,
                upstream_model=route.model,
                adapter=adapters[route.provider],
                weight=route.weight,
                pricing=route.pricing,
                location=config.providers[route.provider].location,
                timeouts=config.providers[route.provider].timeouts or config.timeouts,
            )
            for route in model.routes
            if route.provider in adapters
        )
        if routes:  # a model whose every provider is disabled is hidden, not an error
            strategy = STRATEGIES[model.strategy](random.Random(rng.random()))
            models[model.name] = RoutedModel(ModelRoutes(model, routes), strategy)
    manager = RoutingManager(models, max_attempts=config.routing.max_attempts, rng=rng)
    return Routing(manager, adapters, tuple(disabled))
