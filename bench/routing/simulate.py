"""One strategy over one trace, in virtual time, through the gateway's real routing code.

What is real: ``Route`` objects with their ``LatencyStats``, ``CircuitBreaker``,
``QuotaUsage`` and ``RouteLoad``; the eligibility filter (``manager.available``); the
strategies from ``STRATEGIES``; ``hedge_delay`` and ``HedgeBudget``; the outcome
bookkeeping of ``legs`` (``settle_ok``/``settle_error``). What is simulated: the
providers (their TTFT and errors come from the trace), the clock, and the local
engine's slots and its /metrics numbers (refreshed once a second, like the scraper).

Outcomes reach the statistics when they would be observed (an event queue), so a
decision only knows what had happened by then. Attempts follow the manager: failover
in the strategy's order (at most three), one hedge per request on the first attempt
whose TTFT passes its hedge delay, first content wins, the loser is cancelled (billed
its prompt only, since it produced no token).
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from bench.routing.scenario import Provider, Scenario, Trace

from hybridinference.config.routing import RouteLimits
from hybridinference.config.schema import ModelConfig, Pricing, Timeouts
from hybridinference.errors import UpstreamServerError
from hybridinference.routing.circuit import CircuitBreaker
from hybridinference.routing.engine_load import EngineLoad
from hybridinference.routing.hedging import HedgeBudget, hedge_delay
from hybridinference.routing.legs import settle_error, settle_ok
from hybridinference.routing.manager import available
from hybridinference.routing.routes import Route
from hybridinference.routing.stats import LatencyStats
from hybridinference.routing.strategies import STRATEGIES, RequestInfo

MAX_ATTEMPTS = 3
SCRAPE_EVERY = 1.0
FAILURE = UpstreamServerError("simulated upstream failure")


class SimAdapter:
    kind = "simulated"  # never called: the simulator decides what the upstream does


@dataclass(frozen=True)
class Policy:
    label: str
    strategy: str
    hedging: bool = False
    options: dict[str, Any] = field(default_factory=dict)

    def model(self, scenario: Scenario) -> ModelConfig:
        hedging: dict[str, Any] = {"enabled": self.hedging}
        if self.hedging:
            hedging.update(quantile=0.9, min_delay=0.05, max_delay=2.0, budget=0.15)
        return ModelConfig.model_validate(
            {
                "name": "sim",
                "routes": [{"provider": p.name, "model": "m"} for p in scenario.providers],
                "strategy": self.strategy,
                "slo": {"ttft": scenario.slo_ttft, "percentile": scenario.slo_percentile},
                "hedging": hedging,
                "strategy_options": self.options,
            }
        )


POLICY_DEFAULTS = (
    Policy("weighted", "weighted"),
    Policy("round_robin", "round_robin"),
    Policy("least_busy", "least_busy"),
    Policy("latency", "latency"),
    Policy("cost", "cost"),
    Policy("local_first", "local_first"),
    Policy("slo", "slo"),
    Policy("slo + hedging", "slo", hedging=True),
)


@dataclass
class Result:
    label: str
    ttft: np.ndarray  # per request, seconds; inf when every attempt failed
    cost: float
    hedged: int
    served: dict[str, int] = field(default_factory=dict)  # requests per winning route
    quota_used: float = 0.0
    wall_seconds: float = 0.0


def build_routes(scenario: Scenario) -> list[Route]:
    return [
        Route(
            name=p.name,
            provider=p.name,
            upstream_model="m",
            adapter=SimAdapter(),  # type: ignore[arg-type]
            weight=1.0,
            pricing=Pricing(input=p.price_in, output=p.price_out),
            location=p.location,
            timeouts=Timeouts(),
            limits=RouteLimits(daily_tokens=p.daily_tokens, max_concurrency=p.slots),
            stats=LatencyStats(short_horizon=900.0, long_horizon=10_800.0),
            circuit=CircuitBreaker(),
        )
        for p in scenario.providers
    ]


class Engine:
    """The local engine: ``slots`` parallel requests, FIFO beyond that."""

    def __init__(self, slots: int) -> None:
        self.free_at = [0.0] * slots

    def admit(self, now: float, service: float) -> tuple[int, float]:
        """(slot, start time) for a request arriving at ``now`` needing ``service`` s."""
        slot = min(range(len(self.free_at)), key=self.free_at.__getitem__)
        start = max(now, self.free_at[slot])
        self.free_at[slot] = start + service
        return slot, start

    def release(self, slot: int, at: float) -> None:
        self.free_at[slot] = min(self.free_at[slot], at)


class Simulation:
    def __init__(
        self, scenario: Scenario, trace: Trace, policy: Policy, *, known_output: bool = True
    ) -> None:
        self.scenario = scenario
        self.trace = trace
        # plain lists: indexing numpy arrays one element at a time is slow
        self.arrival: list[float] = trace.arrival.tolist()
        self.prompt: list[int] = trace.prompt.tolist()
        self.output: list[int] = trace.output.tolist()
        self.ttft: list[list[float]] = trace.ttft.tolist()
        self.error: list[list[bool]] = trace.error.tolist()
        self.error_after: list[list[float]] = trace.error_after.tolist()
        self.policy = policy
        self.providers: tuple[Provider, ...] = scenario.providers
        self.routes = build_routes(scenario)
        self.index = {route.name: j for j, route in enumerate(self.routes)}
        model = policy.model(scenario)
        self.strategy = STRATEGIES[policy.strategy](model, random.Random(scenario.seed))
        self.hedging = model.hedging if policy.hedging else None
        self.slo = model.slo
        # what the strategy is told about the output length: the realised one, or (as a
        # gateway without max_tokens would) the model's expected_output_tokens
        self.output_hint: int | None = (
            None if known_output else model.strategy_options.expected_output_tokens
        )
        self.budget = HedgeBudget(self.hedging.budget if self.hedging else 0.0)
        self.engines = {
            j: Engine(p.slots) for j, p in enumerate(self.providers) if p.slots is not None
        }
        self.events: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self.seq = 0
        self.cost = 0.0
        self.last_scrape = -math.inf
        self._backup_ttft = 0.0
        self.served = [0] * len(self.routes)

    def later(self, at: float, action: Callable[..., None], *args: Any) -> None:
        self.seq += 1
        heapq.heappush(self.events, (at, self.seq, action, args))

    def advance(self, now: float) -> None:
        events = self.events
        while events and events[0][0] <= now:
            _, _, action, args = heapq.heappop(events)
            action(*args)
        if now - self.last_scrape >= SCRAPE_EVERY:
            self.last_scrape = now
            for j, engine in self.engines.items():
                load = self.routes[j].load
                slots = len(engine.free_at)
                running = min(slots, load.in_flight)
                waiting = load.in_flight - running
                load.engine = EngineLoad(running, waiting, 0.85 * running / slots, now)

    def price(self, j: int, i: int, full: bool) -> float:
        p = self.providers[j]
        if p.daily_tokens is not None:
            return 0.0  # prepaid
        out = self.output[i] if full else 0
        return (p.price_in * self.prompt[i] + p.price_out * out) / 1_000_000

    def _finish(self, j: int, slot: int | None, at: float) -> None:
        self.routes[j].load.in_flight -= 1
        if slot is not None:
            self.engines[j].release(slot, at)

    def start_leg(self, i: int, j: int, t: float) -> tuple[float, int | None]:
        """Start request i on route j at time t: (TTFT from t, engine slot)."""
        base = self.ttft[i][j]
        self.routes[j].load.in_flight += 1
        engine = self.engines.get(j)
        if engine is None:
            return base, None
        service = base + self.output[i] / self.providers[j].tokens_per_second
        slot, start = engine.admit(t, service)
        return start - t + base, slot

    def serve(self, i: int, ordered: list[Route], t0: float) -> float:
        """Run request i's attempts; its TTFT (inf when all failed)."""
        t = t0
        hedgeable = self.hedging is not None
        if hedgeable:
            self.budget.earn()
        for k, route in enumerate(ordered):
            j = self.index[route.name]
            route.circuit.begin(t)
            if self.error[i][j]:
                failed = t + self.error_after[i][j]
                self.routes[j].load.in_flight += 1
                self.later(failed, self._failed, j, failed)
                t = failed
                continue
            ttft, slot = self.start_leg(i, j, t)
            winner, first = j, t + ttft
            if hedgeable and k + 1 < len(ordered):
                hedgeable = False
                backup = ordered[k + 1]
                assert self.hedging is not None
                delay = hedge_delay(route, backup, self.hedging, self.slo, t)
                if ttft > delay and self.budget.spend():
                    winner, first = self.hedge(i, j, t, ttft, slot, backup, delay)
            started = t if winner == j else first - self._backup_ttft
            self.won(i, winner, started, first)
            if winner == j:
                self.finish_at(i, j, slot, first)
            return first - t0
        return math.inf

    def hedge(
        self,
        i: int,
        j: int,
        t: float,
        ttft: float,
        slot: int | None,
        backup: Route,
        delay: float,
    ) -> tuple[int, float]:
        """Start a backup at t + delay; (the winner, its first-token time)."""
        b = self.index[backup.name]
        at = t + delay
        backup.circuit.begin(at)
        if self.error[i][b]:
            failed = at + self.error_after[i][b]
            self.routes[b].load.in_flight += 1
            self.later(failed, self._failed, b, failed)
            return j, t + ttft
        b_ttft, b_slot = self.start_leg(i, b, at)
        self._backup_ttft = b_ttft
        if at + b_ttft < t + ttft:  # the backup wins; the primary is cancelled
            first = at + b_ttft
            self.later(first, self._lost, j, t, first)
            self.later(first, self._finish, j, slot, first)
            self.cost += self.price(j, i, full=False)
            self.budget.backup_wins += 1
            self.finish_at(i, b, b_slot, first)
            return b, first
        first = t + ttft
        self.later(first, self._lost, b, at, first)
        self.later(first, self._finish, b, b_slot, first)
        self.cost += self.price(b, i, full=False)
        return j, first

    def finish_at(self, i: int, j: int, slot: int | None, first: float) -> None:
        end = first + self.output[i] / self.providers[j].tokens_per_second
        self.later(end, self._finish, j, slot, end)

    def won(self, i: int, j: int, started: float, first: float) -> None:
        self.served[j] += 1
        self.cost += self.price(j, i, full=True)
        self.later(first, self._ok, j, i, first, first - started)

    def _ok(self, j: int, i: int, at: float, ttft: float) -> None:
        route = self.routes[j]
        settle_ok(route, at, ttft)  # the leg's own TTFT, local queueing included
        if route.quota.active:
            tokens = int(self.prompt[i] + self.output[i])
            route.quota.add(0, tokens, 0.0)

    def _failed(self, j: int, at: float) -> None:
        self.routes[j].load.in_flight -= 1
        settle_error(self.routes[j], at, FAILURE)

    def _lost(self, j: int, started: float, at: float) -> None:
        route = self.routes[j]
        route.circuit.release()
        route.stats.record(at, at - started)  # at least this slow, as the gateway records

    def run(self) -> Result:
        n = len(self.arrival)
        ttfts = np.empty(n)
        routes = self.routes
        strategy = self.strategy
        for i in range(n):
            now = self.arrival[i]
            self.advance(now)
            hint = self.output_hint
            info = RequestInfo(now, 0, self.prompt[i], self.output[i] if hint is None else hint)
            eligible = [r for r in routes if available(r, info)]
            if not eligible:
                ttfts[i] = math.inf
                continue
            ordered = strategy.order(eligible, info)[:MAX_ATTEMPTS]
            ttfts[i] = self.serve(i, ordered, now)
        served = {r.name: count for r, count in zip(routes, self.served, strict=True)}
        quota = max((r.quota.used(0) for r in routes if r.quota.active), default=0.0)
        return Result(self.policy.label, ttfts, self.cost, self.budget.hedged, served, quota)
