"""The state gauges against the real routing: a local engine's scraped load, its probe
health and its circuit breaker show up in /metrics (read at scrape time), and a failover
counts as a fallback with one failed attempt on the engine's route."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import GatewayFactory
from tests.fakes.engine_upstream import FakeEngine
from tests.fakes.servers import RunningAiohttp, run_aiohttp
from tests.integration.test_metrics import P, scrape, total

ENGINE_ROUTE = "engine/ok-m"


@pytest.fixture
def engine() -> Iterator[tuple[FakeEngine, RunningAiohttp]]:
    fake = FakeEngine("vllm")
    running = run_aiohttp(fake.app, name="fake-engine")
    yield fake, running
    running.stop()


def config(engine_url: str, upstream_url: str, tmp_path: Path, probe: float) -> dict[str, Any]:
    return {
        "auth": {"required": False},
        "storage": {"url": f"sqlite:///{tmp_path}/gw.db", "flush_interval": 0.05},
        "timeouts": {"connect": 2, "first_byte": 5, "idle": 5, "total": 20},
        "health": {
            "probes": True,
            "interval": probe,
            "jitter": 0,
            "metrics_interval": 0.1,
            "unhealthy_after": 1,
            "failure_threshold": 2,
            "cooldown": 300,
        },
        "providers": {
            "engine": {
                "kind": "openai",
                "base_url": engine_url + "/v1",
                "profile": "vllm",
                "location": "local",
            },
            "cheap": {"kind": "openai", "base_url": upstream_url},
        },
        "models": [
            {
                "name": "m",
                "strategy": "local_first",
                "routes": [
                    {"provider": "engine", "model": "ok-m"},
                    {"provider": "cheap", "model": "ok-m"},
                ],
            }
        ],
    }


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def gauge(url: str, name: str, **labels: str) -> float | None:
    samples = [v for lab, v in scrape(url).get(P + name, []) if lab == labels]
    return samples[0] if samples else None


def test_engine_load_and_probe_health_in_metrics(
    make_gateway: GatewayFactory,
    engine: tuple[FakeEngine, RunningAiohttp],
    upstream_url: str,
    tmp_path: Path,
) -> None:
    fake, running = engine
    fake.running, fake.waiting, fake.kv_usage = 3, 5, 0.5
    gateway = make_gateway(config=config(running.url, upstream_url, tmp_path, probe=0.2))
    route = {"route": ENGINE_ROUTE}
    wait_for(lambda: gauge(gateway.url, "engine_requests_waiting", **route) == 5)
    assert gauge(gateway.url, "engine_requests_running", **route) == 3
    assert gauge(gateway.url, "engine_kv_cache_usage_ratio", **route) == 0.5
    wait_for(lambda: gauge(gateway.url, "route_up", **route) == 1)
    fake.down = True  # 503 to everything, probes included
    wait_for(lambda: gauge(gateway.url, "route_up", **route) == 0)


def test_circuit_and_fallbacks_in_metrics(
    make_gateway: GatewayFactory,
    engine: tuple[FakeEngine, RunningAiohttp],
    upstream_url: str,
    tmp_path: Path,
) -> None:
    fake, running = engine
    gateway = make_gateway(config=config(running.url, upstream_url, tmp_path, probe=300))
    route = {"route": ENGINE_ROUTE}
    wait_for(lambda: gauge(gateway.url, "route_circuit_open", **route) == 0)
    fake.down = True  # the engine fails; probes are too far apart to notice first
    for _ in range(2):
        response = httpx.post(
            gateway.url + "/v1/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            timeout=20,
        )
        assert response.status_code == 200  # failed over to the cloud route
        assert response.headers["x-hybridinference-route"] == "cheap/ok-m"
    assert gauge(gateway.url, "route_circuit_open", **route) == 1  # read at scrape time
    samples = scrape(gateway.url)
    assert total(samples, f"{P}fallbacks_total", model="m") == 2
    failed = total(samples, f"{P}upstream_attempts_total", route=ENGINE_ROUTE) - total(
        samples, f"{P}upstream_attempts_total", route=ENGINE_ROUTE, outcome="ok"
    )
    assert failed == 2
    assert total(samples, f"{P}requests_total", model="m", route="cheap/ok-m", status="200") == 2


def test_hedges_counted_and_a_lost_hedge_is_no_fallback(
    make_gateway: GatewayFactory, upstream_url: str, tmp_path: Path
) -> None:
    gateway = make_gateway(
        config={
            "auth": {"required": False},
            "storage": {"url": f"sqlite:///{tmp_path}/gw.db", "flush_interval": 0.05},
            "timeouts": {"connect": 2, "first_byte": 10, "idle": 10, "total": 20},
            "health": {"probes": False},
            "providers": {"fake": {"kind": "openai", "base_url": upstream_url}},
            "models": [
                {
                    "name": "h",
                    "strategy": "cost",  # the cheap, hanging route is the primary
                    "hedging": {"enabled": True, "max_delay": 0.2, "min_delay": 0.01, "budget": 1},
                    "routes": [
                        {"provider": "fake", "model": "hang-hm", "pricing": {"input": 1}},
                        {"provider": "fake", "model": "ok-hm", "pricing": {"input": 9}},
                    ],
                }
            ],
        }
    )
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "h", "messages": [{"role": "user", "content": "hi"}]},
        timeout=20,
    )
    assert response.status_code == 200
    gateway.wait_rows(1)
    samples = scrape(gateway.url)
    assert total(samples, f"{P}hedges_total", model="h") == 1
    assert total(samples, f"{P}upstream_attempts_total", outcome="hedge_lost") == 1
    assert total(samples, f"{P}fallbacks_total", model="h") == 0
