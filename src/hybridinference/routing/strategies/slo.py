"""``slo``: the cheapest mix of routes that meets a tail time-to-first-token target.

For a target "``percentile`` of requests see a first token within ``ttft`` seconds" the
strategy solves, per request, the paper's LP

    minimise Σ π_j c_j   subject to   Σ π_j F_j(L) ≥ p,   Σ π_j = 1,   π ≥ 0

where c_j is the route's expected cost for this request (quota routes at their shadow
price, see ``pricing``) and F_j(L) the share of its recent requests whose first token
came within L (``stats``; failures count as never). With two constraints the optimum
mixes at most two routes, so it is found by enumeration (microseconds, no solver). When
the model hedges, F_j and c_j are those of "route j, with a backup on the fastest other
route after the hedge delay". No route or pair meeting the target relaxes L by 1.2×,
1.5×, 2×, then takes the route with the shortest tail. The mix is realised without
sampling noise by smooth weighted round-robin. Unmeasured routes are assumed to just
meet the target (so each gets measured), and ``exploration`` sends a small share to a
random route so a route that got faster is noticed.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from hybridinference.config.schema import ModelConfig
from hybridinference.routing.hedging import hedge_delay
from hybridinference.routing.pricing import effective_costs
from hybridinference.routing.routes import Route
from hybridinference.routing.strategies.base import RequestInfo

RELAXATIONS = (1.0, 1.2, 1.5, 2.0)


def lp_mix(costs: Sequence[float], meets: Sequence[float], goal: float) -> list[tuple[int, float]]:
    """The optimal mix as (index, weight) pairs, or [] when no mix reaches ``goal``."""
    best_cost = float("inf")
    best: list[tuple[int, float]] = []
    n = len(costs)
    for k in range(n):
        if meets[k] < goal:
            continue
        if costs[k] < best_cost:
            best_cost, best = costs[k], [(k, 1.0)]
        for i in range(n):
            if meets[i] >= goal or costs[i] >= costs[k]:
                continue
            share = (goal - meets[i]) / (meets[k] - meets[i])  # of route k
            cost = costs[i] + share * (costs[k] - costs[i])
            if cost < best_cost:
                best_cost, best = cost, [(i, 1.0 - share), (k, share)]
    return best


class SLOStrategy:
    name = "slo"

    def __init__(self, model: ModelConfig, rng: random.Random) -> None:
        self._rng = rng
        self._slo = model.slo
        self._hedging = model.hedging if model.hedging.enabled else None
        options = model.strategy_options
        self._floor = options.quota_floor
        self._exploration = options.exploration
        self._min_samples = options.min_samples
        self._credit: dict[str, float] = {}  # smooth weighted round-robin; one per route

    def _meets(self, route: Route, now: float, within: float) -> float:
        stats = route.stats
        if stats.samples(now) < self._min_samples:
            return self._slo.percentile
        value = stats.cdf(now, within)
        return self._slo.percentile if value is None else value

    def _hedged(
        self, routes: Sequence[Route], costs: list[float], meets: list[float], now: float
    ) -> None:
        """Turn F_j and c_j into those of "j with a hedge to the fastest other route"."""
        assert self._hedging is not None
        hedging, target = self._hedging, self._slo.ttft
        ranked = sorted(range(len(routes)), key=lambda i: -meets[i])
        for j, route in enumerate(routes):
            b = ranked[0] if ranked[0] != j else ranked[1]
            backup = routes[b]
            delay = hedge_delay(route, backup, hedging, self._slo, now)
            late = 1.0 - self._meets(route, now, delay)
            rescued = self._meets(backup, now, target - delay)
            covered = min(1.0, hedging.budget / late) if late > 0 else 1.0
            meets[j] += (1.0 - meets[j]) * rescued * covered
            costs[j] += late * covered * costs[b]

    def _mix(
        self, routes: Sequence[Route], costs: list[float], request: RequestInfo
    ) -> tuple[list[tuple[int, float]], list[float]]:
        now = request.now
        goal = self._slo.percentile
        for factor in RELAXATIONS:
            within = self._slo.ttft * factor
            meets = [self._meets(r, now, within) for r in routes]
            if self._hedging is not None and factor == 1.0:
                adjusted = list(costs)
                self._hedged(routes, adjusted, meets, now)
                mix = lp_mix(adjusted, meets, goal)
            else:
                mix = lp_mix(costs, meets, goal)
            if mix:
                return mix, meets
        tails = [self._tail(r, now) for r in routes]
        best = min(range(len(routes)), key=lambda i: (tails[i], costs[i]))
        return [(best, 1.0)], meets

    def _tail(self, route: Route, now: float) -> float:
        """The route's TTFT at the target percentile (best effort ranks by it)."""
        value = route.stats.quantile(now, self._slo.percentile)
        return float("inf") if value is None else value

    def _pick(self, routes: Sequence[Route], mix: list[tuple[int, float]]) -> int:
        if len(mix) == 1:
            return mix[0][0]
        credit = self._credit
        chosen, top = mix[0][0], float("-inf")
        for index, weight in mix:
            name = routes[index].name
            value = credit.get(name, 0.0) + weight
            credit[name] = value
            if value > top:
                chosen, top = index, value
        credit[routes[chosen].name] -= 1.0
        return chosen

    def order(self, routes: Sequence[Route], request: RequestInfo) -> list[Route]:
        if len(routes) <= 1:
            return list(routes)
        costs = effective_costs(routes, request, self._floor)
        mix, meets = self._mix(routes, costs, request)
        rng = self._rng
        if rng.random() < self._exploration:
            primary = rng.randrange(len(routes))
        else:
            primary = self._pick(routes, mix)
        rest = sorted(
            (i for i in range(len(routes)) if i != primary), key=lambda i: (-meets[i], costs[i])
        )
        return [routes[primary], *(routes[i] for i in rest)]
