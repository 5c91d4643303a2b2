"""Routing through the official OpenAI SDK (strict response validation): failover,
a hedged stream whose held-back preamble still reaches the client intact, and the
OpenRouter-style options as SDK ``extra_body``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openai import OpenAI

from tests.conftest import GatewayFactory
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.fakes.servers import RunningGateway

HI: Any = [{"role": "user", "content": "hi"}]


def sdk(gateway: RunningGateway) -> OpenAI:
    return OpenAI(
        base_url=gateway.url + "/v1",
        api_key="unused",
        max_retries=0,
        timeout=20,
        _strict_response_validation=True,
    )


def config(upstream_url: str, tmp_path: Path) -> dict[str, Any]:
    def r(model: str, price: float) -> dict[str, Any]:
        return {"provider": "fake", "model": model, "pricing": {"input": price, "output": price}}

    return {
        "auth": {"required": False},
        "storage": {"url": f"sqlite:///{tmp_path}/gw.db", "flush_interval": 0.05},
        "timeouts": {"connect": 2, "first_byte": 10, "idle": 10, "total": 20},
        "health": {"probes": False},
        "providers": {"fake": {"kind": "openai", "base_url": upstream_url}},
        "models": [
            {
                "name": "failover",
                "strategy": "cost",
                "routes": [r("status-502-e2e", 1.0), r("ok-e2e-failover", 2.0)],
            },
            {
                "name": "hedged",
                "strategy": "cost",
                "hedging": {"enabled": True, "max_delay": 0.2, "min_delay": 0.01, "budget": 1},
                "routes": [r("drip-700-e2e", 1.0), r("ok-e2e-hedge", 5.0)],
            },
        ],
    }


def test_failover_and_options_through_the_sdk(
    make_gateway: GatewayFactory, upstream: FakeOpenAIUpstream, upstream_url: str, tmp_path: Path
) -> None:
    client = sdk(make_gateway(config=config(upstream_url, tmp_path)))
    reply = client.chat.completions.create(model="failover", messages=HI)
    assert reply.choices[0].message.content == "Hello from the fake upstream."
    reply = client.chat.completions.create(
        model="failover",
        messages=HI,
        extra_body={"provider": {"order": ["fake/ok-e2e-failover"]}, "models": ["hedged"]},
    )
    assert reply.model == "failover"
    forwarded = upstream.log.bodies("ok-e2e-failover")[-1]
    assert "provider" not in forwarded and "models" not in forwarded


def test_hedged_stream_is_a_valid_sdk_stream(
    make_gateway: GatewayFactory, upstream: FakeOpenAIUpstream, upstream_url: str, tmp_path: Path
) -> None:
    client = sdk(make_gateway(config=config(upstream_url, tmp_path)))
    stream = client.chat.completions.create(
        model="hedged", messages=HI, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the fake upstream."
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 13
    assert upstream.log.bodies("ok-e2e-hedge")  # the backup served it
