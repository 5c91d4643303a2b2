"""Hedging against fake upstreams: a backup starts when the primary is late, the first
leg with content wins, the loser's upstream request is cancelled (its connection
closed), both legs are recorded, and the budget caps how often it happens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.conftest import GatewayFactory
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.fakes.servers import RunningAiohttp, RunningGateway, run_aiohttp
from tests.integration.test_routing import admin, chat, wait_for

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[FakeOpenAIUpstream, FakeOpenAIUpstream, str, str]]:
    slow, fast = FakeOpenAIUpstream(), FakeOpenAIUpstream()
    running: list[RunningAiohttp] = [run_aiohttp(slow.app), run_aiohttp(fast.app)]
    yield slow, fast, running[0].url + "/v1", running[1].url + "/v1"
    for server in running:
        server.stop()


def hedged_config(
    tmp_path: Path, slow_url: str, fast_url: str, primary: str, backup: str, **hedging: Any
) -> dict[str, Any]:
    return {
        "auth": {"required": False},
        "storage": {"url": f"sqlite:///{tmp_path}/gw.db", "flush_interval": 0.05},
        "timeouts": {"connect": 2, "first_byte": 10, "idle": 10, "total": 20},
        "health": {"probes": False},
        "providers": {
            "cheap": {"kind": "openai", "base_url": slow_url},
            "dear": {"kind": "openai", "base_url": fast_url},
        },
        "models": [
            {
                "name": "h",
                "strategy": "cost",  # the cheap route is always the primary
                "hedging": {
                    "enabled": True,
                    "max_delay": 0.2,
                    "min_delay": 0.01,
                    "budget": 1.0,
                    **hedging,
                },
                "routes": [
                    {"provider": "cheap", "model": primary, "pricing": {"input": 1, "output": 1}},
                    {"provider": "dear", "model": backup, "pricing": {"input": 9, "output": 9}},
                ],
            }
        ],
    }


def attempts(gateway: RunningGateway, count: int = 1) -> list[list[tuple[str, str, int]]]:
    rows = gateway.wait_rows(count)
    return [
        [(a["route"], a["outcome"], a["status"]) for a in orjson.loads(row["attempts"])]
        for row in rows
    ]


def test_json_hedge_backup_wins_and_primary_is_cancelled(
    pair: tuple[FakeOpenAIUpstream, FakeOpenAIUpstream, str, str],
    tmp_path: Path,
    make_gateway: GatewayFactory,
) -> None:
    slow, _fast, slow_url, fast_url = pair
    gateway = make_gateway(config=hedged_config(tmp_path, slow_url, fast_url, "hang-j", "ok-j"))
    response = chat(gateway, "h")
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "Hello from the fake upstream."
    assert response.headers["x-hybridinference-route"] == "dear/ok-j"
    wait_for(lambda: any(model == "hang-j" for model, _ in slow.log.cancelled))
    assert attempts(gateway) == [[("dear/ok-j", "ok", 200), ("cheap/hang-j", "hedge_lost", 499)]]
    view = admin(gateway)["h"]
    assert view["hedging"]["hedged"] == 1 and view["hedging"]["backup_wins"] == 1
    routes = {r["name"]: r for r in view["routes"]}
    assert routes["cheap/hang-j"]["in_flight"] == 0 and routes["dear/ok-j"]["in_flight"] == 0
    assert routes["cheap/hang-j"]["circuit"]["consecutive_failures"] == 0  # late, not failed


def test_stream_hedge_first_content_wins_over_a_stalled_preamble(
    pair: tuple[FakeOpenAIUpstream, FakeOpenAIUpstream, str, str],
    tmp_path: Path,
    make_gateway: GatewayFactory,
) -> None:
    slow, _fast, slow_url, fast_url = pair
    # drip-800: the role chunk comes at once, each word 0.8 s later — no content by 0.2 s
    config = hedged_config(tmp_path, slow_url, fast_url, "drip-800-s", "ok-s")
    gateway = make_gateway(config=config)
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        json={"model": "h", "messages": HI, "stream": True},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        assert response.headers["x-hybridinference-route"] == "dear/ok-s"
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    text = "".join(
        (orjson.loads(e[6:])["choices"] or [{}])[0].get("delta", {}).get("content") or ""
        for e in events[:-1]
    )
    assert text == "Hello from the fake upstream."
    wait_for(lambda: any(model == "drip-800-s" for model, _ in slow.log.cancelled))
    # the loser never finished its answer
    assert not any(model == "drip-800-s" for model, _ in slow.log.completed)
    assert attempts(gateway) == [
        [("dear/ok-s", "ok", 200), ("cheap/drip-800-s", "hedge_lost", 499)]
    ]


def test_no_hedge_when_the_primary_answers_in_time(
    pair: tuple[FakeOpenAIUpstream, FakeOpenAIUpstream, str, str],
    tmp_path: Path,
    make_gateway: GatewayFactory,
) -> None:
    _slow, fast, slow_url, fast_url = pair
    # a 5 s hedge delay whatever the statistics say: an answer in time is never hedged
    config = hedged_config(
        tmp_path, slow_url, fast_url, "ok-fast", "ok-never", max_delay=5, min_delay=5
    )
    gateway = make_gateway(config=config)
    for _ in range(3):
        assert chat(gateway, "h").headers["x-hybridinference-route"] == "cheap/ok-fast"
    assert fast.log.bodies("ok-never") == []
    assert admin(gateway)["h"]["hedging"]["hedged"] == 0


def test_budget_caps_the_hedged_share(
    pair: tuple[FakeOpenAIUpstream, FakeOpenAIUpstream, str, str],
    tmp_path: Path,
    make_gateway: GatewayFactory,
) -> None:
    _slow, _fast, slow_url, fast_url = pair
    # the primary always takes 0.3 s, past the 0.05 s hedge delay; only 1 in 4 may hedge
    config = hedged_config(
        tmp_path, slow_url, fast_url, "slow-300-b", "ok-b", max_delay=0.05, budget=0.25
    )
    config["models"][0]["hedging"]["quantile"] = 0.99
    gateway = make_gateway(config=config)
    routes = [chat(gateway, "h").headers["x-hybridinference-route"] for _ in range(12)]
    hedging = admin(gateway)["h"]["hedging"]
    assert hedging["requests"] == 12
    assert 1 <= hedging["hedged"] <= 1 + 12 * 0.25  # the first token, then a quarter
    assert routes.count("dear/ok-b") == hedging["backup_wins"]
    assert routes.count("cheap/slow-300-b") == 12 - hedging["backup_wins"]


def test_a_failed_backup_leaves_the_primary_to_finish(
    pair: tuple[FakeOpenAIUpstream, FakeOpenAIUpstream, str, str],
    tmp_path: Path,
    make_gateway: GatewayFactory,
) -> None:
    _slow, _fast, slow_url, fast_url = pair
    config = hedged_config(tmp_path, slow_url, fast_url, "slow-400-f", "status-503-f")
    gateway = make_gateway(config=config)
    response = chat(gateway, "h")
    assert response.status_code == 200
    assert response.headers["x-hybridinference-route"] == "cheap/slow-400-f"
    assert attempts(gateway) == [
        [("dear/status-503-f", "upstream_server_error", 502), ("cheap/slow-400-f", "ok", 200)]
    ]
