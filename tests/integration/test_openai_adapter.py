"""The OpenAI-compatible adapter on its own against the fake upstream on a real socket:
what it sends, the pooled keep-alive connection, each timeout, each failure mapped to a
gateway error, and closing a stream closing the upstream request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hybridinference.adapters.base import Adapter, Endpoint, JSONObject, UpstreamCall
from hybridinference.adapters.registry import BuildContext, build_adapter
from hybridinference.config.schema import OpenAIProviderConfig, Timeouts
from hybridinference.errors import (
    UpstreamError,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamServerError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tests.e2e.helpers import closed_port_url
from tests.fakes.openai_upstream import WORDS, FakeOpenAIUpstream

SECRET = "sk-adapter-test"


def make_adapter(base_url: str, **extra: Any) -> Adapter:
    config = OpenAIProviderConfig.model_validate(
        {"kind": "openai", "base_url": base_url, "api_key_env": "ADAPTER_KEY", **extra}
    )
    ctx = BuildContext(env={"ADAPTER_KEY": SECRET}, timeouts=Timeouts(connect=1))
    return build_adapter("fake", config, ctx)


@pytest.fixture
async def adapter(upstream_url: str) -> AsyncIterator[Adapter]:
    built = make_adapter(upstream_url, headers={"X-Custom": "yes"})
    yield built
    await built.aclose()


def call(
    model: str,
    endpoint: Endpoint = Endpoint.CHAT,
    first_byte: float = 5,
    idle: float = 5,
    total: float = 10,
    **body: Any,
) -> UpstreamCall:
    payload: dict[str, Any] = {"model": model, **body}
    if endpoint is Endpoint.CHAT:
        payload.setdefault("messages", [{"role": "user", "content": "hi"}])
    elif endpoint is Endpoint.COMPLETIONS:
        payload.setdefault("prompt", "hi")
    else:
        payload.setdefault("input", "hi")
    return UpstreamCall(
        endpoint=endpoint,
        body=payload,
        request_id="req-1",
        first_byte_timeout=first_byte,
        idle_timeout=idle,
        deadline=asyncio.get_running_loop().time() + total,
    )


async def collect(adapter: Adapter, upstream_call: UpstreamCall) -> list[JSONObject]:
    return [chunk async for chunk in adapter.stream(upstream_call)]


async def test_complete_sends_the_body_and_credentials(
    adapter: Adapter, upstream: FakeOpenAIUpstream
) -> None:
    result = await adapter.complete(call("ok", top_k=3, chat_template_kwargs={"a": [1]}))
    assert result["choices"][0]["message"]["content"] == "".join(WORDS)
    received = upstream.log.received[-1]
    assert received.path == "/v1/chat/completions"
    assert received.body["top_k"] == 3 and received.body["chat_template_kwargs"] == {"a": [1]}
    assert received.headers["Authorization"] == f"Bearer {SECRET}"
    assert received.headers["X-Custom"] == "yes"
    assert "stream_options" not in received.body


@pytest.mark.parametrize(
    ("endpoint", "path", "field"),
    [
        (Endpoint.COMPLETIONS, "/v1/completions", "choices"),
        (Endpoint.EMBEDDINGS, "/v1/embeddings", "data"),
    ],
)
async def test_other_endpoints(
    adapter: Adapter, upstream: FakeOpenAIUpstream, endpoint: Endpoint, path: str, field: str
) -> None:
    result = await adapter.complete(call("ok", endpoint))
    assert result[field]
    assert upstream.log.received[-1].path == path


async def test_connections_are_kept_alive_and_reused(
    adapter: Adapter, upstream: FakeOpenAIUpstream
) -> None:
    for _ in range(3):
        await adapter.complete(call("ok-keepalive"))
    await collect(adapter, call("ok-keepalive", stream=True))
    peers = {r.peer for r in upstream.log.received if r.body.get("model") == "ok-keepalive"}
    assert len(peers) == 1  # one pooled connection served all four requests


async def test_stream_asks_for_usage_and_keeps_other_stream_options(
    adapter: Adapter, upstream: FakeOpenAIUpstream
) -> None:
    options = {"include_usage": False, "continuous_usage_stats": True}
    chunks = await collect(adapter, call("ok", stream_options=options))
    body = upstream.log.received[-1].body
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True, "continuous_usage_stats": True}
    assert chunks[-1]["usage"]["total_tokens"] == 13
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "".join(WORDS)


@pytest.mark.parametrize(
    ("model", "error", "stream"),
    [
        ("status-500", UpstreamServerError, False),
        ("status-500", UpstreamServerError, True),
        ("ratelimit", UpstreamRateLimited, False),
        ("ratelimit", UpstreamRateLimited, True),
        ("garbage", UpstreamProtocolError, False),
        ("garbage", UpstreamProtocolError, True),
        ("error-midstream", UpstreamServerError, True),
        ("truncated", UpstreamProtocolError, True),
        ("disconnect-midstream", UpstreamError, True),
    ],
)
async def test_failures_become_gateway_errors(
    adapter: Adapter, model: str, error: type[UpstreamError], stream: bool
) -> None:
    with pytest.raises(error) as caught:
        if stream:
            await collect(adapter, call(model))
        else:
            await adapter.complete(call(model))
    assert SECRET not in caught.value.message
    assert "127.0.0.1" not in caught.value.message
    if model == "ratelimit":
        assert caught.value.retry_after == 7


async def test_connection_refused(upstream_url: str) -> None:
    refused = make_adapter(closed_port_url())
    try:
        with pytest.raises(UpstreamUnavailable, match="connection refused"):
            await refused.complete(call("ok"))
        with pytest.raises(UpstreamUnavailable):
            await collect(refused, call("ok"))
        with pytest.raises(UpstreamUnavailable):
            await refused.probe()
    finally:
        await refused.aclose()


@pytest.mark.parametrize("stream", [False, True])
async def test_first_byte_timeout(
    adapter: Adapter, upstream: FakeOpenAIUpstream, stream: bool
) -> None:
    model = f"hang-adapter-{stream}"
    with pytest.raises(UpstreamTimeout):
        if stream:
            await collect(adapter, call(model, first_byte=0.2))
        else:
            await adapter.complete(call(model, first_byte=0.2))
    await _until(lambda: any(m == model for m, _ in upstream.log.cancelled))


async def test_idle_timeout_between_chunks(adapter: Adapter, upstream: FakeOpenAIUpstream) -> None:
    model = "hang-midstream-adapter-idle"
    received: list[JSONObject] = []
    with pytest.raises(UpstreamTimeout):
        async for chunk in adapter.stream(call(model, idle=0.5)):
            received.append(chunk)
    assert len(received) == 3  # role, "Hello", " from": then the gap was too long
    await _until(lambda: any(m == model for m, _ in upstream.log.cancelled))


async def test_total_deadline_bounds_a_slow_answer(adapter: Adapter) -> None:
    with pytest.raises(UpstreamTimeout):
        await adapter.complete(call("slow-800", first_byte=10, total=0.2))


async def test_closing_a_stream_closes_the_upstream_request(
    adapter: Adapter, upstream: FakeOpenAIUpstream
) -> None:
    model = "hang-midstream-adapter-close"
    stream = adapter.stream(call(model))
    assert isinstance(stream, AsyncIterator)
    first = await anext(stream)
    assert first["choices"][0]["delta"]["role"] == "assistant"
    await stream.aclose()  # type: ignore[attr-defined]
    await _until(lambda: any(m == model for m, _ in upstream.log.cancelled))


async def test_probe(adapter: Adapter) -> None:
    await adapter.probe()


async def _until(condition: Any, limit: float = 5) -> None:
    """Wait for an event the fake records; the limit turns a hang into a failure."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "the upstream never saw the cancellation"
        await asyncio.sleep(0.01)


async def test_a_large_event_passes_and_an_absurd_one_is_a_protocol_error(
    adapter: Adapter,
) -> None:
    chunks = await collect(adapter, call("big-2048"))
    assert len(chunks[1]["choices"][0]["delta"]["content"]) > 2048 * 1024
    with pytest.raises(UpstreamProtocolError):
        await collect(adapter, call("big-20480"))
