"""How long one routing decision takes: the manager's eligibility filter plus each
strategy's ``order`` over six routes with warm statistics (no I/O involved).

    python -m bench.routing.decision
"""

from __future__ import annotations

import random
import statistics
import time

from bench.routing.scenario import PAPER_DRIFT
from bench.routing.simulate import POLICY_DEFAULTS, Policy, build_routes

from hybridinference.routing.manager import available
from hybridinference.routing.strategies import STRATEGIES, RequestInfo

ROUNDS = 20_000


def measure(policy: Policy) -> float:
    """Median microseconds per decision."""
    routes = build_routes(PAPER_DRIFT)
    rng = random.Random(1)
    for route in routes:
        for k in range(600):
            route.stats.record(k * 0.5, rng.lognormvariate(-0.7, 0.6))
    strategy = STRATEGIES[policy.strategy](policy.model(PAPER_DRIFT), random.Random(2))
    samples = []
    for i in range(ROUNDS):
        now = 300.0 + i * 0.01
        info = RequestInfo(now, 0, 800, 300)
        started = time.perf_counter()
        eligible = [r for r in routes if available(r, info)]
        strategy.order(eligible, info)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def main() -> None:
    for policy in POLICY_DEFAULTS:
        print(f"{policy.label:>14}: {measure(policy):6.1f} µs per decision (median)")


if __name__ == "__main__":
    main()
