"""What a rebuild keeps and what it replaces (``routing.build`` with ``previous``), what
overrides share with the routes they change (``routing.overrides``), and when a retired
generation's adapters are closed — on real objects, no upstream needed."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from hybridinference.config import parse_config
from hybridinference.config.schema import GatewayConfig
from hybridinference.routing.build import Routing, build_routing, retire
from hybridinference.routing.overrides import Override, apply_overrides

ENV = {"KEY": "sk-x"}


def config(**changes: Any) -> GatewayConfig:
    data: dict[str, Any] = {
        "health": {"probes": False},
        "providers": {
            "one": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key_env": "KEY"},
            "two": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key_env": "KEY"},
        },
        "models": [
            {
                "name": "m",
                "strategy": "round_robin",
                "routes": [
                    {"provider": "one", "model": "a", "limits": {"daily_tokens": 100}},
                    {"provider": "two", "model": "b"},
                ],
            },
            {"name": "n", "routes": [{"provider": "one", "model": "c"}]},
            {"name": "k", "strategy": "round_robin", "routes": [{"provider": "one", "model": "d"}]},
        ],
    }
    for key, value in changes.items():
        data[key] = value
    return parse_config(data, ENV, "test")


def routes(routing: Routing, model: str) -> dict[str, Any]:
    routed = routing.manager.resolve(model, None)
    return {r.name: r for r in (*routed.routes.routes, *routed.parked)}


async def test_rebuild_keeps_live_parts_of_unchanged_routes() -> None:
    first = build_routing(config(), ENV, random.Random(1))
    old = routes(first, "m")
    old["one/a"].quota.add(1, 40, 0.0)
    base = config()
    data = base.model_dump(mode="json")
    data["providers"]["two"]["headers"] = {"x-changed": "1"}  # provider two changes
    data["models"][0]["routes"][0]["limits"] = {"daily_tokens": 500}  # route one/a's quota
    data["models"][1]["strategy"] = "cost"  # model n changes
    data["health"]["failure_threshold"] = 9  # circuit settings change
    second = build_routing(parse_config(data, ENV, "test"), ENV, random.Random(2), previous=first)
    new = routes(second, "m")
    assert second.adapters["one"] is first.adapters["one"]
    assert second.adapters["two"] is not first.adapters["two"]
    kept = new["one/a"]
    assert kept.stats is old["one/a"].stats and kept.load is old["one/a"].load
    assert kept.circuit is not old["one/a"].circuit  # new threshold, new breaker
    assert kept.quota is not old["one/a"].quota and kept.quota.tokens == 40  # usage carried
    assert new["two/b"].stats is not old["two/b"].stats  # a changed provider starts afresh
    # a model whose effective config is unchanged keeps its strategy (round-robin position)
    assert second.manager.resolve("k", None).strategy is first.manager.resolve("k", None).strategy
    assert (
        second.manager.resolve("n", None).strategy is not first.manager.resolve("n", None).strategy
    )
    await retire(first, second, drain_timeout=1)
    assert first.adapters["two"]._pool.closed  # type: ignore[attr-defined]
    assert not second.adapters["one"]._pool.closed  # type: ignore[attr-defined]
    await second.aclose()


async def test_retire_waits_for_calls_in_flight() -> None:
    first = build_routing(config(), ENV, random.Random(1))
    data = config().model_dump(mode="json")
    data["providers"].pop("two")
    data["models"][0]["routes"].pop(1)
    second = build_routing(parse_config(data, ENV, "test"), ENV, random.Random(2), previous=first)
    load = routes(first, "m")["two/b"].load
    load.in_flight = 1  # a stream still being relayed
    retiring = asyncio.create_task(retire(first, second, drain_timeout=30))
    await asyncio.sleep(0.3)
    assert not retiring.done() and not first.adapters["two"]._pool.closed  # type: ignore[attr-defined]
    load.in_flight = 0
    await asyncio.wait_for(retiring, 5)
    assert first.adapters["two"]._pool.closed  # type: ignore[attr-defined]
    await second.aclose()


async def test_overrides_share_live_parts_and_report_stale() -> None:
    routing = build_routing(config(), ENV, random.Random(1))
    base = routes(routing, "m")
    overrides = [
        Override("m", "one/a", "weight", 5.0),
        Override("m", "two/b", "enabled", False),
        Override("m", "gone/x", "enabled", False),
        Override("n", "", "visibility", "hidden"),
    ]
    manager, stale = apply_overrides(routing.manager, config(), overrides, random.Random(3))
    assert stale == [(overrides[2], "route 'gone/x' is not a route of 'm'")]
    routed = manager.resolve("m", None)
    (active,) = routed.routes.routes
    assert active.weight == 5.0 and base["one/a"].weight == 1.0
    assert active.quota is base["one/a"].quota and active.stats is base["one/a"].stats
    assert [r.name for r in routed.parked] == ["two/b"]
    assert [m["visibility"] for m in manager.snapshot()] == ["public", "hidden", "public"]
    assert routing.manager.resolve("n", None)  # the base is untouched
    await routing.aclose()
