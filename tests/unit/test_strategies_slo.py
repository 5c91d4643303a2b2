"""slo without hedging: failures apart from latency, one price per expected miss."""

from __future__ import annotations

from collections import Counter

import pytest

from hybridinference.routing.strategies import RequestInfo
from hybridinference.routing.strategies.slo import fail_over
from tests.unit.test_strategies import NOW, build, feed, firsts, make_route


def test_an_ended_outage_no_longer_weighs_on_the_route() -> None:
    strategy = build(
        "slo", slo={"ttft": 1.0, "percentile": 0.95}, strategy_options={"exploration": 0.0}
    )
    cheap, fast = make_route("cheap", price=1.0), make_route("fast", price=10.0)
    feed(cheap, [0.5] * 100)
    for _ in range(30):  # an outage: 30 failures, still in the statistics' windows
        cheap.stats.record_failure(100.0)
        cheap.circuit.failure(100.0)
    assert cheap.stats.cdf(100.0, 1.0) == pytest.approx(100 / 130)  # below the target
    cheap.circuit.begin(200.0)  # the half-open trial after the cooldown...
    cheap.circuit.success(200.0)  # ...succeeded: the circuit is closed again
    feed(fast, [0.2] * 100)
    info = RequestInfo(now=200.0, prompt_tokens=1000, output_tokens=1000)
    assert firsts(strategy, [cheap, fast], 100, info) == Counter({"cheap": 100})


def test_current_failures_count_as_failovers_to_the_best_other_route() -> None:
    cheap, fast = make_route("cheap", price=1.0), make_route("fast", price=2.0)
    for failed in (True, False, False, True, False, False, True, False, False, False):
        if failed:
            cheap.circuit.failure(0.0)
        else:
            cheap.circuit.success(0.0)
    assert cheap.circuit.error_share() == pytest.approx(0.3)  # closed, failing now
    costs = [1.0, 2.0]
    plain = fail_over([0.9, 1.0], [cheap, fast], costs)
    # 70 % answered (F 0.9 among them), 30 % failed over to fast (F 1.0)
    assert plain == pytest.approx([0.93, 1.0])
    assert costs == pytest.approx([1.3, 2.0])  # failed attempts are not billed


def test_misses_go_to_the_large_requests_where_they_save_the_most() -> None:
    strategy = build(
        "slo", slo={"ttft": 1.0, "percentile": 0.99}, strategy_options={"exploration": 0.0}
    )
    cheap, fast = make_route("cheap", price=1.0), make_route("fast", price=10.0)
    feed(cheap, [0.5] * 97 + [3.0] * 3)  # F(1 s) = 0.97: three times the allowed misses
    feed(fast, [0.2] * 100)
    small = RequestInfo(now=100.0, prompt_tokens=100, output_tokens=100)
    large = RequestInfo(now=100.0, prompt_tokens=5000, output_tokens=5000)
    for _ in range(5):  # the miss price settles by dual ascent
        firsts(strategy, [cheap, fast], 1000, small)
        firsts(strategy, [cheap, fast], 1000, large)
    assert firsts(strategy, [cheap, fast], 1000, small) == Counter({"fast": 1000})
    large_cheap = firsts(strategy, [cheap, fast], 1000, large)["cheap"]
    # half the stream is large: 0.5 · π · 0.03 = 0.01 → π = 2/3 of the large ones
    assert large_cheap == pytest.approx(667, abs=15)


def test_exploration_is_paid_from_the_miss_budget() -> None:
    strategy = build(
        "slo", slo={"ttft": 1.0, "percentile": 0.99}, strategy_options={"exploration": 1.0}
    )
    slow, fast = make_route("slow", price=1.0), make_route("fast", price=10.0)
    feed(slow, [5.0] * 100)  # every request sent here misses
    feed(fast, [0.2] * 100)
    start = strategy._miss_price.kappa
    firsts(strategy, [slow, fast], 200, NOW)
    assert strategy._miss_price.kappa > start
