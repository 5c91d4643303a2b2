"""Latency statistics, engine /metrics parsing, quotas, request estimates and the
OpenRouter options: the pure parts strategies rely on."""

from __future__ import annotations

import math

import pytest

from hybridinference.config.routing import RouteLimits
from hybridinference.errors import InvalidRequest
from hybridinference.routing.engine_load import parse_metrics
from hybridinference.routing.options import arrange, parse_options
from hybridinference.routing.quota import QuotaUsage, shadow_price
from hybridinference.routing.request import estimate
from hybridinference.routing.stats import LatencyStats
from hybridinference.routing.strategies import RequestInfo
from tests.unit.test_strategies import feed, make_route


def test_window_quantiles_cdf_and_failures() -> None:
    stats = LatencyStats()
    for i in range(100):
        stats.record(10.0, i / 100)
    assert stats.quantile(10.0, 0.5) == pytest.approx(0.5)
    assert stats.cdf(10.0, 0.245) == pytest.approx(0.25)
    for _ in range(100):
        stats.record_failure(10.0)
    assert stats.cdf(10.0, 10.0) == pytest.approx(0.5)  # failures never arrive
    assert math.isinf(stats.quantile(10.0, 0.9) or 0.0)
    assert stats.error_rate > 0.99


def test_short_window_tracks_drift_and_old_samples_expire() -> None:
    stats = LatencyStats(short_horizon=60.0, long_horizon=600.0)
    for t in range(100):
        stats.record(float(t), 0.2)
    for t in range(100, 160):
        stats.record(float(t), 2.0)  # the route got slow
    assert stats.quantile(160.0, 0.5) == 2.0  # short window (≥ 20 samples) decides
    assert stats.cdf(160.0, 1.0) < 0.5  # blended, mostly the short window
    assert stats.samples(2000.0) == 0  # everything expired
    assert stats.cdf(2000.0, 1.0) is None


def test_ewma_and_throughput() -> None:
    stats = LatencyStats(alpha=0.5)
    stats.record(0.0, 1.0)
    stats.record(0.0, 3.0)
    assert stats.ewma == 2.0
    stats.record_throughput(100.0)
    stats.record_throughput(50.0)
    assert stats.throughput == 75.0


VLLM = """# HELP vllm:num_requests_running Number of requests currently running.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="qwen"} 3.0
vllm:num_requests_running{engine="1",model_name="qwen"} 2.0
vllm:num_requests_waiting{model_name="qwen"} 4.0
vllm:gpu_cache_usage_perc{model_name="qwen"} 0.42
vllm:kv_cache_usage_perc{model_name="qwen"} 0.57
vllm:prompt_tokens_total{model_name="qwen"} 12345.0
"""
SGLANG = """sglang:num_running_reqs{model_name="m"} 7
sglang:num_queue_reqs{model_name="m"} 1
sglang:token_usage{model_name="m"} 0.81
"""


def test_parse_vllm_and_sglang_metrics() -> None:
    load = parse_metrics(VLLM, at=5.0)
    assert load is not None
    assert (load.running, load.waiting, load.kv_usage, load.at) == (5.0, 4.0, 0.57, 5.0)
    load = parse_metrics(SGLANG, at=1.0)
    assert load is not None and (load.running, load.waiting, load.kv_usage) == (7, 1, 0.81)
    assert parse_metrics("process_cpu_seconds_total 3\n", at=0.0) is None
    assert parse_metrics("vllm:num_requests_running NaN\n", at=0.0) is None


def test_quota_rolls_over_daily_and_prices_by_use() -> None:
    quota = QuotaUsage(RouteLimits(daily_tokens=1000, daily_cost=1.0))
    quota.add(day=5, tokens=500, cost=0.1)
    assert quota.used(5) == 0.5
    quota.add(day=5, tokens=0, cost=0.8)
    assert quota.used(5) == pytest.approx(0.9)  # dollars are the tighter limit
    assert not quota.exhausted(5)
    quota.add(day=5, tokens=600, cost=0.0)
    assert quota.exhausted(5)
    assert quota.used(6) == 0.0 and not quota.exhausted(6)
    assert shadow_price(0.0, 0.01, 1.0) == pytest.approx(0.01)
    assert shadow_price(0.5, 0.01, 1.0) == pytest.approx(0.1)
    assert shadow_price(1.0, 0.01, 1.0) == pytest.approx(1.0)


def test_request_estimate() -> None:
    body = {
        "messages": [
            {"role": "user", "content": "x" * 400},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "y" * 40},
                    {"type": "image_url", "image_url": {"url": "data:..."}},
                ],
            },
        ],
        "max_tokens": 50,
        "tools": [{"type": "function", "function": {"name": "f"}}],
    }
    prompt, output, tools, images = estimate(body, 256)
    assert (output, tools, images) == (50, True, True)
    assert prompt == (440 + 800 * 4) // 4 + 1
    assert estimate({"prompt": "abcd" * 10}, 99) == (11, 99, False, False)


def test_options_parse_and_validate() -> None:
    assert parse_options({"model": "m", "messages": []}) is None
    options = parse_options(
        {
            "models": ["a", "b"],
            "provider": {
                "order": ["x"],
                "allow_fallbacks": False,
                "sort": "price",
                "max_price": {"prompt": 1, "completion": 2},
                "data_collection": "deny",
            },
        }
    )
    assert options is not None and options.models == ("a", "b")
    assert options.provider is not None and options.provider.sort == "price"
    with pytest.raises(InvalidRequest) as err:
        parse_options({"provider": {"sort": "vibes"}})
    assert err.value.param == "provider" and "sort" in err.value.message
    with pytest.raises(InvalidRequest):
        parse_options({"models": "a"})


def test_arrange_sort_order_and_fallbacks() -> None:
    info = RequestInfo(prompt_tokens=100, output_tokens=100)
    a, b, c = make_route("a", price=3.0), make_route("b", price=1.0), make_route("c", price=2.0)
    feed(a, [0.1])
    feed(b, [0.9])
    feed(c, [0.5])
    a.stats.record_throughput(10.0)
    b.stats.record_throughput(90.0)
    names = lambda routes: [r.provider for r in routes]  # noqa: E731
    assert names(arrange([a, b, c], "price", None, info)) == ["b", "c", "a"]
    assert names(arrange([b, c, a], "latency", None, info)) == ["a", "c", "b"]
    assert names(arrange([a, b, c], "throughput", None, info)) == ["b", "a", "c"]
    opts = parse_options({"provider": {"order": ["c", "a"]}})
    assert opts is not None
    assert names(arrange([a, b, c], None, opts.provider, info)) == ["c", "a", "b"]
    opts = parse_options({"provider": {"order": ["c"], "allow_fallbacks": False}})
    assert opts is not None
    assert names(arrange([a, b, c], None, opts.provider, info)) == ["c"]


def test_served_cdf_leaves_failures_out() -> None:
    stats = LatencyStats()
    assert stats.served_cdf(10.0, 1.0) is None
    for i in range(100):
        stats.record(10.0, i / 100)
    for _ in range(100):
        stats.record_failure(10.0)
    assert stats.cdf(10.0, 0.245) == pytest.approx(0.125)  # failures count as never
    assert stats.served_cdf(10.0, 0.245) == pytest.approx(0.25)  # ...not here
    assert stats.served_cdf(10.0, math.inf) == 1.0
    only_failures = LatencyStats()
    only_failures.record_failure(10.0)
    assert only_failures.served_cdf(10.0, 1.0) is None
