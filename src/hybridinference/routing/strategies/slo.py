"""``slo``: the cheapest mix of routes that meets a tail time-to-first-token target.

For a target "``percentile`` of requests see a first token within ``ttft`` seconds" the
strategy solves, per request, the paper's LP

    minimise Σ π_j c_j   subject to   Σ π_j F_j(L) ≥ p,   Σ π_j = 1,   π ≥ 0

where c_j is the route's expected cost for this request (quota routes at their shadow
price, see ``pricing``) and F_j(L) the share of its recent requests whose first token
came within L (``stats``; failures: below). With two constraints the optimum
mixes at most two routes, so it is found by enumeration (microseconds, no solver). When
the model hedges, F_j and c_j are those of "route j, with a backup on the fastest other
route after the hedge delay". No route or pair meeting the target relaxes L by 1.2×,
1.5×, 2×, then takes the route with the shortest tail. The mix is realised without
sampling noise by smooth weighted round-robin. Unmeasured routes are assumed to just
meet the target (so each gets measured), and ``exploration`` sends a small share to a
random route so a route that got faster is noticed.

F_j counts a route's failures apart from its latency: F among answered requests (the
statistics' windows) mixed with the circuit breaker's current error share, a failure
counting as a failover to the best other route (what the manager does); an outage that
has ended (the circuit closed again) stops weighing on the route at once instead of
lingering in the statistics' windows.

The SLO counts over all requests, so no single request must meet the percentile.
Without hedging, each expected miss is priced at the SLO's dual price (``miss_price``:
the same price per miss whatever the request's size, learned by dual ascent so the
decisions expect the misses the SLO allows), and the goal is only a floor
(``percentile − MAX_SLACK``); the misses then go where they save the most, e.g. to
large requests on tail-prone cheap routes. With hedging, each LP's goal is the
percentile minus a violation budget's slack: an integral controller (one number) that
earns slack when the chosen mixes expect fewer misses than the SLO allows (an idle local
engine, a calm route) and spends it when they expect more. Exploration's decisions are
accounted like the others.

What it reads from the statistics is reused for ``stats_refresh`` seconds, so a decision
is mostly a cost estimate and a tiny LP.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from hybridinference.config.schema import ModelConfig
from hybridinference.routing.hedging import hedge_delay
from hybridinference.routing.pricing import effective_costs
from hybridinference.routing.routes import Route
from hybridinference.routing.strategies.base import RequestInfo
from hybridinference.routing.strategies.miss_price import MissPrice

RELAXATIONS = (1.0, 1.2, 1.5, 2.0)
SLACK_GAIN = 0.05  # how fast the violation budget follows the decisions' expected misses
MAX_SLACK = 0.1  # the per-request goal never drops more than this below the percentile


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
        self._expected = options.expected_output_tokens
        self._exploration = options.exploration
        self._min_samples = options.min_samples
        self._refresh = options.stats_refresh
        # what the statistics said, reused for ``stats_refresh`` seconds; bounded by the
        # number of routes (and route pairs, for hedging)
        self._meets_cache: dict[tuple[str, float], tuple[float, float]] = {}
        self._pair_cache: dict[tuple[str, str], tuple[float, float, float]] = {}
        self._credit: dict[str, float] = {}  # smooth weighted round-robin; one per route
        # with hedging, the violation budget: how far below ``percentile`` the goal may be,
        # because recent decisions (e.g. to an idle local engine) expected fewer misses
        # than the SLO allows; an integral controller, one number
        self._slack = 0.0
        # without hedging: the price of an expected miss, learned by dual ascent
        self._miss_price = MissPrice(self._slo.percentile)

    def meets(self, route: Route, now: float, within: float) -> float:
        """F(within): the share of the route's recent first tokens that came in time
        (cached per route and threshold; thresholds are the target and its relaxations)."""
        key = (route.name, within)
        cached = self._meets_cache.get(key)
        if cached is not None and now - cached[0] < self._refresh:
            return cached[1]
        result = self._measure(route, now, within)
        self._meets_cache[key] = (now, result)
        return result

    def _measure(self, route: Route, now: float, within: float) -> float:
        stats = route.stats
        value = None
        if stats.samples(now) >= self._min_samples:
            value = stats.served_cdf(now, within)
        return self._slo.percentile if value is None else value

    def _hedge(self, route: Route, backup: Route, now: float) -> tuple[float, float]:
        """(share of requests rescued by the backup, share that pays for a backup)."""
        key = (route.name, backup.name)
        cached = self._pair_cache.get(key)
        if cached is not None and now - cached[0] < self._refresh:
            return cached[1], cached[2]
        hedging = self._hedging
        assert hedging is not None
        delay = hedge_delay(route, backup, hedging, self._slo, now)
        late = 1.0 - self._measure(route, now, delay)
        rescued = self._measure(backup, now, self._slo.ttft - delay)
        covered = min(1.0, hedging.budget / late) if late > 0 else 1.0
        self._pair_cache[key] = (now, rescued * covered, late * covered)
        return rescued * covered, late * covered

    def _mix(
        self, routes: Sequence[Route], costs: list[float], plain: list[float], now: float
    ) -> list[tuple[int, float]]:
        goal = self._slo.percentile - self._slack
        if self._hedging is not None:
            first, second = sorted(range(len(routes)), key=lambda i: -plain[i])[:2]
            meets, paid = [], []
            for j, route in enumerate(routes):
                b = first if first != j else second
                rescued, pays = self._hedge(route, routes[b], now)
                meets.append(plain[j] + (1.0 - plain[j]) * rescued)
                paid.append(costs[j] + pays * costs[b])
            mix = lp_mix(paid, meets, goal)
        else:
            # the miss price carries the SLO; the goal is only a floor no mix may go below
            goal = self._slo.percentile - MAX_SLACK
            price = self._miss_price.price(max(costs))
            priced = [c + price * (1.0 - f) for c, f in zip(costs, plain, strict=True)]
            mix = lp_mix(priced, plain, goal)
        for factor in RELAXATIONS[1:]:
            if mix:
                return mix
            within = self._slo.ttft * factor
            mix = lp_mix(costs, [self.meets(r, now, within) for r in routes], goal)
        if mix:
            return mix
        tails = [_tail(r, now, goal) for r in routes]
        return [(min(range(len(costs)), key=lambda i: (tails[i], costs[i])), 1.0)]

    def _spend(self, expected_miss: float) -> None:
        """Account a decision's expected misses. Hedged: integral control of the violation
        budget (decisions expecting fewer misses than the SLO allows earn slack, the
        others spend it). Unhedged: dual ascent on the miss price."""
        if self._hedging is None:
            self._miss_price.update(expected_miss)
            return
        allowed = 1.0 - self._slo.percentile
        slack = self._slack + SLACK_GAIN * (allowed - expected_miss)
        self._slack = min(MAX_SLACK, max(0.0, slack))

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
        now = request.now
        target = self._slo.ttft
        costs = effective_costs(routes, request, self._floor, self._expected)
        plain = fail_over([self.meets(r, now, target) for r in routes], routes, costs)
        rng = self._rng
        if rng.random() < self._exploration:
            primary = rng.randrange(len(routes))
            self._spend(1.0 - plain[primary])  # measuring is paid from the same budget
        else:
            mix = self._mix(routes, costs, plain, now)
            self._spend(sum(weight * (1.0 - plain[i]) for i, weight in mix))
            primary = self._pick(routes, mix)
        rest = sorted(
            (i for i in range(len(routes)) if i != primary), key=lambda i: (-plain[i], costs[i])
        )
        return [routes[primary], *(routes[i] for i in rest)]


def fail_over(served: list[float], routes: Sequence[Route], costs: list[float]) -> list[float]:
    """F of each route counting its current failures as failed over to the best other
    route (the manager's next candidate); ``costs`` become the expected cost likewise.

    ``served`` is F among answered requests; the error share is the circuit breaker's
    (the outcomes since the circuit last closed), so an outage that ended no longer
    counts against the route while a route failing now is priced by its failover."""
    errors = [route.circuit.error_share() for route in routes]
    if not any(errors):
        return served
    first, second = sorted(range(len(routes)), key=lambda i: -served[i])[:2]
    base = list(costs)
    plain = []
    for j, error in enumerate(errors):
        b = first if first != j else second
        plain.append(served[j] + error * (served[b] - served[j]))
        costs[j] += error * (base[b] - base[j])
    return plain


def _tail(route: Route, now: float, percentile: float) -> float:
    """The route's TTFT at the target percentile (best effort ranks by it)."""
    value = route.stats.quantile(now, percentile)
    return float("inf") if value is None else value
