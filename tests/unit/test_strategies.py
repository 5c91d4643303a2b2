"""Strategies decide from the routes' live state alone: deterministic with a seeded
random.Random and an explicit time, no I/O, no clock."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from hybridinference.config.routing import RouteLimits
from hybridinference.config.schema import ModelConfig, Pricing, Timeouts
from hybridinference.routing.engine_load import EngineLoad
from hybridinference.routing.routes import Route
from hybridinference.routing.strategies import STRATEGIES, RequestInfo
from hybridinference.routing.strategies.slo import lp_mix


class NoAdapter:
    kind = "none"


def make_route(
    name: str,
    *,
    location: str = "cloud",
    price: float = 1.0,
    weight: float = 1.0,
    limits: RouteLimits | None = None,
) -> Route:
    return Route(
        name=f"{name}/m",
        provider=name,
        upstream_model="m",
        adapter=NoAdapter(),  # type: ignore[arg-type]
        weight=weight,
        pricing=Pricing(input=price, output=price),
        location=location,
        timeouts=Timeouts(),
        limits=limits or RouteLimits(),
    )


def model(strategy: str, **extra: Any) -> ModelConfig:
    return ModelConfig.model_validate(
        {"name": "m", "routes": [{"provider": "p", "model": "m"}], "strategy": strategy, **extra}
    )


def build(strategy: str, seed: int = 7, **extra: Any) -> Any:
    return STRATEGIES[strategy](model(strategy, **extra), random.Random(seed))


def feed(route: Route, ttfts: list[float], now: float = 100.0) -> None:
    for value in ttfts:
        route.stats.record(now, value)


NOW = RequestInfo(now=100.0, prompt_tokens=1000, output_tokens=1000)


def firsts(strategy: Any, routes: list[Route], n: int, info: RequestInfo = NOW) -> Counter[str]:
    return Counter(strategy.order(routes, info)[0].provider for _ in range(n))


def test_every_strategy_returns_every_route_once() -> None:
    routes = [make_route(n, location="local" if n == "a" else "cloud") for n in "abcd"]
    for name in STRATEGIES:
        ordered = build(name).order(routes, NOW)
        assert sorted(r.provider for r in ordered) == ["a", "b", "c", "d"], name


def test_round_robin_rotates() -> None:
    strategy = build("round_robin")
    routes = [make_route(n) for n in "abc"]
    seen = [[r.provider for r in strategy.order(routes, NOW)] for _ in range(4)]
    assert seen == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]


def test_weighted_follows_weights() -> None:
    routes = [make_route("a", weight=3.0), make_route("b", weight=1.0)]
    counts = firsts(build("weighted"), routes, 4000)
    assert 0.70 < counts["a"] / 4000 < 0.80


def test_least_busy_prefers_fewest_in_flight_and_engine_numbers() -> None:
    a, b, c = make_route("a"), make_route("b"), make_route("c")
    a.load.in_flight, b.load.in_flight, c.load.in_flight = 5, 1, 3
    assert [r.provider for r in build("least_busy").order([a, b, c], NOW)] == ["b", "c", "a"]
    b.load.engine = EngineLoad(running=8, waiting=2, kv_usage=0.5, at=100.0)  # busier than it looks
    assert build("least_busy").order([a, b, c], NOW)[0].provider == "c"


def test_latency_measures_cold_routes_then_prefers_fastest() -> None:
    strategy = build("latency", strategy_options={"exploration": 0.0, "min_samples": 3})
    fast, slow, cold = make_route("fast"), make_route("slow"), make_route("cold")
    feed(fast, [0.1] * 5)
    feed(slow, [0.9] * 5)
    assert strategy.order([fast, slow, cold], NOW)[0].provider == "cold"
    feed(cold, [0.5] * 5)
    assert [r.provider for r in strategy.order([slow, cold, fast], NOW)] == [
        "fast",
        "cold",
        "slow",
    ]


def test_latency_explores_a_little() -> None:
    strategy = build("latency", strategy_options={"exploration": 0.1, "min_samples": 1})
    fast, slow = make_route("fast"), make_route("slow")
    feed(fast, [0.1])
    feed(slow, [0.9])
    counts = firsts(strategy, [fast, slow], 2000)
    assert 100 < counts["slow"] < 320  # ~10 %, never zero


def test_latency_penalises_errors() -> None:
    strategy = build("latency", strategy_options={"exploration": 0.0, "min_samples": 1})
    flaky, steady = make_route("flaky"), make_route("steady")
    feed(flaky, [0.1] * 3)
    feed(steady, [0.3] * 3)
    for _ in range(20):  # error share EWMA ≈ 0.88: 0.1 s / 0.12 is slower than 0.3 s
        flaky.stats.record_failure(100.0)
    assert strategy.order([flaky, steady], NOW)[0].provider == "steady"


def test_cost_orders_by_expected_cost_and_prices_quota_by_use() -> None:
    cheap, dear = make_route("cheap", price=1.0), make_route("dear", price=10.0)
    quota = make_route("quota", price=5.0, limits=RouteLimits(daily_tokens=10_000))
    strategy = build("cost")
    assert [r.provider for r in strategy.order([dear, cheap, quota], NOW)] == [
        "quota",  # fresh quota: 1 % of the dearest on-demand price
        "cheap",
        "dear",
    ]
    quota.quota.add(0, 9_000, 0.0)  # 90 % used: ψ = 0.01·U·100^0.9 ≈ 0.63·U, dearer than cheap
    assert [r.provider for r in strategy.order([dear, cheap, quota], NOW)] == [
        "cheap",
        "quota",
        "dear",
    ]


def test_local_first_overflows_on_engine_load_and_in_flight() -> None:
    strategy = build("local_first", strategy_options={"local_max_in_flight": 2})
    gpu = make_route("gpu", location="local", price=0.0)
    cheap, dear = make_route("cheap", price=1.0), make_route("dear", price=3.0)
    routes = [dear, gpu, cheap]
    assert [r.provider for r in strategy.order(routes, NOW)] == ["gpu", "cheap", "dear"]
    gpu.load.in_flight = 2  # no metrics: the in-flight cap decides
    assert [r.provider for r in strategy.order(routes, NOW)] == ["cheap", "dear", "gpu"]
    gpu.load.engine = EngineLoad(running=30, waiting=0, kv_usage=0.4, at=99.0)  # metrics win
    assert strategy.order(routes, NOW)[0].provider == "gpu"
    gpu.load.engine = EngineLoad(running=30, waiting=3, kv_usage=0.4, at=99.0)
    assert strategy.order(routes, NOW)[0].provider == "cheap"
    gpu.load.engine = EngineLoad(running=30, waiting=0, kv_usage=0.95, at=99.0)
    assert strategy.order(routes, NOW)[0].provider == "cheap"


def test_lp_mix_single_pair_and_infeasible() -> None:
    assert lp_mix([1.0, 5.0], [0.99, 0.999], 0.95) == [(0, 1.0)]
    mix = lp_mix([1.0, 5.0, 9.0], [0.80, 0.99, 0.999], 0.95)
    assert [i for i, _ in mix] == [0, 1]
    share = dict(mix)[1]
    assert share == pytest.approx((0.95 - 0.80) / (0.99 - 0.80))
    assert lp_mix([1.0, 2.0], [0.5, 0.6], 0.95) == []


def test_slo_mixes_cheap_and_fast_to_meet_the_target() -> None:
    strategy = build(
        "slo", slo={"ttft": 1.0, "percentile": 0.95}, strategy_options={"exploration": 0.0}
    )
    cheap, fast = make_route("cheap", price=1.0), make_route("fast", price=10.0)
    feed(cheap, [0.5] * 80 + [3.0] * 20)  # F(1 s) = 0.8
    feed(fast, [0.2] * 100)  # F(1 s) = 1.0
    # the miss price starts high (all fast, no misses), falls by dual ascent until the
    # cheap route pays, and settles where the stream expects exactly the allowed 5 %:
    # 0.8 π + 1.0 (1 − π) = 0.95 → π_cheap = 0.25
    assert firsts(strategy, [cheap, fast], 200) == Counter({"fast": 200})
    firsts(strategy, [cheap, fast], 10_000)
    counts = firsts(strategy, [cheap, fast], 4000)
    assert counts["cheap"] == pytest.approx(1000, abs=20)


def test_slo_uses_cheap_route_alone_when_it_meets_the_target() -> None:
    strategy = build("slo", slo={"ttft": 1.0}, strategy_options={"exploration": 0.0})
    cheap, fast = make_route("cheap", price=1.0), make_route("fast", price=10.0)
    feed(cheap, [0.5] * 100)
    feed(fast, [0.2] * 100)
    assert firsts(strategy, [fast, cheap], 50) == Counter({"cheap": 50})


def test_slo_best_effort_when_nothing_meets_the_target() -> None:
    strategy = build("slo", slo={"ttft": 0.1}, strategy_options={"exploration": 0.0})
    a, b = make_route("a", price=1.0), make_route("b", price=2.0)
    feed(a, [5.0] * 50)
    feed(b, [0.3] * 50)  # meets 2× the target
    assert strategy.order([a, b], NOW)[0].provider == "b"


def test_slo_with_hedging_leans_on_the_cheap_route() -> None:
    plain = build("slo", slo={"ttft": 2.0, "percentile": 0.95}, strategy_options={"exploration": 0})
    hedged = build(
        "slo",
        slo={"ttft": 2.0, "percentile": 0.95},
        strategy_options={"exploration": 0.0},
        hedging={"enabled": True, "quantile": 0.8, "budget": 0.3},
    )
    cheap, fast = make_route("cheap", price=1.0), make_route("fast", price=10.0)
    feed(cheap, [0.4] * 80 + [6.0] * 20)
    feed(fast, [0.3] * 100)
    plain_cheap = firsts(plain, [cheap, fast], 400)["cheap"]
    hedged_cheap = firsts(hedged, [cheap, fast], 400)["cheap"]
    assert plain_cheap < 150  # needs the fast route for most requests
    assert hedged_cheap == 400  # the hedge rescues the cheap route's tail


def test_strategy_decision_is_fast_enough_to_be_boring() -> None:
    """Not a timing assertion: the decision allocates nothing that grows with use."""
    strategy = build("slo", slo={"ttft": 1.0})
    routes = [make_route(n, price=float(i + 1)) for i, n in enumerate("abcd")]
    for route in routes:
        feed(route, [0.5] * 600)
    for _ in range(2000):
        strategy.order(routes, NOW)
    assert len(strategy._credit) <= len(routes)
    assert all(r.stats.samples(100.0) == 600 for r in routes)  # the long window keeps all


def test_capped_route_prices_congestion_by_occupancy_and_request_length() -> None:
    strategy = build("cost")
    gpu = make_route("gpu", location="local", price=0.0, limits=RouteLimits(max_concurrency=10))
    cloud = make_route("cloud", price=1.0)
    short = RequestInfo(now=100.0, prompt_tokens=1000, output_tokens=100)
    long = RequestInfo(now=100.0, prompt_tokens=1000, output_tokens=2000)
    assert strategy.order([cloud, gpu], long)[0].provider == "gpu"  # idle: free
    gpu.load.in_flight = 8  # 80 % busy: congestion price = cloud cost · 0.512 · length/256
    assert strategy.order([cloud, gpu], short)[0].provider == "gpu"
    assert strategy.order([cloud, gpu], long)[0].provider == "cloud"  # would hog a slot
