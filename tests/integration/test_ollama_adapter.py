"""The Ollama native adapter through the gateway, driven by the official ``openai`` SDK
with strict response validation, against the fake Ollama upstream on a real socket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from hybridinference.adapters.anthropic import AnthropicAdapter
from hybridinference.adapters.gemini import GeminiAdapter
from hybridinference.adapters.h1 import ConnectionPool
from hybridinference.adapters.ollama import OllamaAdapter
from hybridinference.config.schema import (
    AnthropicProviderConfig,
    GeminiProviderConfig,
    OllamaProviderConfig,
)
from hybridinference.errors import UpstreamError
from tests.conftest import GatewayFactory, gateway_config
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.gemini_upstream import FakeGeminiUpstream
from tests.fakes.ollama_upstream import THOUGHT, FakeOllamaUpstream
from tests.fakes.servers import RunningAiohttp, RunningGateway, run_aiohttp

HI: Any = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
TEXT = "Hello from the fake Ollama upstream."
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAA"


@pytest.fixture(scope="module")
def fake_ollama() -> Iterator[tuple[FakeOllamaUpstream, RunningAiohttp]]:
    fake = FakeOllamaUpstream()
    running = run_aiohttp(fake.app)
    yield fake, running
    running.stop()


@pytest.fixture
def local(
    make_gateway: GatewayFactory,
    fake_ollama: tuple[FakeOllamaUpstream, RunningAiohttp],
    tmp_path: Path,
) -> RunningGateway:
    config = gateway_config("http://127.0.0.1:9/v1", tmp_path)
    config["providers"]["llama"] = {
        "kind": "ollama",
        "base_url": fake_ollama[1].url,
        "num_ctx": 8192,
        "keep_alive": "10m",
        "options": {"repeat_penalty": 1.1},
    }
    scripts = ("ok", "thinking", "image", "max", "status-400", "error-midstream", "missing")
    config["models"] = [
        *({"name": f"o-{s}", "routes": [{"provider": "llama", "model": s}]} for s in scripts),
        {"name": "o-embed", "routes": [{"provider": "llama", "model": "nomic"}]},
        {
            "name": "o-failover",
            "routes": [
                {"provider": "llama", "model": "busy", "weight": 1e9},
                {"provider": "llama", "model": "ok-second", "weight": 1e-9},
            ],
        },
    ]
    return make_gateway(config)


def sdk(gateway: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=gateway.url + "/v1", api_key="k", max_retries=0, _strict_response_validation=True
    )


def test_plain_answer_and_request_translation(
    local: RunningGateway, fake_ollama: tuple[FakeOllamaUpstream, RunningAiohttp]
) -> None:
    reply = sdk(local).chat.completions.create(
        model="o-ok", messages=HI, max_tokens=50, temperature=0.2, stop="END", seed=7
    )
    assert reply.choices[0].message.content == TEXT
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and (
        reply.usage.prompt_tokens,
        reply.usage.completion_tokens,
    ) == (9, 6)
    sent = fake_ollama[0].log.received[-1].body
    assert sent["stream"] is False and sent["keep_alive"] == "10m"
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["options"] == {
        "repeat_penalty": 1.1,
        "num_ctx": 8192,
        "temperature": 0.2,
        "seed": 7,
        "num_predict": 50,
        "stop": ["END"],
    }


def test_streamed_answer_usage_and_log_row(local: RunningGateway) -> None:
    chunks = list(
        sdk(local).chat.completions.create(
            model="o-ok", messages=HI, stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 15
    row = local.wait_rows(1)[0]
    assert (row["prompt_tokens"], row["completion_tokens"], row["stream"]) == (9, 6, 1)


def test_thinking_and_length(
    local: RunningGateway, fake_ollama: tuple[FakeOllamaUpstream, RunningAiohttp]
) -> None:
    reply = sdk(local).chat.completions.create(
        model="o-thinking", messages=HI, reasoning_effort="high"
    )
    message = reply.choices[0].message.model_dump()
    assert message["reasoning_content"] == message["reasoning"] == THOUGHT
    assert fake_ollama[0].log.received[-1].body["think"] == "high"
    streamed = list(
        sdk(local).chat.completions.create(model="o-thinking", messages=HI, stream=True)
    )
    assert (
        "".join(
            c.choices[0].delta.model_dump().get("reasoning") or "" for c in streamed if c.choices
        )
        == THOUGHT
    )
    assert (
        sdk(local).chat.completions.create(model="o-max", messages=HI).choices[0].finish_reason
        == "length"
    )


def test_images_inline_and_remote_refused(
    local: RunningGateway, fake_ollama: tuple[FakeOllamaUpstream, RunningAiohttp]
) -> None:
    parts: Any = [
        {"type": "text", "text": "what?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
    ]
    reply = sdk(local).chat.completions.create(
        model="o-image", messages=[{"role": "user", "content": parts}]
    )
    assert reply.choices[0].message.content == "images: 1"
    sent = fake_ollama[0].log.received[-1].body["messages"][0]
    assert sent == {"role": "user", "content": "what?", "images": [PNG]}
    remote: Any = [{"type": "image_url", "image_url": {"url": "https://example.com/x.png"}}]
    with pytest.raises(openai.BadRequestError, match="data: URLs"):
        sdk(local).chat.completions.create(
            model="o-image", messages=[{"role": "user", "content": remote}]
        )


def test_errors(local: RunningGateway) -> None:
    with pytest.raises(openai.BadRequestError, match="scripted status 400"):
        sdk(local).chat.completions.create(model="o-status-400", messages=HI)
    reply = sdk(local).chat.completions.create(model="o-failover", messages=HI)
    assert reply.choices[0].message.content == TEXT
    assert local.wait_rows(2)[-1]["route"] == "llama/ok-second"
    with pytest.raises(openai.APIError, match="encountered"):
        for _ in sdk(local).chat.completions.create(
            model="o-error-midstream", messages=HI, stream=True
        ):
            pass
    with pytest.raises(openai.BadRequestError, match="'tool_choice'"):
        sdk(local).chat.completions.create(
            model="o-ok",
            messages=HI,
            tools=[{"type": "function", "function": {"name": "f"}}],
            tool_choice="required",
        )


def test_embeddings(
    local: RunningGateway, fake_ollama: tuple[FakeOllamaUpstream, RunningAiohttp]
) -> None:
    result = sdk(local).embeddings.create(
        model="o-embed", input=["abc", "hello"], encoding_format="float"
    )
    assert [d.embedding for d in result.data] == [[3.0, 0.5, -1.0], [5.0, 0.5, -1.0]]
    assert result.usage.prompt_tokens == 4
    assert fake_ollama[0].log.received[-1].body == {
        "model": "nomic",
        "input": ["abc", "hello"],
        "keep_alive": "10m",
    }


async def test_probes_of_the_native_adapters(
    fake_ollama: tuple[FakeOllamaUpstream, RunningAiohttp],
) -> None:
    """Each native adapter's health probe costs no tokens and tells up from down."""
    claude, gem = FakeAnthropicUpstream(), FakeGeminiUpstream()
    servers = [run_aiohttp(claude.app), run_aiohttp(gem.app)]
    try:
        good: list[Any] = [
            OllamaAdapter(
                "llama",
                OllamaProviderConfig(kind="ollama", base_url=fake_ollama[1].url),
                ConnectionPool(fake_ollama[1].url, connect_timeout=2),
                None,
            ),
            AnthropicAdapter(
                "claude",
                AnthropicProviderConfig(kind="anthropic", base_url=servers[0].url),
                ConnectionPool(servers[0].url, connect_timeout=2),
                claude.api_key,
            ),
            GeminiAdapter(
                "gem",
                GeminiProviderConfig(kind="gemini", base_url=servers[1].url),
                ConnectionPool(servers[1].url, connect_timeout=2),
                gem.api_key,
            ),
        ]
        bad: list[Any] = [
            AnthropicAdapter(
                "claude",
                AnthropicProviderConfig(kind="anthropic", base_url=servers[0].url),
                ConnectionPool(servers[0].url, connect_timeout=2),
                "wrong-key",
            ),
            OllamaAdapter(
                "down",
                OllamaProviderConfig(kind="ollama", base_url="http://127.0.0.1:9"),
                ConnectionPool("http://127.0.0.1:9", connect_timeout=2),
                None,
            ),
        ]
        for adapter in good:
            await adapter.probe()
        for adapter in bad:
            with pytest.raises(UpstreamError):
                await adapter.probe()
        for adapter in good + bad:
            await adapter.aclose()
    finally:
        for server in servers:
            server.stop()
