"""Routing knowledge shared between replicas: the bridge between the routing manager's
routes (circuit breakers, latency statistics) and ``limits.shared.SharedKnowledge``, which
exchanges it through the limits Redis."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from hybridinference.config.limits import LimitsConfig
from hybridinference.limits.build import redis_url
from hybridinference.limits.redis_store import connect
from hybridinference.limits.shared import RouteKnowledge, SharedKnowledge
from hybridinference.limits.upstream import UpstreamLimits

if TYPE_CHECKING:
    from hybridinference.routing.manager import RoutingManager


class RouteKnowledgeSource:
    """``limits.shared.KnowledgeSource`` over the routing manager's routes.

    Routing's circuit breakers and latency statistics are read and written with
    ``getattr`` on purpose (as ``gateway.metrics`` does): routing grows these objects
    independently, and a missing attribute must mean "nothing shared", never a crash.
    """

    def __init__(self, manager: RoutingManager, clock: Callable[[], float]) -> None:
        self._routes: dict[str, list[Any]] = {}
        for routed in manager.models:
            for route in routed.routes.routes:
                self._routes.setdefault(route.name, []).append(route)
        self._clock = clock
        self._accounts: UpstreamLimits | None = getattr(manager, "accounts", None)

    def export(self) -> Mapping[str, RouteKnowledge]:
        now = self._clock()
        known: dict[str, RouteKnowledge] = {}
        for name, routes in self._routes.items():
            circuit = getattr(routes[0], "circuit", None)
            stats = getattr(routes[0], "stats", None)
            if circuit is None or stats is None:
                continue
            known[name] = RouteKnowledge(
                circuit_open_for=float(circuit.retry_in(now)),
                ewma=stats.ewma,
                samples=int(stats.samples(now)),
                error_rate=float(stats.error_rate),
                paused_for=self._accounts.paused_for(name) if self._accounts else 0.0,
            )
        return known

    def absorb(self, name: str, peers: Sequence[RouteKnowledge]) -> None:
        now = self._clock()
        longest = max((p.circuit_open_for for p in peers), default=0.0)
        paused = max((p.paused_for for p in peers), default=0.0)
        if self._accounts is not None and paused > self._accounts.paused_for(name):
            self._accounts.pause(name, paused)
        for route in self._routes.get(name, ()):
            circuit = getattr(route, "circuit", None)
            stats = getattr(route, "stats", None)
            if circuit is not None and longest > circuit.retry_in(now):
                _adopt_open(circuit, now, longest)
            if stats is not None:
                _blend(stats, int(stats.samples(now)), peers)


def _adopt_open(circuit: Any, now: float, open_for: float) -> None:
    """A peer's circuit is open: stop sending here too until the peer's cooldown ends."""
    circuit.state = type(circuit.state)("open")
    circuit.opened_at = now - circuit.settings.cooldown + open_for
    circuit.opens += 1


def _blend(stats: Any, local_samples: int, peers: Sequence[RouteKnowledge]) -> None:
    """Sample-weighted averages of the latency EWMA and the error rate."""
    weighted = [(p.samples, p) for p in peers if p.samples > 0]
    if not weighted:
        return
    total = local_samples + sum(n for n, _ in weighted)
    error = local_samples * stats.error_rate + sum(n * p.error_rate for n, p in weighted)
    stats.error_rate = error / total
    timed = [(n, p.ewma) for n, p in weighted if p.ewma is not None]
    own = [(local_samples, stats.ewma)] if stats.ewma is not None and local_samples else []
    pairs = own + timed
    count = sum(n for n, _ in pairs)
    if count:
        stats.ewma = sum(n * value for n, value in pairs) / count


def build_shared_routing(
    config: LimitsConfig,
    env: Mapping[str, str],
    manager: RoutingManager,
    clock: Callable[[], float],
    wall_clock: Callable[[], float],
) -> SharedKnowledge | None:
    """Routing knowledge shared through the limits Redis, when configured (else None)."""
    if config.backend != "redis" or not config.shared_routing:
        return None
    return SharedKnowledge(
        connect(redis_url(config, env), timeout=config.redis.timeout, max_connections=4),
        RouteKnowledgeSource(manager, clock),
        prefix=config.redis.prefix,
        interval=config.shared_routing_interval,
        wall_clock=wall_clock,
    )
