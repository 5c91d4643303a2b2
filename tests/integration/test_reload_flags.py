"""Feature flags wired where their features live, through a running gateway: fallbacks
off stops failover, reasoning_passthrough off strips reasoning (JSON and stream),
content_logging per model, anthropic_endpoint off answers 404 in the Anthropic shape —
and a hot reload that flips a flag changes behaviour without a restart."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import GatewayFactory, gateway_config, route
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.fakes.servers import RunningAiohttp, RunningGateway, run_aiohttp
from tests.integration.test_reload import base, reload, served, write

__all__ = ["served"]
HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def claude_url() -> Iterator[str]:
    running: RunningAiohttp = run_aiohttp(FakeAnthropicUpstream().app)
    yield running.url
    running.stop()


def post(
    gateway: RunningGateway, body: dict[str, Any], path: str = "/v1/chat/completions"
) -> httpx.Response:
    return httpx.post(gateway.url + path, json=body, timeout=20)


def failover_models(flags: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    routes = [
        route("fake", "status-503-first", weight=1e9),
        route("fake", "ok-second", weight=1e-9),
    ]
    return [{"name": "pair", "routes": routes, **({"flags": flags} if flags else {})}]


def test_fallbacks_flag_per_model(
    make_gateway: GatewayFactory, upstream: FakeOpenAIUpstream, upstream_url: str, tmp_path: Path
) -> None:
    config = gateway_config(upstream_url, tmp_path)
    config["models"] = [
        *failover_models(),
        {**failover_models({"fallbacks": False})[0], "name": "single"},
    ]
    gateway = make_gateway(config=config)
    before = len(upstream.log.bodies("ok-second"))
    assert post(gateway, {"model": "pair", "messages": HI}).status_code == 200
    assert len(upstream.log.bodies("ok-second")) == before + 1  # failed over
    assert post(gateway, {"model": "single", "messages": HI}).status_code == 502
    assert len(upstream.log.bodies("ok-second")) == before + 1  # no second attempt
    attempts = json.loads(gateway.wait_rows(1, "model = ?", ("single",))[0]["attempts"])
    assert len(attempts) == 1


def test_reasoning_and_content_flags(
    make_gateway: GatewayFactory, upstream_url: str, claude_url: str, tmp_path: Path
) -> None:
    config = gateway_config(upstream_url, tmp_path, flags={"reasoning_passthrough": False})
    config["providers"]["claude"] = {
        "kind": "anthropic",
        "base_url": claude_url,
        "api_key_env": "CLAUDE_KEY",
    }
    config["models"] = [
        {
            "name": "think",
            "routes": [route("claude", "thinking")],
            "flags": {"content_logging": True},
        },
        {
            "name": "think-open",
            "routes": [route("claude", "thinking")],
            "flags": {"reasoning_passthrough": True},
        },
    ]
    gateway = make_gateway(config=config, env={"CLAUDE_KEY": "sk-ant-fake"})
    hidden = post(gateway, {"model": "think", "messages": HI}).json()["choices"][0]["message"]
    shown = post(gateway, {"model": "think-open", "messages": HI}).json()["choices"][0]["message"]
    assert shown.get("reasoning_content") and "reasoning_content" not in hidden
    assert hidden["content"] == shown["content"]
    with httpx.stream(
        "POST",
        gateway.url + "/v1/chat/completions",
        json={"model": "think", "messages": HI, "stream": True},
        timeout=20,
    ) as r:
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: {")]
    deltas = [c["delta"] for e in events for c in e.get("choices", [])]
    assert deltas and not any("reasoning_content" in d or "reasoning" in d for d in deltas)
    rows = {r["model"]: r["content"] for r in gateway.wait_rows(3)}
    assert rows["think"] is not None and json.loads(rows["think"])["request"]["model"] == "think"
    assert rows["think-open"] is None


def test_anthropic_endpoint_flag_follows_a_reload(
    served: Callable[..., RunningGateway], upstream_url: str, tmp_path: Path
) -> None:
    config = base(upstream_url, tmp_path, flags={"anthropic_endpoint": False})
    config["reload"] = {"watch": False}
    gateway = served(config)
    body = {"model": "ok", "max_tokens": 16, "messages": HI}
    off = post(gateway, body, "/v1/messages")
    assert off.status_code == 404 and off.json()["type"] == "error"
    assert "turned off" in off.json()["error"]["message"]
    config["flags"] = {"anthropic_endpoint": True}
    write(tmp_path / "gateway.yaml", config)
    assert reload(gateway).status_code == 200
    assert post(gateway, body, "/v1/messages").status_code == 200
