"""The Gemini adapter through the gateway, driven by the official ``openai`` SDK with
strict response validation, against the fake Gemini upstream on a real socket."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import GatewayFactory, gateway_config
from tests.fakes.gemini_upstream import SIGNATURE, THOUGHT, FakeGeminiUpstream
from tests.fakes.servers import RunningAiohttp, RunningGateway, run_aiohttp

HI: Any = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]
TEXT = "Hello from the fake Gemini upstream."
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAA"


@pytest.fixture(scope="module")
def fake_gemini() -> Iterator[tuple[FakeGeminiUpstream, RunningAiohttp]]:
    fake = FakeGeminiUpstream()
    running = run_aiohttp(fake.app)
    yield fake, running
    running.stop()


def gemini_config(url: str, tmp_path: Path, **provider: Any) -> dict[str, Any]:
    config = gateway_config("http://127.0.0.1:9/v1", tmp_path)
    config["providers"]["gem"] = {
        "kind": "gemini",
        "base_url": url,
        "api_key_env": "GEMINI_FAKE_KEY",
        **provider,
    }
    scripts = ("ok", "thinking", "image", "safety", "max", "status-400", "error-midstream")
    config["models"] = [
        *({"name": f"g-{s}", "routes": [{"provider": "gem", "model": s}]} for s in scripts),
        {"name": "g-embed", "routes": [{"provider": "gem", "model": "embedding-001"}]},
        {
            "name": "g-failover",
            "routes": [
                {"provider": "gem", "model": "ratelimit", "weight": 1e9},
                {"provider": "gem", "model": "ok-second", "weight": 1e-9},
            ],
        },
        {
            "name": "g-priced",
            "routes": [
                {"provider": "gem", "model": "thinking", "pricing": {"input": 1.0, "output": 4.0}}
            ],
        },
    ]
    return config


@pytest.fixture
def gem(
    make_gateway: GatewayFactory,
    fake_gemini: tuple[FakeGeminiUpstream, RunningAiohttp],
    tmp_path: Path,
) -> RunningGateway:
    fake, running = fake_gemini
    return make_gateway(gemini_config(running.url, tmp_path), env={"GEMINI_FAKE_KEY": fake.api_key})


def sdk(gateway: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=gateway.url + "/v1", api_key="k", max_retries=0, _strict_response_validation=True
    )


def test_plain_answer_and_request_translation(
    gem: RunningGateway, fake_gemini: tuple[FakeGeminiUpstream, RunningAiohttp]
) -> None:
    fake = fake_gemini[0]
    reply = sdk(gem).chat.completions.create(
        model="g-ok", messages=HI, max_tokens=100, temperature=1.5, stop=["END"], seed=4
    )
    assert reply.choices[0].message.content == TEXT
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.total_tokens == 17
    received = fake.log.received[-1]
    assert received.path == "/v1beta/models/ok:generateContent"
    assert received.headers["x-goog-api-key"] == fake.api_key
    assert received.body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert received.body["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    assert received.body["generationConfig"] == {
        "temperature": 1.5,
        "seed": 4,
        "maxOutputTokens": 100,
        "stopSequences": ["END"],
    }


def test_streamed_answer_with_usage(
    gem: RunningGateway, fake_gemini: tuple[FakeGeminiUpstream, RunningAiohttp]
) -> None:
    chunks = list(
        sdk(gem).chat.completions.create(
            model="g-ok", messages=HI, stream=True, stream_options={"include_usage": True}
        )
    )
    assert fake_gemini[0].log.received[-1].path.endswith(":streamGenerateContent?alt=sse")
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == TEXT
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert [f for f in finishes if f] == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 17
    row = gem.wait_rows(1)[0]
    assert (row["prompt_tokens"], row["completion_tokens"], row["stream"]) == (11, 6, 1)


def test_thinking_tokens_count_as_completion_and_cost(gem: RunningGateway) -> None:
    reply = sdk(gem).chat.completions.create(model="g-priced", messages=HI, reasoning_effort="low")
    message = reply.choices[0].message.model_dump()
    assert message["reasoning_content"] == message["reasoning"] == THOUGHT
    assert message["content"] == TEXT
    assert reply.usage is not None
    assert reply.usage.completion_tokens == 15  # 6 candidate + 9 thinking
    assert reply.usage.completion_tokens_details is not None
    assert reply.usage.completion_tokens_details.reasoning_tokens == 9
    row = gem.wait_rows(1)[0]
    assert row["completion_tokens"] == 15
    assert row["cost"] == pytest.approx((11 * 1.0 + 15 * 4.0) / 1e6)
    streamed = list(sdk(gem).chat.completions.create(model="g-thinking", messages=HI, stream=True))
    deltas = [c.choices[0].delta.model_dump() for c in streamed if c.choices]
    assert "".join(d.get("reasoning") or "" for d in deltas) == THOUGHT


def test_inline_image_and_remote_url_refused(gem: RunningGateway) -> None:
    image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    reply = sdk(gem).chat.completions.create(
        model="g-image", messages=[{"role": "user", "content": [image]}]
    )
    assert reply.choices[0].message.content == "images: image/png"
    remote = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
    with pytest.raises(openai.BadRequestError, match="data: URLs"):
        sdk(gem).chat.completions.create(
            model="g-image", messages=[{"role": "user", "content": [remote]}]
        )


def test_safety_block_is_a_clear_error(gem: RunningGateway) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(gem).chat.completions.create(model="g-safety", messages=HI)
    assert "blocked the prompt" in caught.value.message and "SAFETY" in caught.value.message
    with pytest.raises(openai.BadRequestError, match="SAFETY"):
        list(sdk(gem).chat.completions.create(model="g-safety", messages=HI, stream=True))


def test_finish_reason_length(gem: RunningGateway) -> None:
    reply = sdk(gem).chat.completions.create(model="g-max", messages=HI)
    assert reply.choices[0].finish_reason == "length"


def test_upstream_400_passes_through(gem: RunningGateway) -> None:
    with pytest.raises(openai.BadRequestError, match="scripted status 400") as caught:
        sdk(gem).chat.completions.create(model="g-status-400", messages=HI)
    assert caught.value.status_code == 400


def test_429_fails_over_to_the_next_route(
    gem: RunningGateway, fake_gemini: tuple[FakeGeminiUpstream, RunningAiohttp]
) -> None:
    reply = sdk(gem).chat.completions.create(model="g-failover", messages=HI)
    assert reply.choices[0].message.content == TEXT
    paths = [r.path for r in fake_gemini[0].log.received[-2:]]
    assert paths == [
        "/v1beta/models/ratelimit:generateContent",
        "/v1beta/models/ok-second:generateContent",
    ]


def test_error_midstream_is_in_band(gem: RunningGateway) -> None:
    stream = sdk(gem).chat.completions.create(model="g-error-midstream", messages=HI, stream=True)
    with pytest.raises(openai.APIError, match="overloaded"):
        for _ in stream:
            pass


def test_unsupported_parameter(gem: RunningGateway) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(gem).chat.completions.create(model="g-ok", messages=HI, logit_bias={"1": 5})
    assert "'logit_bias'" in caught.value.message and "'gem'" in caught.value.message
    assert caught.value.body["param"] == "logit_bias"  # type: ignore[index]


def test_embeddings_float_and_base64(gem: RunningGateway) -> None:
    client = sdk(gem)
    floats = client.embeddings.create(model="g-embed", input=["abc"], encoding_format="float")
    assert floats.data[0].embedding == [3.0, 0.5, -1.0, 0.25]
    raw = httpx.post(
        gem.url + "/v1/embeddings",
        json={
            "model": "g-embed",
            "input": ["hello", "abc"],
            "dimensions": 2,
            "encoding_format": "base64",
        },
    ).json()
    decoded = [struct.unpack("<2f", base64.b64decode(d["embedding"])) for d in raw["data"]]
    assert decoded == [(5.0, 0.5), (3.0, 0.5)]


def test_thought_signature_rides_on_tool_calls(
    make_gateway: GatewayFactory,
    fake_gemini: tuple[FakeGeminiUpstream, RunningAiohttp],
    tmp_path: Path,
) -> None:
    fake, running = fake_gemini
    config = gemini_config(running.url, tmp_path)
    config["models"] = [
        {"name": "agent", "routes": [{"provider": "gem", "model": "thinking-tools"}]}
    ]
    gateway = make_gateway(config, env={"GEMINI_FAKE_KEY": fake.api_key})
    tools: Any = [
        {"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
        for n in ("get_weather", "get_time")
    ]
    first = sdk(gateway).chat.completions.create(model="agent", messages=HI, tools=tools)
    calls = first.choices[0].message.model_dump()["tool_calls"]
    assert calls[0]["extra_content"] == {"google": {"thought_signature": SIGNATURE}}
    assert calls[0]["id"] != calls[1]["id"]
    history = [
        *HI,
        first.choices[0].message.model_dump(exclude_none=True),
        *({"role": "tool", "tool_call_id": c["id"], "content": '{"ok": true}'} for c in calls),
    ]
    final = sdk(gateway).chat.completions.create(model="agent", messages=history, tools=tools)
    assert final.choices[0].finish_reason == "stop"
    sent = fake.log.received[-1].body["contents"]
    assert [c["role"] for c in sent] == ["user", "model", "user"]
    assert sent[2]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"ok": True}}},
        {"functionResponse": {"name": "get_time", "response": {"ok": True}}},
    ]
