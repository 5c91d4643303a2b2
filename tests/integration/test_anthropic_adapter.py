"""The Anthropic adapter through the gateway, driven by the official ``openai`` SDK with
strict response validation, against the fake Anthropic upstream on a real socket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import GatewayFactory, gateway_config
from tests.fakes.anthropic_upstream import SIGNATURE, THOUGHT, FakeAnthropicUpstream
from tests.fakes.servers import RunningAiohttp, RunningGateway, run_aiohttp

PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAA"
    "AABJRU5ErkJggg=="
)
HI = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def fake_anthropic() -> Iterator[tuple[FakeAnthropicUpstream, RunningAiohttp]]:
    fake = FakeAnthropicUpstream()
    running = run_aiohttp(fake.app)
    yield fake, running
    running.stop()


def anthropic_config(url: str, tmp_path: Path, **provider: Any) -> dict[str, Any]:
    config = gateway_config("http://127.0.0.1:9/v1", tmp_path)
    config["providers"]["claude"] = {
        "kind": "anthropic",
        "base_url": url,
        "api_key_env": "ANTHROPIC_FAKE_KEY",
        "max_tokens": {"cache": 777},
        **provider,
    }
    scripts = ("ok", "thinking", "cache", "image", "max", "status-400", "error-midstream")
    config["models"] = [
        *({"name": f"c-{s}", "routes": [{"provider": "claude", "model": s}]} for s in scripts),
        {
            "name": "c-failover",
            "routes": [
                {"provider": "claude", "model": "overloaded", "weight": 1e9},
                {"provider": "claude", "model": "ok-second", "weight": 1e-9},
            ],
        },
        {
            "name": "c-priced",
            "routes": [
                {"provider": "claude", "model": "cache", "pricing": {"input": 3.0, "output": 15.0}}
            ],
        },
    ]
    return config


@pytest.fixture
def claude(
    make_gateway: GatewayFactory,
    fake_anthropic: tuple[FakeAnthropicUpstream, RunningAiohttp],
    tmp_path: Path,
) -> RunningGateway:
    fake, running = fake_anthropic
    return make_gateway(
        anthropic_config(running.url, tmp_path), env={"ANTHROPIC_FAKE_KEY": fake.api_key}
    )


def sdk(gateway: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=gateway.url + "/v1", api_key="k", max_retries=0, _strict_response_validation=True
    )


def test_plain_answer_and_request_translation(
    claude: RunningGateway, fake_anthropic: tuple[FakeAnthropicUpstream, RunningAiohttp]
) -> None:
    fake = fake_anthropic[0]
    reply = sdk(claude).chat.completions.create(
        model="c-ok",
        messages=HI,
        stop="END",
        temperature=0.5,  # type: ignore[arg-type]
    )
    assert reply.choices[0].message.content == "Hello from the fake Anthropic upstream."
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.prompt_tokens == 12
    received = fake.log.received[-1]
    assert received.headers["x-api-key"] == fake.api_key
    assert received.headers["anthropic-version"] == "2023-06-01"
    sent = received.body
    assert sent["system"] == [{"type": "text", "text": "Be brief."}]
    assert sent["messages"] == [{"role": "user", "content": "hi"}]
    assert sent["max_tokens"] == 4096 and sent["stop_sequences"] == ["END"]
    assert sent["temperature"] == 0.5


def test_streamed_answer_with_usage(claude: RunningGateway) -> None:
    chunks = list(
        sdk(claude).chat.completions.create(
            model="c-ok",
            messages=HI,
            stream=True,
            stream_options={"include_usage": True},  # type: ignore[arg-type]
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the fake Anthropic upstream."
    finishes = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishes == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 7
    row = claude.wait_rows(1)[0]
    assert (row["prompt_tokens"], row["completion_tokens"], row["status"]) == (12, 7, 200)


def test_thinking_comes_back_in_both_fields_with_signature(claude: RunningGateway) -> None:
    reply = sdk(claude).chat.completions.create(
        model="c-thinking", messages=HI, reasoning_effort="low"
    )  # type: ignore[arg-type]
    message = reply.choices[0].message.model_dump()
    assert message["reasoning_content"] == message["reasoning"] == THOUGHT
    assert message["reasoning_details"][0]["signature"] == SIGNATURE
    chunks = list(
        sdk(claude).chat.completions.create(model="c-thinking", messages=HI, stream=True)  # type: ignore[arg-type]
    )
    deltas = [c.choices[0].delta.model_dump() for c in chunks if c.choices]
    assert "".join(d.get("reasoning_content") or "" for d in deltas) == THOUGHT
    details = [r for d in deltas for r in d.get("reasoning_details") or ()]
    assert [r["signature"] for r in details if r.get("signature")] == [SIGNATURE]
    assert "".join(r.get("text") or "" for r in details) == THOUGHT


def test_reasoning_effort_becomes_a_thinking_budget(
    claude: RunningGateway, fake_anthropic: tuple[FakeAnthropicUpstream, RunningAiohttp]
) -> None:
    sdk(claude).chat.completions.create(
        model="c-thinking",
        messages=HI,
        reasoning_effort="medium",
        max_completion_tokens=8000,  # type: ignore[arg-type]
    )
    sent = fake_anthropic[0].log.received[-1].body
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 4096}
    assert sent["max_tokens"] == 8000


def test_cache_tokens_cost_and_per_model_max_tokens(
    claude: RunningGateway, fake_anthropic: tuple[FakeAnthropicUpstream, RunningAiohttp]
) -> None:
    reply = sdk(claude).chat.completions.create(model="c-priced", messages=HI)  # type: ignore[arg-type]
    assert reply.usage is not None
    assert reply.usage.prompt_tokens == 132  # 12 uncached + 100 read + 20 written
    assert reply.usage.prompt_tokens_details is not None
    assert reply.usage.prompt_tokens_details.cached_tokens == 100
    assert fake_anthropic[0].log.received[-1].body["max_tokens"] == 777
    row = claude.wait_rows(1)[0]
    assert row["prompt_tokens"] == 132 and row["completion_tokens"] == 7
    assert row["cost"] == pytest.approx((132 * 3.0 + 7 * 15.0) / 1e6)


def test_images_as_data_url_and_remote_url(claude: RunningGateway) -> None:
    content = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
    ]
    reply = sdk(claude).chat.completions.create(
        model="c-image",
        messages=[{"role": "user", "content": content}],  # type: ignore[list-item]
    )
    assert reply.choices[0].message.content == (
        "images: base64:image/png, url:https://example.com/cat.jpg"
    )


def test_finish_reason_length(claude: RunningGateway) -> None:
    reply = sdk(claude).chat.completions.create(model="c-max", messages=HI)  # type: ignore[arg-type]
    assert reply.choices[0].finish_reason == "length"


def test_upstream_400_passes_through_cleanly(claude: RunningGateway) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(claude).chat.completions.create(model="c-status-400", messages=HI)  # type: ignore[arg-type]
    assert caught.value.status_code == 400
    assert "scripted status 400" in caught.value.message
    assert "Traceback" not in caught.value.message


def test_overloaded_529_fails_over_to_the_next_route(
    claude: RunningGateway, fake_anthropic: tuple[FakeAnthropicUpstream, RunningAiohttp]
) -> None:
    reply = sdk(claude).chat.completions.create(model="c-failover", messages=HI)  # type: ignore[arg-type]
    assert reply.choices[0].message.content == "Hello from the fake Anthropic upstream."
    models = [r.body["model"] for r in fake_anthropic[0].log.received[-2:]]
    assert models == ["overloaded", "ok-second"]
    row = claude.wait_rows(1)[0]
    assert row["route"] == "claude/ok-second"


def test_error_event_midstream_is_an_in_band_error(claude: RunningGateway) -> None:
    stream = sdk(claude).chat.completions.create(
        model="c-error-midstream", messages=HI, stream=True
    )  # type: ignore[arg-type]
    with pytest.raises(openai.APIError, match="Overloaded"):
        for _ in stream:
            pass


def test_unsupported_parameter_is_a_400_naming_it(claude: RunningGateway) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(claude).chat.completions.create(model="c-ok", messages=HI, logprobs=True)  # type: ignore[arg-type]
    assert "'logprobs'" in caught.value.message and "'claude'" in caught.value.message
    audio: Any = [{"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]
    with pytest.raises(openai.BadRequestError) as refused:
        sdk(claude).chat.completions.create(
            model="c-ok", messages=[{"role": "user", "content": audio}]
        )
    assert "'claude'" in refused.value.message and "'input_audio'" in refused.value.message
    with pytest.raises(openai.BadRequestError, match="temperature"):
        sdk(claude).chat.completions.create(model="c-ok", messages=HI, temperature=1.5)  # type: ignore[arg-type]


def test_configured_drop_list_drops_instead(
    make_gateway: GatewayFactory,
    fake_anthropic: tuple[FakeAnthropicUpstream, RunningAiohttp],
    tmp_path: Path,
) -> None:
    fake, running = fake_anthropic
    gateway = make_gateway(
        anthropic_config(running.url, tmp_path, drop_unsupported_params=["seed", "logprobs"]),
        env={"ANTHROPIC_FAKE_KEY": fake.api_key},
    )
    reply = sdk(gateway).chat.completions.create(model="c-ok", messages=HI, seed=3, logprobs=True)  # type: ignore[arg-type]
    assert reply.choices[0].message.content
    assert "seed" not in fake.log.received[-1].body
