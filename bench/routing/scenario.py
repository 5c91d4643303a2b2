"""Scenario definitions: simulated providers and a synthetic request trace.

Every provider's time to first token (TTFT) is a lognormal body plus a Pareto tail
whose weight switches between a calm and a degraded regime (a Markov chain in virtual
time), with the body's median drifting ±30 % over a six-hour cycle — the shape of the
provider tail drift the HybridInference paper measured on OpenRouter (P99 varying 5× over
time and 20× across providers). Outages make a provider fail fast for a while. The
local engine has a fixed number of slots; past them, requests queue (FIFO).

All randomness is drawn up front from one seed, per request *and per route* (common
random numbers), so every strategy faces exactly the same outcomes and the hindsight
optimum knows them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

HOUR = 3600.0


@dataclass(frozen=True)
class Provider:
    name: str
    price_in: float  # US dollars per million tokens
    price_out: float
    median: float  # TTFT body median, seconds
    sigma: float  # lognormal shape of the body
    tail_calm: float  # share of requests in the Pareto tail, calm regime
    tail_degraded: float
    tail_scale: float  # Pareto minimum, seconds
    tail_alpha: float
    tokens_per_second: float
    location: str = "cloud"
    calm_minutes: float = 45.0  # mean sojourn in each regime
    degraded_minutes: float = 20.0
    outage_every_hours: float = 0.0  # 0: never
    outage_minutes: float = 0.0
    error_rate_in_outage: float = 0.9
    daily_tokens: int | None = None  # a prepaid quota (marginal cost 0)
    slots: int | None = None  # a local engine's capacity


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    providers: tuple[Provider, ...]
    requests: int = 100_000
    hours: float = 8.0
    slo_ttft: float = 2.0
    slo_percentile: float = 0.99
    prompt_median: float = 800.0
    output_median: float = 300.0
    seed: int = 20261129


PAPER_DRIFT = Scenario(
    name="paper-drift",
    description=(
        "Llama-70B-class model behind five cloud providers and one local engine; cloud "
        "tails drift between calm and degraded regimes, one provider has outages, one is "
        "a prepaid daily token quota; the local engine saturates at peak load."
    ),
    providers=(
        Provider("local", 0.0, 0.0, 0.25, 0.3, 0.0, 0.0, 1.0, 2.0, 60.0, "local", slots=12),
        Provider("fast", 0.90, 0.90, 0.25, 0.4, 0.002, 0.004, 1.0, 2.5, 250.0),
        Provider("mid", 0.40, 0.40, 0.50, 0.5, 0.01, 0.08, 2.0, 1.5, 90.0),
        Provider("cheap", 0.12, 0.30, 0.60, 0.6, 0.03, 0.25, 3.0, 1.2, 50.0),
        Provider(
            "flaky",
            0.20,
            0.20,
            0.45,
            0.5,
            0.02,
            0.06,
            2.0,
            1.5,
            70.0,
            outage_every_hours=1.5,
            outage_minutes=10.0,
        ),
        Provider(
            "quota", 0.30, 0.30, 0.70, 0.5, 0.05, 0.10, 2.0, 1.5, 60.0, daily_tokens=12_000_000
        ),
    ),
)
SCENARIOS = {PAPER_DRIFT.name: PAPER_DRIFT}


@dataclass
class Trace:
    """Per request i: arrival, tokens; per request i and route j: TTFT and error flag."""

    arrival: NDArray[np.float64]
    prompt: NDArray[np.int64]
    output: NDArray[np.int64]
    ttft: NDArray[np.float64]  # shape (n, routes), excluding local queueing
    error: NDArray[np.bool_]  # shape (n, routes)
    error_after: NDArray[np.float64]  # how long a failing attempt takes, seconds
    degraded: dict[str, NDArray[np.bool_]] = field(default_factory=dict)


def _regimes(
    rng: np.random.Generator, p: Provider, times: NDArray[np.float64]
) -> NDArray[np.bool_]:
    """Whether the provider is degraded at each time (a two-state Markov chain)."""
    degraded = np.zeros(len(times), dtype=bool)
    t, state, end = 0.0, False, float(times[-1]) + 1
    switches: list[tuple[float, bool]] = []
    while t < end:
        mean = (p.degraded_minutes if state else p.calm_minutes) * 60
        length = rng.exponential(mean)
        switches.append((t, state))
        t += length
        state = not state
    starts = np.array([s for s, _ in switches])
    states = np.array([d for _, d in switches])
    degraded[:] = states[np.searchsorted(starts, times, side="right") - 1]
    return degraded


def _outages(
    rng: np.random.Generator, p: Provider, times: NDArray[np.float64]
) -> NDArray[np.bool_]:
    if p.outage_every_hours <= 0:
        return np.zeros(len(times), dtype=bool)
    down = np.zeros(len(times), dtype=bool)
    t = rng.exponential(p.outage_every_hours * HOUR)
    while t < times[-1]:
        down |= (times >= t) & (times < t + p.outage_minutes * 60)
        t += p.outage_minutes * 60 + rng.exponential(p.outage_every_hours * HOUR)
    return down


def make_trace(scenario: Scenario, requests: int | None = None) -> Trace:
    n = requests or scenario.requests
    rng = np.random.default_rng(scenario.seed)
    span = scenario.hours * HOUR
    # diurnal load: rate ∝ 1 + 0.5 sin, sampled by inverting the cumulative rate
    grid = np.linspace(0.0, span, 10_001)
    rate = 1.0 + 0.5 * np.sin(2 * np.pi * grid / span - np.pi / 2)
    cumulative = np.concatenate([[0.0], np.cumsum((rate[1:] + rate[:-1]) / 2 * np.diff(grid))])
    arrival = np.interp(np.sort(rng.uniform(0, cumulative[-1], n)), cumulative, grid)
    prompt = np.maximum(16, rng.lognormal(np.log(scenario.prompt_median), 0.8, n)).astype(np.int64)
    output = np.maximum(8, rng.lognormal(np.log(scenario.output_median), 0.7, n)).astype(np.int64)
    k = len(scenario.providers)
    ttft = np.empty((n, k))
    error = np.zeros((n, k), dtype=bool)
    degraded_by: dict[str, NDArray[np.bool_]] = {}
    for j, p in enumerate(scenario.providers):
        drift = 1.0 + 0.3 * np.sin(2 * np.pi * arrival / (6 * HOUR) + rng.uniform(0, 2 * np.pi))
        body = rng.lognormal(np.log(p.median), p.sigma, n) * drift
        degraded = _regimes(rng, p, arrival)
        degraded_by[p.name] = degraded
        tail_share = np.where(degraded, p.tail_degraded, p.tail_calm)
        in_tail = rng.uniform(size=n) < tail_share
        tail = p.tail_scale * (1.0 + rng.pareto(p.tail_alpha, n))
        ttft[:, j] = np.where(in_tail, np.maximum(body, tail), body)
        down = _outages(rng, p, arrival)
        error[:, j] = down & (rng.uniform(size=n) < p.error_rate_in_outage)
    error_after = rng.uniform(0.1, 0.5, (n, k))
    return Trace(arrival, prompt, output, ttft, error, error_after, degraded_by)
