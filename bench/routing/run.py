"""Run every strategy over one scenario's trace and print the comparison table.

    python -m bench.routing.run [--scenario paper-drift] [--requests 100000] [--seed N]
        [--estimated-output] [--markdown]

Per strategy: p50 and p99 time to first token, the share of requests over the SLO
(failed requests count as violations), total cost, cost relative to the hindsight
optimum at the same SLO (``window_bound``: per 15-minute window, the best share of
requests per route knowing each route's realised TTFT distribution), relative to the
clairvoyant per-request lower bound at the SLO and without one (``hindsight``), how
many requests were hedged, and the strategy's wall and CPU time. Deterministic for a
given seed (``--seed`` draws another trace of the same scenario). ``--no-hindsight``
skips the (slow) clairvoyant LPs. ``--estimated-output`` tells the strategies the
model's ``expected_output_tokens`` instead of each request's realised output length.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time

import numpy as np
from bench.routing.hindsight import Hindsight, solve
from bench.routing.scenario import SCENARIOS, Scenario, make_trace
from bench.routing.simulate import POLICY_DEFAULTS as POLICIES
from bench.routing.simulate import Result, Simulation
from bench.routing.window_bound import WindowBound, solve_windows


def _seconds(value: float) -> str:
    return "∞" if math.isinf(value) else f"{value:.2f}"


def _relative(cost: float, optimum: Hindsight | WindowBound | None) -> str:
    return f"{cost / optimum.cost:.2f}×" if optimum is not None and optimum.cost > 0 else "–"


def row(
    result: Result,
    scenario: Scenario,
    bound: WindowBound | None,
    strict: WindowBound | None,
    optimum: Hindsight | None,
    cheapest: Hindsight | None,
) -> list[str]:
    ttft = result.ttft
    violations = float(np.mean(ttft > scenario.slo_ttft))
    return [
        result.label,
        _seconds(float(np.percentile(ttft, 50))),
        _seconds(float(np.percentile(ttft, 99))),
        f"{violations:.2%}",
        f"{result.cost:.2f}",
        _relative(result.cost, bound),
        _relative(result.cost, strict),
        _relative(result.cost, optimum),
        _relative(result.cost, cheapest),
        f"{result.hedged}",
        " ".join(f"{k} {v / len(ttft):.0%}" for k, v in result.served.items() if v),
        f"{result.quota_used:.0%}",
        f"{result.wall_seconds:.1f}",
    ]


HEADER = ["strategy", "p50 TTFT s", "p99 TTFT s", "SLO violations", "cost $"]
HEADER += ["vs hindsight at SLO", "vs hindsight, SLO per window"]
HEADER += ["vs clairvoyant lower bound", "vs clairvoyant cost-only"]
HEADER += ["hedged", "served by", "quota used", "wall s"]


def render(rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    return "\n".join(
        "  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in [HEADER, *rows]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="paper-drift", choices=sorted(SCENARIOS))
    parser.add_argument("--requests", type=int, default=None)
    parser.add_argument("--only", nargs="*", help="strategy labels to run")
    parser.add_argument("--no-hindsight", action="store_true")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument(
        "--estimated-output",
        action="store_true",
        help="strategies see expected_output_tokens, not each request's realised output length",
    )
    parser.add_argument(
        "--seed", type=int, default=None, help="another trace (default: the scenario's)"
    )
    args = parser.parse_args(argv)
    scenario = SCENARIOS[args.scenario]
    if args.seed is not None:
        scenario = dataclasses.replace(scenario, seed=args.seed)
    trace = make_trace(scenario, args.requests)
    n = len(trace.arrival)
    print(
        f"scenario {scenario.name}: {n} requests over {scenario.hours} h (virtual), SLO: "
        f"p{scenario.slo_percentile * 100:g} TTFT ≤ {scenario.slo_ttft} s, seed {scenario.seed}"
    )
    bound = solve_windows(scenario, trace)
    strict = solve_windows(scenario, trace, per_window=True)
    for label, wb in (("over the trace", bound), ("in every window", strict)):
        print(
            f"hindsight LP per 15-min window, SLO {label}: ${wb.cost:.2f}, {wb.violations:.2%} "
            f"violations, {wb.windows} windows, {wb.seconds:.2f} s; shares "
            + " ".join(f"{k} {v:.0%}" for k, v in wb.shares.items())
        )
    optimum = cheapest = None
    if not args.no_hindsight:
        optimum, cheapest = solve(scenario, trace), solve(scenario, trace, slo=False)
        for label, lp in (("at the SLO", optimum), ("cost only", cheapest)):
            print(
                f"clairvoyant per-request hindsight LP {label}: ${lp.cost:.2f}, "
                f"{lp.violations:.2%} violations, "
                f"{lp.variables} variables, {lp.constraints} constraints, {lp.seconds:.1f} s"
            )
    rows = []
    total = time.perf_counter()
    for policy in POLICIES:
        if args.only and policy.label not in args.only:
            continue
        started, cpu = time.perf_counter(), time.process_time()
        simulation = Simulation(scenario, trace, policy, known_output=not args.estimated_output)
        result = simulation.run()
        result.wall_seconds = time.perf_counter() - started
        print(
            f"  {policy.label}: {result.wall_seconds:.1f} s wall, "
            f"{time.process_time() - cpu:.1f} s CPU",
            flush=True,
        )
        rows.append(row(result, scenario, bound, strict, optimum, cheapest))
    print(f"simulated {len(rows)} strategies in {time.perf_counter() - total:.1f} s wall")
    print(render(rows, args.markdown))


if __name__ == "__main__":
    main()
