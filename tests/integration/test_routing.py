"""Routing against several fake upstreams on real sockets: each strategy's choices,
failover within the deadline, the circuit opening and closing, active probes, overflow
from a local engine (with Prometheus /metrics) to the cloud, and the admin view."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import ADMIN_TOKEN, GatewayFactory
from tests.fakes.engine_upstream import FakeEngine
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.fakes.servers import RunningAiohttp, RunningGateway, run_aiohttp

HI = [{"role": "user", "content": "hi"}]


class Fakes:
    def __init__(self) -> None:
        self.fast = FakeOpenAIUpstream()  # cloud, expensive
        self.cheap = FakeOpenAIUpstream()  # cloud, cheap
        self.engine = FakeEngine("vllm")  # local, with /metrics
        self.running: list[RunningAiohttp] = [
            run_aiohttp(self.fast.app),
            run_aiohttp(self.cheap.app),
            run_aiohttp(self.engine.app),
        ]

    def url(self, index: int) -> str:
        return self.running[index].url

    def stop(self) -> None:
        for running in self.running:
            running.stop()


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    started = Fakes()
    yield started
    started.stop()


@pytest.fixture(autouse=True)
def engine_up(fakes: Fakes) -> Iterator[None]:
    yield
    fakes.engine.down = False
    fakes.engine.waiting = fakes.engine.running = fakes.engine.kv_usage = 0


def routing_config(
    fakes: Fakes, tmp_path: Path, models: list[dict[str, Any]], **health: Any
) -> dict[str, Any]:
    return {
        "auth": {"required": False},
        "storage": {"url": f"sqlite:///{tmp_path}/gw.db", "flush_interval": 0.05},
        "timeouts": {"connect": 2, "first_byte": 5, "idle": 5, "total": 20},
        "health": {"probes": False, **health},
        "providers": {
            "fast": {"kind": "openai", "base_url": fakes.url(0) + "/v1"},
            "cheap": {"kind": "openai", "base_url": fakes.url(1) + "/v1"},
            "engine": {
                "kind": "openai",
                "base_url": fakes.url(2) + "/v1",
                "profile": "vllm",
                "location": "local",
            },
        },
        "models": models,
    }


def r(provider: str, model: str, price: float = 0.0, **extra: Any) -> dict[str, Any]:
    return {
        "provider": provider,
        "model": model,
        "pricing": {"input": price, "output": price},
        **extra,
    }


def chat(gateway: RunningGateway, model: str, **body: Any) -> httpx.Response:
    return httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": model, "messages": HI, **body},
        timeout=30,
    )


def admin(gateway: RunningGateway) -> dict[str, Any]:
    response = httpx.get(
        gateway.url + "/admin/routing", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
    )
    assert response.status_code == 200
    return {m["model"]: m for m in response.json()["models"]}


def route_view(gateway: RunningGateway, model: str, name: str) -> dict[str, Any]:
    routes = {route["name"]: route for route in admin(gateway)[model]["routes"]}
    return routes[name]


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def served(gateway: RunningGateway, model: str, n: int, **body: Any) -> list[str]:
    """The route header of ``n`` sequential requests."""
    names = []
    for _ in range(n):
        response = chat(gateway, model, **body)
        assert response.status_code == 200, response.text
        names.append(response.headers["x-hybridinference-route"])
    return names


def test_round_robin_cost_and_weighted_choices(
    fakes: Fakes, tmp_path: Path, make_gateway: GatewayFactory
) -> None:
    models = [
        {
            "name": "rr",
            "strategy": "round_robin",
            "routes": [r("fast", "ok-rr"), r("cheap", "ok-rr")],
        },
        {
            "name": "cost",
            "strategy": "cost",
            "routes": [r("fast", "ok-cost", 10.0), r("cheap", "ok-cost", 1.0)],
        },
        {
            "name": "weighted",
            "routes": [r("fast", "ok-w", weight=0), r("cheap", "ok-w", weight=1)],
        },
    ]
    gateway = make_gateway(config=routing_config(fakes, tmp_path, models))
    assert served(gateway, "rr", 4) == ["fast/ok-rr", "cheap/ok-rr"] * 2
    assert set(served(gateway, "cost", 5)) == {"cheap/ok-cost"}
    assert set(served(gateway, "weighted", 5)) == {"cheap/ok-w"}
    assert len(fakes.fast.log.bodies("ok-cost")) == 0


def test_latency_strategy_learns_the_fast_route(
    fakes: Fakes, tmp_path: Path, make_gateway: GatewayFactory
) -> None:
    models = [
        {
            "name": "lat",
            "strategy": "latency",
            "strategy_options": {"exploration": 0.0, "min_samples": 2},
            "routes": [r("cheap", "slow-150-lat"), r("fast", "ok-lat")],
        }
    ]
    gateway = make_gateway(config=routing_config(fakes, tmp_path, models))
    served(gateway, "lat", 4)  # both routes measured
    assert set(served(gateway, "lat", 4)) == {"fast/ok-lat"}
    assert route_view(gateway, "lat", "cheap/slow-150-lat")["latency"]["samples"] == 2


def test_failover_records_every_attempt_and_client_errors_do_not(
    fakes: Fakes, tmp_path: Path, make_gateway: GatewayFactory
) -> None:
    models = [
        {
            "name": "fo",
            "strategy": "round_robin",
            "routes": [r("fast", "status-503-fo"), r("cheap", "ok-fo")],
        },
        {
            "name": "bad",
            "strategy": "round_robin",
            "routes": [r("fast", "status-400"), r("cheap", "ok-bad")],
        },
    ]
    gateway = make_gateway(config=routing_config(fakes, tmp_path, models))
    assert chat(gateway, "fo").headers["x-hybridinference-route"] == "cheap/ok-fo"
    row = gateway.wait_rows(1)[0]
    attempts = orjson.loads(row["attempts"])
    assert [(a["route"], a["outcome"]) for a in attempts] == [
        ("fast/status-503-fo", "upstream_server_error"),
        ("cheap/ok-fo", "ok"),
    ]
    response = chat(gateway, "bad")  # the client's own mistake: no failover, no blame
    assert response.status_code == 400
    assert len(fakes.cheap.log.bodies("ok-bad")) == 0
    view = route_view(gateway, "bad", "fast/status-400")
    assert view["circuit"]["consecutive_failures"] == 0
    assert view["latency"]["error_rate"] == 0.0


def test_failover_stops_at_the_total_deadline(
    fakes: Fakes, tmp_path: Path, make_gateway: GatewayFactory
) -> None:
    models = [
        {
            "name": "hung",
            "strategy": "round_robin",
            "routes": [r("fast", "hang-d1"), r("cheap", "hang-d2"), r("engine", "ok-d3")],
        }
    ]
    config = routing_config(fakes, tmp_path, models)
    config["timeouts"] = {"connect": 1, "first_byte": 0.3, "idle": 1, "total": 0.5}
    gateway = make_gateway(config=config)
    response = chat(gateway, "hung")
    assert response.status_code == 504
    assert response.json()["error"]["type"] == "timeout_error"
    assert len(fakes.engine.log.bodies("ok-d3")) == 0  # the deadline passed before it
    attempts = orjson.loads(gateway.wait_rows(1)[0]["attempts"])
    assert [a["route"] for a in attempts] == ["fast/hang-d1", "cheap/hang-d2"]


def test_circuit_opens_skips_the_route_then_closes_after_a_good_trial(
    fakes: Fakes, tmp_path: Path, make_gateway: GatewayFactory
) -> None:
    models = [
        {
            "name": "cb",
            "strategy": "local_first",
            "routes": [r("engine", "ok-cb"), r("cheap", "ok-cb")],
        }
    ]
    config = routing_config(fakes, tmp_path, models, failure_threshold=2, cooldown=2.0)
    gateway = make_gateway(config=config)
    fakes.engine.down = True  # flapping engine: 503 to everything
    refused = fakes.engine.refused
    assert served(gateway, "cb", 2) == ["cheap/ok-cb"] * 2  # failed over each time
    assert fakes.engine.refused == refused + 2
    assert route_view(gateway, "cb", "engine/ok-cb")["circuit"]["state"] == "open"
    assert served(gateway, "cb", 3) == ["cheap/ok-cb"] * 3
    assert fakes.engine.refused == refused + 2  # open: not even tried
    fakes.engine.down = False
    wait_for(lambda: route_view(gateway, "cb", "engine/ok-cb")["circuit"]["state"] == "half_open")
    assert served(gateway, "cb", 1) == ["engine/ok-cb"]  # the one trial
    view = route_view(gateway, "cb", "engine/ok-cb")
    assert view["circuit"]["state"] == "closed" and view["circuit"]["opens"] == 1


def test_all_circuits_open_is_a_503_with_retry_after(
    fakes: Fakes, tmp_path: Path, make_gateway: GatewayFactory
) -> None:
    models = [{"name": "dead", "routes": [r("fast", "status-500-dead")]}]
    config = routing_config(fakes, tmp_path, models, failure_threshold=1, cooldown=30)
    gateway = make_gateway(config=config)
    assert chat(gateway, "dead").status_code == 502
    response = chat(gateway, "dead")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "no_route_available"
    assert 25 <= int(response.headers["retry-after"]) <= 30


def test_active_probes_take_a_down_provider_out_and_back(
    fakes: Fakes, tmp_path: Path, make_gateway: GatewayFactory
) -> None:
    models = [
        {
            "name": "pr",
            "strategy": "local_first",
            "routes": [r("engine", "ok-pr"), r("cheap", "ok-pr")],
        }
    ]
    config = routing_config(fakes, tmp_path, models, interval=0.05, jitter=0.5, unhealthy_after=2)
    config["health"]["probes"] = True
    gateway = make_gateway(config=config)
    wait_for(lambda: route_view(gateway, "pr", "engine/ok-pr")["health"]["status"] == "up")
    fakes.engine.down = True
    wait_for(lambda: route_view(gateway, "pr", "engine/ok-pr")["health"]["status"] == "down")
    refused = fakes.engine.refused
    assert served(gateway, "pr", 3) == ["cheap/ok-pr"] * 3
    assert fakes.engine.refused == refused  # skipped, not tried and failed
    assert route_view(gateway, "pr", "engine/ok-pr")["circuit"]["state"] == "closed"
    fakes.engine.down = False
    wait_for(lambda: route_view(gateway, "pr", "engine/ok-pr")["health"]["status"] == "up")
    assert served(gateway, "pr", 1) == ["engine/ok-pr"]
    assert fakes.engine.probes > 4
    # probes cost no tokens: the only completion the engine saw is the real request
    assert [b["model"] for b in fakes.engine.log.bodies("ok-pr")] == ["ok-pr"]


def test_local_first_overflows_to_cloud_on_engine_metrics(
    fakes: Fakes, tmp_path: Path, make_gateway: GatewayFactory
) -> None:
    models = [
        {
            "name": "hybrid",
            "strategy": "local_first",
            "routes": [r("fast", "ok-of", 5.0), r("engine", "ok-of"), r("cheap", "ok-of", 1.0)],
        }
    ]
    config = routing_config(fakes, tmp_path, models, metrics_interval=0.05)
    config["health"]["probes"] = True  # the monitor also scrapes /metrics
    gateway = make_gateway(config=config)
    wait_for(lambda: route_view(gateway, "hybrid", "engine/ok-of")["engine"] is not None)
    assert served(gateway, "hybrid", 3) == ["engine/ok-of"] * 3
    fakes.engine.waiting = 4  # requests queue up on the GPU
    wait_for(
        lambda: (route_view(gateway, "hybrid", "engine/ok-of")["engine"] or {}).get("waiting") == 4
    )
    assert served(gateway, "hybrid", 3) == ["cheap/ok-of"] * 3  # cheapest cloud route
    fakes.engine.waiting = 0
    fakes.engine.kv_usage = 0.97  # or the KV cache fills up
    wait_for(lambda: route_view(gateway, "hybrid", "engine/ok-of")["engine"]["kv_usage"] == 0.97)
    assert served(gateway, "hybrid", 1) == ["cheap/ok-of"]
    fakes.engine.kv_usage = 0.2
    wait_for(lambda: route_view(gateway, "hybrid", "engine/ok-of")["engine"]["kv_usage"] == 0.2)
    assert served(gateway, "hybrid", 1) == ["engine/ok-of"]


def test_concurrency_cap_and_quota_make_a_route_ineligible(
    fakes: Fakes, tmp_path: Path, make_gateway: GatewayFactory
) -> None:
    models = [
        {
            "name": "q",
            "strategy": "cost",
            "routes": [
                r("cheap", "ok-q", 1.0, limits={"daily_tokens": 20}),
                r("fast", "ok-q", 9.0),
            ],
        }
    ]
    gateway = make_gateway(config=routing_config(fakes, tmp_path, models))
    # the fake reports 13 tokens a request: the prepaid 20 last one request
    assert served(gateway, "q", 3) == ["cheap/ok-q", "cheap/ok-q", "fast/ok-q"]
    quota = route_view(gateway, "q", "cheap/ok-q")["quota"]
    assert quota["tokens_today"] == 26 and quota["used"] >= 1.0


def test_admin_routing_requires_the_admin_token(
    fakes: Fakes, tmp_path: Path, make_gateway: GatewayFactory
) -> None:
    models = [{"name": "a", "routes": [r("fast", "ok-admin", 2.0)]}]
    gateway = make_gateway(config=routing_config(fakes, tmp_path, models))
    assert httpx.get(gateway.url + "/admin/routing").status_code == 401
    chat(gateway, "a")
    view = admin(gateway)["a"]
    assert view["strategy"] == "weighted"
    (route,) = view["routes"]
    assert route["kind"] == "cloud" and route["pricing"] == {"input": 2.0, "output": 2.0}
    assert route["latency"]["samples"] == 1 and route["latency"]["p50"] is not None
    assert route["health"]["status"] == "unknown"  # probes are off in this config
