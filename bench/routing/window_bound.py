"""The distribution-level hindsight optimum: the bound of the HybridInference paper.

A routing policy that does not see individual requests' futures can at best choose,
per time window, which *share* of the window's requests each route gets. With
hindsight knowledge of every route's realised TTFT distribution in each window (the
share of the window's requests it would have served within the target), its price,
the prepaid quota over the whole trace and the local engine's capacity, the cheapest
such choice is the LP

    minimise   Σ_w Σ_j x_wj C_wj
    subject to Σ_j x_wj = 1                                   (each window w)
               Σ_w Σ_j x_wj V_wj ≤ (1 − percentile) · N       (the trace's SLO)
               Σ_w x_wq T_w ≤ daily quota                      (the quota route q)
               Σ_j∈local x_wj S_wj ≤ slots · window length     (each window w)
               0 ≤ x ≤ 1

where, if all of window w went to route j, C_wj is what it would cost, V_wj how many
requests would violate the target (late or failed) and S_wj the slot-seconds the local
engine would be busy (fluid: no queueing, so a lower bound); T_w is the window's
tokens. With ``per_window=True`` the SLO holds in every window instead of over the
trace (a dearer bound). Solved with scipy's HiGHS; a few hundred variables.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from bench.routing.scenario import Scenario, Trace
from scipy.optimize import linprog

WINDOW = 900.0  # seconds: 15 virtual minutes, the strategy's short statistics window


@dataclass(frozen=True)
class WindowBound:
    cost: float
    violations: float
    seconds: float
    windows: int
    shares: dict[str, float]  # of all requests, per route


def _per_window(values: np.ndarray, window: np.ndarray, count: int) -> np.ndarray:
    """Column sums of ``values`` (n × routes) per window: (count × routes)."""
    return np.stack(
        [
            np.bincount(window, weights=values[:, j], minlength=count)
            for j in range(values.shape[1])
        ],
        axis=1,
    )


def solve_windows(
    scenario: Scenario, trace: Trace, *, window: float = WINDOW, per_window: bool = False
) -> WindowBound:
    started = time.perf_counter()
    n, k = trace.ttft.shape
    w_of = (trace.arrival // window).astype(np.int64)
    w = int(w_of.max()) + 1
    prompt, output = trace.prompt.astype(float), trace.output.astype(float)
    price = np.zeros((n, k))
    service = np.zeros((n, k))
    for j, p in enumerate(scenario.providers):
        if p.daily_tokens is None:
            price[:, j] = (p.price_in * prompt + p.price_out * output) / 1_000_000
        if p.slots is not None:
            service[:, j] = trace.ttft[:, j] + output / p.tokens_per_second
    late = ((trace.ttft > scenario.slo_ttft) | trace.error).astype(float)
    cost = _per_window(price, w_of, w)  # (w, k)
    viol = _per_window(late, w_of, w)
    busy = _per_window(service, w_of, w)
    tokens = np.bincount(w_of, weights=prompt + output, minlength=w)
    sizes = np.bincount(w_of, minlength=w).astype(float)
    nvar = w * k  # x[w, j] at w * k + j
    a_eq = np.zeros((w, nvar))
    for i in range(w):
        a_eq[i, i * k : (i + 1) * k] = 1.0
    rows, b_ub = [], []
    alpha = 1.0 - scenario.slo_percentile
    if per_window:
        for i in range(w):
            row = np.zeros(nvar)
            row[i * k : (i + 1) * k] = viol[i]
            rows.append(row)
            b_ub.append(alpha * sizes[i])
    else:
        rows.append(viol.reshape(-1))
        b_ub.append(alpha * n)
    for j, p in enumerate(scenario.providers):
        if p.daily_tokens is not None:
            row = np.zeros(nvar)
            row[j::k] = tokens
            rows.append(row)
            b_ub.append(float(p.daily_tokens))
        if p.slots is not None:
            for i in range(w):
                row = np.zeros(nvar)
                row[i * k + j] = busy[i, j]
                rows.append(row)
                b_ub.append(p.slots * window)
    # windows with no requests: any share works, cost and violations are zero there
    result = linprog(
        cost.reshape(-1),
        A_ub=np.array(rows),
        b_ub=np.array(b_ub),
        A_eq=a_eq,
        b_eq=np.ones(w),
        bounds=(0, 1),
        method="highs",
    )
    if result.status != 0:
        raise RuntimeError(f"window LP failed: {result.message}")
    x = result.x.reshape(w, k)
    names = [p.name for p in scenario.providers]
    served = (x * sizes[:, None]).sum(axis=0) / n
    return WindowBound(
        cost=float(result.fun),
        violations=float((x * viol).sum()) / n,
        seconds=time.perf_counter() - started,
        windows=w,
        shares=dict(zip(names, served.tolist(), strict=True)),
    )
