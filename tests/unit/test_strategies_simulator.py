"""The routing simulator (bench/routing) on a small trace: it drives the real routing
code, is deterministic, and its hindsight LP bounds what a policy could have paid."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
from bench.routing.hindsight import solve
from bench.routing.run import main
from bench.routing.scenario import PAPER_DRIFT, make_trace
from bench.routing.simulate import Policy, Simulation
from bench.routing.window_bound import solve_windows

SMALL = dataclasses.replace(PAPER_DRIFT, requests=2000, hours=0.4)


def test_trace_is_reproducible_and_heavy_tailed() -> None:
    a, b = make_trace(SMALL), make_trace(SMALL)
    assert np.array_equal(a.ttft, b.ttft) and np.array_equal(a.arrival, b.arrival)
    names = [p.name for p in SMALL.providers]
    cheap, fast = a.ttft[:, names.index("cheap")], a.ttft[:, names.index("fast")]
    assert np.percentile(cheap, 99) > 4 * np.percentile(fast, 99)
    assert np.all(np.diff(a.arrival) >= 0)


def test_policies_run_on_the_real_strategies() -> None:
    trace = make_trace(SMALL)
    weighted = Simulation(SMALL, trace, Policy("weighted", "weighted")).run()
    hedged = Simulation(SMALL, trace, Policy("slo+h", "slo", hedging=True)).run()
    again = Simulation(SMALL, trace, Policy("slo+h", "slo", hedging=True)).run()
    assert np.array_equal(hedged.ttft, again.ttft) and hedged.cost == again.cost
    assert len(weighted.ttft) == 2000 and weighted.cost > 0 and weighted.hedged == 0
    assert 0 < hedged.hedged <= 0.15 * 2000 + 5  # the budget holds
    assert np.percentile(hedged.ttft, 99) < np.percentile(weighted.ttft, 99)


def test_hindsight_lp_is_feasible_and_cheaper_than_serving_everything_fast() -> None:
    trace = make_trace(SMALL)
    optimum = solve(SMALL, trace)
    assert optimum.violations <= 1 - SMALL.slo_percentile + 1e-6
    fast = next(p for p in SMALL.providers if p.name == "fast")
    everything_fast = float(
        np.sum(fast.price_in * trace.prompt + fast.price_out * trace.output) / 1_000_000
    )
    assert 0 <= optimum.cost < 0.5 * everything_fast  # a feasible, far dearer assignment


def test_run_prints_a_table(capsys: object) -> None:
    main(["--requests", "1000", "--only", "weighted", "slo", "--markdown"])
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "| weighted |" in out and "| slo |" in out and "hindsight LP" in out


def test_window_bound_meets_the_slo_and_sits_between_the_clairvoyant_bound_and_all_fast() -> None:
    trace = make_trace(SMALL)
    bound = solve_windows(SMALL, trace, window=60.0)
    strict = solve_windows(SMALL, trace, window=60.0, per_window=True)
    clairvoyant = solve(SMALL, trace)
    assert bound.violations <= 1 - SMALL.slo_percentile + 1e-6
    assert clairvoyant.cost - 1e-9 <= bound.cost <= strict.cost + 1e-9
    assert abs(sum(bound.shares.values()) - 1.0) < 1e-6


def test_seed_and_estimated_output_options(capsys: object) -> None:
    argv = ["--requests", "500", "--only", "slo", "--no-hindsight"]
    main([*argv, "--seed", "7"])
    main([*argv, "--seed", "7", "--estimated-output"])
    first, second = capsys.readouterr().out.split("scenario ")[1:]  # type: ignore[attr-defined]
    assert "seed 7" in first and "seed 7" in second
    # the same trace and bound (the line also says how long the LP took: not compared)
    bound_first, bound_second = (
        re.sub(r"[\d.]+ s;", "", part.splitlines()[1]) for part in (first, second)
    )
    assert bound_first == bound_second
    other = make_trace(dataclasses.replace(SMALL, seed=7))
    assert not np.array_equal(other.ttft, make_trace(SMALL).ttft)


def test_estimated_output_hides_each_request_s_length_from_the_strategy() -> None:
    trace = make_trace(SMALL)
    policy = Policy("cost", "cost")
    told = Simulation(SMALL, trace, policy, known_output=False)
    assert told.output_hint == 256  # the model's expected_output_tokens
    assert Simulation(SMALL, trace, policy).output_hint is None
    assert len(told.run().ttft) == 2000
