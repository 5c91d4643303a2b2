"""Routing knowledge shared between replicas through real Redis: each publishes what it
saw, reads what the others saw, and a dead replica's opinion fades out."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from hybridinference.limits.redis_store import connect
from hybridinference.limits.shared import RouteKnowledge, SharedKnowledge
from tests.conftest import GatewayFactory
from tests.e2e.helpers import HI, config_with
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.fakes.servers import RunningGateway
from tests.integration.test_redis_limits import REDIS_URL, require_redis


class Replica:
    """A knowledge source that records what its peers told it."""

    def __init__(self, ours: dict[str, RouteKnowledge]) -> None:
        self.ours = ours
        self.heard: dict[str, list[RouteKnowledge]] = {}

    def export(self) -> Mapping[str, RouteKnowledge]:
        return self.ours

    def absorb(self, route: str, peers: Sequence[RouteKnowledge]) -> None:
        self.heard[route] = list(peers)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_replicas_learn_each_others_circuits_and_latency() -> None:
    require_redis()
    prefix = f"test-{secrets.token_hex(6)}"
    clock = Clock()
    broken = RouteKnowledge(circuit_open_for=12.0, ewma=None, samples=3, error_rate=0.9)
    healthy = RouteKnowledge(circuit_open_for=0.0, ewma=0.2, samples=50, error_rate=0.0)
    a, b = Replica({"p/m": broken}), Replica({"p/m": healthy})
    syncs = [
        SharedKnowledge(
            connect(REDIS_URL, timeout=2), replica, prefix=prefix, interval=1, wall_clock=clock
        )
        for replica in (a, b)
    ]
    try:
        for sync in syncs:
            await sync.sync_once()
        await syncs[0].sync_once()
        assert [k.circuit_open_for for k in a.heard["p/m"]] == [0.0]
        assert [k.ewma for k in a.heard["p/m"]] == [0.2]
        assert [k.circuit_open_for for k in b.heard["p/m"]] == [12.0]  # b heard a
        clock.now += 10  # b stops publishing (it died): after 3 intervals it is ignored
        await syncs[0].sync_once()
        assert a.heard["p/m"] == []
        assert syncs[0].stats.rounds == 3 and syncs[0].stats.failures == 0
    finally:
        for sync in syncs:
            await sync.aclose()
        client = Redis.from_url(REDIS_URL)
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()


async def test_a_failed_round_is_counted_and_the_loop_goes_on() -> None:
    replica = Replica({"p/m": RouteKnowledge(0.0, 0.1, 1, 0.0)})
    sync = SharedKnowledge(
        connect("redis://127.0.0.1:1/0", timeout=0.2),
        replica,
        prefix="unused",
        interval=0.05,
        wall_clock=Clock(),
    )
    sync.start()
    await asyncio.sleep(0.3)
    await sync.aclose()
    assert sync.stats.failures >= 2
    assert sync.stats.rounds == 0
    assert replica.heard == {}


def test_a_circuit_opened_on_one_gateway_opens_on_the_other(
    make_gateway: GatewayFactory,
    upstream_url: str,
    upstream: FakeOpenAIUpstream,
    tmp_path: Path,
) -> None:
    """Gateway A sees a route fail until its circuit opens; gateway B, sharing Redis, stops
    sending there too without ever having seen a failure itself."""
    require_redis()
    prefix = f"test-{secrets.token_hex(6)}"
    model = f"status-500-{secrets.token_hex(3)}"
    gateways = []
    for name in ("a", "b"):
        config = config_with(
            upstream_url,
            tmp_path / name,
            model,
            health={"probes": False, "failure_threshold": 2, "cooldown": 30},
            limits={
                "backend": "redis",
                "redis": {"url": REDIS_URL, "prefix": prefix},
                "shared_routing_interval": 0.05,
            },
        )
        gateways.append(make_gateway(config))
    a, b = gateways
    try:
        for _ in range(2):
            response = httpx.post(
                a.url + "/v1/chat/completions", json={"model": model, "messages": HI}
            )
            assert response.status_code == 500 or response.status_code >= 502
        sent = len(upstream.log.bodies(model))
        assert sent == 2
        route = f"fake/{model}"
        deadline = time.monotonic() + 10
        while not b_circuit_open(b, route) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert b_circuit_open(b, route)
        refused = httpx.post(b.url + "/v1/chat/completions", json={"model": model, "messages": HI})
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "no_route_available"
        assert len(upstream.log.bodies(model)) == sent  # B never called the dead route
    finally:
        client = SyncRedis.from_url(REDIS_URL, decode_responses=True)
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()


def b_circuit_open(gateway: RunningGateway, route_name: str) -> bool:
    for routed in gateway.state.routing.manager.models:
        for route in routed.routes.routes:
            if route.name == route_name:
                return bool(route.circuit.retry_in(time.monotonic()) > 0)
    raise AssertionError(f"no route {route_name}")


def test_a_provider_429_seen_by_one_gateway_parks_the_route_on_the_other(
    make_gateway: GatewayFactory,
    upstream_url: str,
    upstream: FakeOpenAIUpstream,
    tmp_path: Path,
) -> None:
    require_redis()
    prefix = f"test-{secrets.token_hex(6)}"
    limited = f"ratelimit-{secrets.token_hex(3)}"
    gateways = []
    for name in ("a", "b"):
        config = config_with(
            upstream_url,
            tmp_path / name,
            health={"probes": False},
            limits={
                "backend": "redis",
                "redis": {"url": REDIS_URL, "prefix": prefix},
                "shared_routing_interval": 0.05,
            },
        )
        config["models"] = [
            {
                "name": "pair",
                "routes": [
                    {"provider": "fake", "model": limited, "weight": 1.0},
                    {"provider": "demo", "model": "demo-1", "weight": 0.0},
                ],
            }
        ]
        gateways.append(make_gateway(config))
    a, b = gateways
    try:
        first = httpx.post(a.url + "/v1/chat/completions", json={"model": "pair", "messages": HI})
        assert first.headers["x-hybridinference-route"] == "demo/demo-1"  # 429, failed over
        assert len(upstream.log.bodies(limited)) == 1
        accounts = b.state.routing.manager.accounts
        assert accounts is not None
        route = f"fake/{limited}"
        deadline = time.monotonic() + 10
        while accounts.paused_for(route) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert accounts.paused_for(route) > 3  # the fake's Retry-After is 7 s
        second = httpx.post(b.url + "/v1/chat/completions", json={"model": "pair", "messages": HI})
        assert second.headers["x-hybridinference-route"] == "demo/demo-1"
        assert len(upstream.log.bodies(limited)) == 1  # B never asked the throttled account
    finally:
        client = SyncRedis.from_url(REDIS_URL, decode_responses=True)
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
        client.close()
