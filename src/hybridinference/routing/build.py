"""Config → routing: adapters from the registry, routes per model (each with its own
statistics, circuit breaker and quota; probe health shared per provider), a strategy
per model, and the health monitor that probes providers and scrapes local engines.

Hot reload builds the next routing from the ``previous`` one: a provider whose config is
unchanged keeps its adapter (pooled connections) and probe health; a route (same model,
same provider/upstream model) on a kept adapter keeps its load, latency statistics,
circuit and quota; a model whose effective config is unchanged keeps its strategy and
hedge budget. ``retire`` then stops the old generation, closing only the adapters the
new one dropped, once their in-flight calls are done.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import aiohttp

from hybridinference.adapters.base import Adapter
from hybridinference.adapters.http import create_session
from hybridinference.adapters.registry import BuildContext, build_adapter, provider_enabled
from hybridinference.config.flags import flag_table
from hybridinference.config.schema import GatewayConfig, ModelConfig, ProviderConfig
from hybridinference.errors import ConfigError
from hybridinference.limits.build import build_upstream_limits
from hybridinference.limits.upstream import UpstreamLimits
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
DRAIN_POLL = 0.1  # seconds between looks at a retired generation's in-flight calls


@dataclass(frozen=True, slots=True)
class Routing:
    manager: RoutingManager
    adapters: Mapping[str, Adapter]
    disabled_providers: tuple[str, ...]
    health: HealthMonitor
    session: aiohttp.ClientSession | None = None  # for engine /metrics scrapes
    source: GatewayConfig | None = None  # what it was built from (reload compares)
    accounts: UpstreamLimits | None = None

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
    known = ", ".join(sorted(STRATEGIES))
    named: list[tuple[str, str | None]] = [("flags.strategy", config.flags.strategy)]
    for i, m in enumerate(config.models):
        named.append((f"models[{i}].strategy", m.strategy))
        named.append((f"models[{i}].flags.strategy", m.flags.strategy if m.flags else None))
    for where, strategy in named:
        if strategy and strategy not in STRATEGIES:
            raise ConfigError(f"{where}: unknown strategy {strategy!r} (expected one of: {known})")


def effective_models(config: GatewayConfig) -> tuple[ModelConfig, ...]:
    """The models with the routing flags folded in: the strategy flag replaces the
    model's strategy; the hedging flag off turns its hedging off."""
    table = flag_table(config)
    out = []
    for model in config.models:
        flags = table.for_model(model.name)
        update: dict[str, object] = {}
        if flags.strategy and flags.strategy != model.strategy:
            update["strategy"] = flags.strategy
        if model.hedging.enabled and not flags.hedging:
            update["hedging"] = model.hedging.model_copy(update={"enabled": False})
        out.append(model.model_copy(update=update) if update else model)
    return tuple(out)


def metrics_url(provider: ProviderConfig) -> str | None:
    """The engine's /metrics: configured, or next to a vLLM/SGLang base URL."""
    if provider.metrics_url:
        return provider.metrics_url
    if provider.location == "local" and getattr(provider, "profile", None) in METRICS_PROFILES:
        base = str(getattr(provider, "base_url", "")).removesuffix("/v1")
        return base + "/metrics" if base else None
    return None


@dataclass(frozen=True, slots=True)
class _Kept:
    """What the previous generation hands on (empty for a first build)."""

    adapters: Mapping[str, Adapter]
    health: Mapping[str, ProviderHealth]
    routes: Mapping[tuple[str, str], Route]
    models: Mapping[str, RoutedModel]
    accounts: UpstreamLimits | None

    @classmethod
    def of(cls, config: GatewayConfig, previous: Routing | None) -> _Kept:
        if previous is None or previous.source is None:
            return cls({}, {}, {}, {}, None)
        old = previous.source
        same = old.timeouts == config.timeouts
        adapters = {
            name: adapter
            for name, adapter in previous.adapters.items()
            if same and config.providers.get(name) == old.providers.get(name)
        }
        routes = {
            (routed.routes.name, route.name): route
            for routed in previous.manager.models
            for route in (*routed.routes.routes, *routed.parked)
            if route.provider in adapters
        }
        health = {route.provider: route.health for route in routes.values()}
        models = {routed.routes.name: routed for routed in previous.manager.models}
        accounts = previous.accounts if old.limits == config.limits else None
        return cls(adapters, health, routes, models, accounts)


def _carry(built: Route, old: Route | None, circuit: CircuitSettings) -> Route:
    """``built`` with the live parts of the same route in the previous generation."""
    if old is None:
        return built
    keep_circuit = old.circuit.settings == circuit
    carried = dataclasses.replace(
        built,
        load=old.load,
        stats=old.stats,
        circuit=old.circuit if keep_circuit else built.circuit,
    )
    if old.limits == built.limits:  # the same quota object: usage keeps counting in one place
        object.__setattr__(carried, "quota", old.quota)
    else:
        carried.quota.day, carried.quota.tokens, carried.quota.cost = (
            old.quota.day,
            old.quota.tokens,
            old.quota.cost,
        )
    return carried


def build_routing(
    config: GatewayConfig,
    env: Mapping[str, str],
    rng: random.Random,
    *,
    clock: Callable[[], float] = time.monotonic,
    wall_clock: Callable[[], float] = time.time,
    previous: Routing | None = None,
) -> Routing:
    """The routing for ``config``; with ``previous``, reusing its live parts (see above).
    Raises ``ConfigError`` before anything is started or closed."""
    check_strategies(config)
    accounts = build_upstream_limits(config)  # validates limits.upstream
    kept = _Kept.of(config, previous)
    adapters, disabled = _adapters(config, env, kept)
    health = {name: kept.health.get(name) or ProviderHealth() for name in adapters}
    loads: dict[str, list[RouteLoad]] = {name: [] for name in adapters}
    circuit = CircuitSettings.from_config(config.health)
    window, long_window = config.health.latency_window, config.health.latency_long_window
    models: dict[str, RoutedModel] = {}
    fallbacks = flag_table(config)
    for model in effective_models(config):
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
            built = _carry(built, kept.routes.get((model.name, built.name)), circuit)
            loads[route.provider].append(built.load)
            routes.append(built)
        if routes:  # a model whose every provider is disabled is hidden, not an error
            allow = fallbacks.for_model(model.name).fallbacks
            models[model.name] = _routed(model, tuple(routes), kept, rng, allow)
    manager = RoutingManager(
        models,
        max_attempts=config.routing.max_attempts,
        rng=rng,
        clock=clock,
        wall_clock=wall_clock,
        accounts=kept.accounts or accounts,
    )
    monitor, session = _monitor(config, adapters, health, loads, random.Random(rng.random()), clock)
    return Routing(
        manager, adapters, tuple(disabled), monitor, session, config, kept.accounts or accounts
    )


def _monitor(
    config: GatewayConfig,
    adapters: Mapping[str, Adapter],
    health: Mapping[str, ProviderHealth],
    loads: Mapping[str, list[RouteLoad]],
    rng: random.Random,
    clock: Callable[[], float],
) -> tuple[HealthMonitor, aiohttp.ClientSession | None]:
    """Probes of every enabled provider and scrapes of local engines' /metrics."""
    probes = [ProbeTarget(name, adapters[name], health[name]) for name in adapters]
    urls = {name: metrics_url(config.providers[name]) for name in adapters if loads[name]}
    session = create_session(config.health.timeout) if any(urls.values()) else None
    scrapes = [
        ScrapeTarget(name, MetricsScraper(session, url), tuple(loads[name]))
        for name, url in urls.items()
        if url and session is not None
    ]
    return HealthMonitor(probes, scrapes, config.health, rng=rng, clock=clock), session


def _adapters(
    config: GatewayConfig, env: Mapping[str, str], kept: _Kept
) -> tuple[dict[str, Adapter], list[str]]:
    """Kept adapters, new ones for new or changed providers, and the disabled names."""
    ctx = BuildContext(env=env, timeouts=config.timeouts)
    adapters: dict[str, Adapter] = {}
    disabled = []
    for name, provider in config.providers.items():
        if name in kept.adapters:
            adapters[name] = kept.adapters[name]
        elif provider_enabled(provider, env):
            adapters[name] = build_adapter(name, provider, ctx)
        else:
            disabled.append(name)
    return adapters, disabled


def _routed(
    model: ModelConfig,
    routes: tuple[Route, ...],
    kept: _Kept,
    rng: random.Random,
    fallbacks: bool,
) -> RoutedModel:
    """A model's routing: its strategy and hedge budget kept when its config is unchanged
    (round-robin position, SLO credit, hedges spent)."""
    old = kept.models.get(model.name)
    if old is not None and old.routes.config == model:
        strategy, budget = old.strategy, old.budget
    else:
        strategy = STRATEGIES[model.strategy](model, random.Random(rng.random()))
        budget = HedgeBudget(model.hedging.budget if model.hedging.enabled else 0.0)
    return RoutedModel(ModelRoutes(model, routes), strategy, budget, fallbacks=fallbacks)


async def retire(old: Routing, new: Routing, *, drain_timeout: float) -> None:
    """Stop ``old`` after ``new`` took over: its probes and scrapes now, the adapters
    ``new`` does not use once their in-flight calls end (at most ``drain_timeout``)."""
    await old.health.aclose()
    if old.session is not None and old.session is not new.session:
        await old.session.close()
    kept = {id(adapter) for adapter in new.adapters.values()}
    dropped = [a for a in old.adapters.values() if id(a) not in kept]
    if not dropped:
        return
    gone = {id(a) for a in dropped}
    busy = [
        route.load
        for routed in old.manager.models
        for route in (*routed.routes.routes, *routed.parked)
        if id(route.adapter) in gone
    ]
    for _ in range(max(1, int(drain_timeout / DRAIN_POLL))):  # polled: no hook on the loads
        if not any(load.in_flight > 0 for load in busy):
            break
        await asyncio.sleep(DRAIN_POLL)
    for adapter in dropped:
        await adapter.aclose()
