"""The hindsight optimum: the cheapest assignment of every request to one route, knowing
every route's outcome for every request, with at most the SLO's share of violations.

Solved as a linear program with scipy's HiGHS (interior point). The LP relaxation of
the assignment is a lower bound on the optimal assignment's cost, so "cost relative to
hindsight" is, if anything, overstated. Constraints:

- each request is assigned once (fractionally, in the relaxation);
- violations (TTFT over the target, or an error) at most ``1 − percentile`` of requests;
- the prepaid quota's tokens;
- the local engine's slots, at instants ``GRID`` seconds apart where they could
  overflow (the hindsight assignment never queues; checking only at grid instants
  relaxes the constraint, which keeps the optimum a lower bound).

Per request only the undominated choices are variables: the local engine, the quota,
the cheapest on-demand route, and the cheapest on-demand route that meets the target.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from bench.routing.scenario import Scenario, Trace
from scipy.optimize import linprog
from scipy.sparse import coo_matrix

GRID = 2.0  # seconds between the instants where the local engine's slots are checked


@dataclass(frozen=True)
class Hindsight:
    cost: float
    violations: float
    seconds: float
    variables: int
    constraints: int


def _on_demand_costs(scenario: Scenario, trace: Trace) -> np.ndarray:
    prompt = trace.prompt.astype(float)
    output = trace.output.astype(float)
    costs = np.full(trace.ttft.shape, np.inf)
    for j, p in enumerate(scenario.providers):
        if p.location == "cloud" and p.daily_tokens is None:
            costs[:, j] = (p.price_in * prompt + p.price_out * output) / 1_000_000
    return costs


def solve(scenario: Scenario, trace: Trace, *, slo: bool = True) -> Hindsight:
    """The optimum with the SLO's violation limit, or (``slo=False``) without any: the
    cost-only problem (quota and local slots still bind)."""
    import time

    started = time.perf_counter()
    n = len(trace.arrival)
    target = scenario.slo_ttft
    violates = (trace.ttft > target) | trace.error
    costs = _on_demand_costs(scenario, trace)
    rows = np.arange(n)
    cols: list[np.ndarray] = []  # per option kind: the request of each variable
    cost: list[np.ndarray] = []
    viol: list[np.ndarray] = []
    kinds: list[str] = []
    cheapest = np.argmin(costs, axis=1)
    cols.append(rows)
    cost.append(costs[rows, cheapest])
    viol.append(violates[rows, cheapest])
    kinds.append("cheapest")
    meeting = np.where(violates, np.inf, costs)
    best_ok = np.argmin(meeting, axis=1)
    has_ok = np.isfinite(meeting[rows, best_ok]) & (best_ok != cheapest)
    cols.append(rows[has_ok])
    cost.append(meeting[rows, best_ok][has_ok])
    viol.append(np.zeros(has_ok.sum(), dtype=bool))
    kinds.append("meeting")
    local = quota = None
    for j, p in enumerate(scenario.providers):
        if p.slots is not None:
            local = j
        if p.daily_tokens is not None:
            quota = j
    for j, kind in ((local, "local"), (quota, "quota")):
        if j is not None:
            cols.append(rows)
            cost.append(np.zeros(n))
            viol.append(violates[:, j])
            kinds.append(kind)
    offsets = np.cumsum([0] + [len(c) for c in cols])
    nvar = int(offsets[-1])
    request_of = np.concatenate(cols)
    c = np.concatenate(cost)
    v = np.concatenate(viol).astype(float)
    # each request exactly once
    a_eq = coo_matrix((np.ones(nvar), (request_of, np.arange(nvar))), shape=(n, nvar))
    ub_rows, ub_cols, ub_vals, b_ub = [], [], [], []
    ub_rows.append(np.zeros(nvar, dtype=int))
    ub_cols.append(np.arange(nvar))
    ub_vals.append(v)
    b_ub.append((1.0 - scenario.slo_percentile) * n if slo else float(n))
    next_row = 1
    if quota is not None:
        k = kinds.index("quota")
        idx = np.arange(offsets[k], offsets[k + 1])
        ub_rows.append(np.full(len(idx), next_row))
        ub_cols.append(idx)
        ub_vals.append((trace.prompt + trace.output).astype(float))
        b_ub.append(float(scenario.providers[quota].daily_tokens or 0))
        next_row += 1
    if local is not None:
        p = scenario.providers[local]
        k = kinds.index("local")
        duration = trace.ttft[:, local] + trace.output / p.tokens_per_second
        # slots checked at instants every GRID seconds: a relaxation (fewer rows), so
        # the optimum stays a lower bound
        first = np.ceil(trace.arrival / GRID).astype(np.int64)
        last = np.floor((trace.arrival + duration) / GRID).astype(np.int64)
        spans = np.maximum(0, last - first + 1)
        offsets_in = np.concatenate([[0], np.cumsum(spans)[:-1]])
        instants = np.arange(int(spans.sum())) + np.repeat(first - offsets_in, spans)
        requests = np.repeat(rows, spans)
        load = np.bincount(instants)
        tight = load > (p.slots or 0)
        row_of = np.full(len(load), -1)
        row_of[tight] = np.arange(int(tight.sum())) + next_row
        keep = tight[instants]
        ub_rows.append(row_of[instants[keep]])
        ub_cols.append(offsets[k] + requests[keep])
        ub_vals.append(np.ones(int(keep.sum())))
        b_ub.extend([float(p.slots or 0)] * int(tight.sum()))
        next_row += int(tight.sum())
    a_ub = coo_matrix(
        (np.concatenate(ub_vals), (np.concatenate(ub_rows), np.concatenate(ub_cols))),
        shape=(next_row, nvar),
    )
    result = linprog(
        c,
        A_ub=a_ub.tocsr(),
        b_ub=np.array(b_ub),
        A_eq=a_eq.tocsr(),
        b_eq=np.ones(n),
        bounds=(0, 1),
        method="highs-ipm",  # interior point: ~4× faster than simplex here
    )
    if result.status != 0:
        raise RuntimeError(f"hindsight LP failed: {result.message}")
    x = result.x
    return Hindsight(
        cost=float(result.fun),
        violations=float(v @ x) / n,
        seconds=time.perf_counter() - started,
        variables=nvar,
        constraints=n + next_row,
    )
