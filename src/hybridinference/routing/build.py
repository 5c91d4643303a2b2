"""Config → routing: adapters from the registry, routes per model (each with its own
statistics, circuit breaker and quota; probe health shared per provider), a strategy
per model, and the health monitor that probes providers and scrapes local engines."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import aiohttp

from hybridinference.adapters.base import Adapter
from hybridinference.adapters.http import create_session
from hybridinference.adapters.registry import BuildContext, build_adapter, provider_enabled
from hybridinference.config.schema import GatewayConfig, ProviderConfig
from hybridinference.errors import ConfigError
from hybridinference.limits.build import build_upstream_limits
from hybridinference.routing.circuit import CircuitBreaker, CircuitSettings
from hybridinference.routing.engine_load import MetricsScraper
from hybridinference.routing.health import (
    HealthMonitor,
    ProbeTarget,
    ProviderHealth,
    ScrapeTarget,
)
from hybridinference.routing.hedging import HedgeBudget
from hybridinference.routing.manager import RoutedModel, RoutingManager
from hybridinference.routing.routes import ModelRoutes, Route, RouteLoad
from hybridinference.routing.stats import LatencyStats
from hybridinference.routing.strategies import STRATEGIES

METRICS_PROFILES = ("vllm", "sglang")


@dataclass(frozen=True, slots=True)
class Routing:
    manager: RoutingManager
    adapters: Mapping[str, Adapter]
    disabled_providers: tuple[str, ...]
    health: HealthMonitor
    session: aiohttp.ClientSession | None = None  # for engine /metrics scrapes

    def start(self) -> None:
        """Start the health monitor (probes and scrapes); call inside the event loop."""
        self.health.start()

    async def aclose(self) -> None:
        await self.health.aclose()
        if self.session is not None:
            await self.session.close()
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


def metrics_url(provider: ProviderConfig) -> str | None:
    """The engine's /metrics: configured, or next to a vLLM/SGLang base URL."""
    if provider.metrics_url:
        return provider.metrics_url
    if provider.location == "local" and getattr(provider, "profile", None) in METRICS_PROFILES:
        base = str(getattr(provider, "base_url", "")).removesuffix("/v1")
        return base + "/metrics" if base else None
    return None


def build_routing(
    config: GatewayConfig,
    env: Mapping[str, str],
    rng: random.Random,
    *,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
) -> Routing:
    check_strategies(config)
    ctx = BuildContext(env=env, timeouts=config.timeouts)
    adapters: dict[str, Adapter] = {}
    disabled = []
    for name, provider in config.providers.items():
        if provider_enabled(provider, env):
            adapters[name] = build_adapter(name, provider, ctx)
        else:
            disabled.append(name)
    health = {name: ProviderHealth() for name in adapters}
    loads: dict[str, list[RouteLoad]] = {name: [] for name in adapters}
    circuit = CircuitSettings.from_config(config.health)
    window, long_window = config.health.latency_window, config.health.latency_long_window
    models: dict[str, RoutedModel] = {}
    for model in config.models:
        routes = []
        for route in model.routes:
            if route.provider not in adapters:
                continue
            provider = config.providers[route.provider]
            built = Route(
                name=f"{route.provider}/{route.model}",
                provider=route.provider,
                upstream_model=route.model,
                adapter=adapters[route.provider],
                weight=route.weight,
                pricing=route.pricing,
                location=provider.location,
                timeouts=provider.timeouts or config.timeouts,
                capabilities=route.capabilities,
                limits=route.limits,
                stats=LatencyStats(short_horizon=window, long_horizon=long_window),
                circuit=CircuitBreaker(circuit),
                health=health[route.provider],
            )
            loads[route.provider].append(built.load)
            routes.append(built)
        if routes:  # a model whose every provider is disabled is hidden, not an error
            strategy = STRATEGIES[model.strategy](model, random.Random(rng.random()))
            budget = HedgeBudget(model.hedging.budget if model.hedging.enabled else 0.0)
            models[model.name] = RoutedModel(ModelRoutes(model, tuple(routes)), strategy, budget)
    manager = RoutingManager(
        models,
        max_attempts=config.routing.max_attempts,
        rng=rng,
        clock=clock,
        wall_clock=wall_clock,
        accounts=build_upstream_limits(config),
    )
    probes = [ProbeTarget(name, adapters[name], health[name]) for name in adapters]
    urls = {name: metrics_url(config.providers[name]) for name in adapters if loads[name]}
    session = create_session(config.health.timeout) if any(urls.values()) else None
    scrapes = [
        ScrapeTarget(name, MetricsScraper(session, url), tuple(loads[name]))
        for name, url in urls.items()
        if url and session is not None
    ]
    monitor = HealthMonitor(
        probes, scrapes, config.health, rng=random.Random(rng.random()), clock=clock
    )
    return Routing(manager, adapters, tuple(disabled), monitor, session)
