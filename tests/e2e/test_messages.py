"""``POST /v1/messages`` driven by the official ``anthropic`` SDK with strict response
validation: any configured model (OpenAI-compatible and Anthropic routes alike), plain and
streamed, one log row per request, errors in Anthropic's shape."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, GatewayFactory, gateway_config
from tests.fakes.anthropic_upstream import SIGNATURE, THOUGHT, FakeAnthropicUpstream
from tests.fakes.servers import RunningAiohttp, RunningGateway, run_aiohttp

HI: Any = [{"role": "user", "content": "hi"}]
OPENAI_TEXT = "Hello from the fake upstream."
CLAUDE_TEXT = "Hello from the fake Anthropic upstream."


@pytest.fixture(scope="module")
def fake_anthropic() -> Iterator[tuple[FakeAnthropicUpstream, RunningAiohttp]]:
    fake = FakeAnthropicUpstream()
    running = run_aiohttp(fake.app)
    yield fake, running
    running.stop()


def messages_config(upstream_url: str, claude_url: str, tmp_path: Path) -> dict[str, Any]:
    config = gateway_config(upstream_url, tmp_path)
    config["providers"]["claude"] = {
        "kind": "anthropic",
        "base_url": claude_url,
        "api_key_env": "ANTHROPIC_FAKE_KEY",
    }
    claude = ("ok", "thinking", "status-400", "error-midstream")
    config["models"] = [
        *config["models"],
        *({"name": f"claude-{s}", "routes": [{"provider": "claude", "model": s}]} for s in claude),
        {"name": "oa-status-422", "routes": [{"provider": "fake", "model": "status-422"}]},
        {
            "name": "claude-failover",
            "routes": [
                {"provider": "claude", "model": "overloaded", "weight": 1e9},
                {"provider": "fake", "model": "ok", "weight": 1e-9},
            ],
        },
    ]
    return config


@pytest.fixture
def gateway(
    make_gateway: GatewayFactory,
    upstream_url: str,
    fake_anthropic: tuple[FakeAnthropicUpstream, RunningAiohttp],
    tmp_path: Path,
) -> RunningGateway:
    fake, running = fake_anthropic
    config = messages_config(upstream_url, running.url, tmp_path)
    return make_gateway(config, env={"ANTHROPIC_FAKE_KEY": fake.api_key})


def client(gateway: RunningGateway, **options: Any) -> anthropic.Anthropic:
    options.setdefault("api_key", "unused")
    return anthropic.Anthropic(
        base_url=gateway.url, max_retries=0, _strict_response_validation=True, **options
    )


def test_plain_answer_from_an_openai_compatible_route(gateway: RunningGateway) -> None:
    message = client(gateway).messages.create(
        model="ok", max_tokens=64, system="Be brief.", messages=HI
    )
    assert message.content[0].type == "text" and message.content[0].text == OPENAI_TEXT
    assert message.stop_reason == "end_turn" and message.model == "ok"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (7, 6)
    rows = gateway.wait_rows(1)
    assert len(rows) == 1
    row = rows[0]
    assert (row["endpoint"], row["model"], row["status"], row["total_tokens"]) == (
        "messages",
        "ok",
        200,
        13,
    )


def test_streamed_answer_from_an_openai_compatible_route(gateway: RunningGateway) -> None:
    with client(gateway).messages.stream(model="ok", max_tokens=64, messages=HI) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == OPENAI_TEXT
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 6 and final.usage.input_tokens == 7
    row = gateway.wait_rows(1)[0]
    assert row["stream"] and row["completion_tokens"] == 6


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_route_keeps_thinking_and_its_signature(
    gateway: RunningGateway, stream: bool
) -> None:
    sdk = client(gateway)
    if stream:
        with sdk.messages.stream(model="claude-thinking", max_tokens=64, messages=HI) as events:
            message = events.get_final_message()
    else:
        message = sdk.messages.create(model="claude-thinking", max_tokens=64, messages=HI)
    thinking, text = message.content
    assert thinking.type == "thinking" and thinking.thinking == THOUGHT
    assert thinking.signature == SIGNATURE
    assert text.type == "text" and text.text == CLAUDE_TEXT


def test_key_as_x_api_key_or_bearer(
    make_gateway: GatewayFactory,
    upstream_url: str,
    fake_anthropic: tuple[FakeAnthropicUpstream, RunningAiohttp],
    tmp_path: Path,
) -> None:
    fake, running = fake_anthropic
    config = messages_config(upstream_url, running.url, tmp_path)
    config["auth"] = {"required": True}
    gw = make_gateway(config, env={"ANTHROPIC_FAKE_KEY": fake.api_key})
    created = httpx.post(
        gw.url + "/admin/keys",
        json={"name": "agent"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    key = created.json()["key"]
    for options in ({"api_key": key}, {"api_key": None, "auth_token": key}):
        reply = client(gw, **options).messages.create(model="ok", max_tokens=8, messages=HI)
        assert reply.content[0].text == OPENAI_TEXT  # type: ignore[union-attr]
    raw = httpx.post(
        gw.url + "/v1/messages",
        json={"model": "ok", "max_tokens": 8, "messages": HI},
        headers={"x-api-key": key},
    )
    assert raw.status_code == 200
    with pytest.raises(anthropic.AuthenticationError) as caught:
        client(gw, api_key="wrong").messages.create(model="ok", max_tokens=8, messages=HI)
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "Invalid API key."},
        "request_id": caught.value.response.headers["request-id"],
    }


def test_errors_have_anthropics_shape(gateway: RunningGateway) -> None:
    sdk = client(gateway)
    with pytest.raises(anthropic.NotFoundError) as missing:
        sdk.messages.create(model="no-such-model", max_tokens=8, messages=HI)
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    raw = httpx.post(gateway.url + "/v1/messages", json={"model": "ok", "messages": HI})
    assert raw.status_code == 400
    assert raw.json()["type"] == "error"
    assert raw.json()["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in raw.json()["error"]["message"]
    with pytest.raises(anthropic.BadRequestError, match="scripted status 400"):
        sdk.messages.create(model="claude-status-400", max_tokens=8, messages=HI)
    with pytest.raises(anthropic.UnprocessableEntityError):
        sdk.messages.create(model="oa-status-422", max_tokens=8, messages=HI)
    document = {
        "type": "document",
        "source": {"type": "text", "data": "x", "media_type": "text/plain"},
    }
    with pytest.raises(anthropic.BadRequestError, match="'document'"):
        sdk.messages.create(
            model="ok", max_tokens=8, messages=[{"role": "user", "content": [document]}]
        )


def test_beta_query_and_unknown_beta_headers_are_accepted(gateway: RunningGateway) -> None:
    raw = httpx.post(
        gateway.url + "/v1/messages?beta=true",
        json={"model": "ok", "max_tokens": 8, "messages": HI},
        headers={
            "anthropic-beta": "some-future-feature-2030-01-01",
            "anthropic-version": "2023-06-01",
        },
    )
    assert raw.status_code == 200
    assert raw.json()["content"] == [{"type": "text", "text": OPENAI_TEXT}]


def test_overloaded_route_fails_over(gateway: RunningGateway) -> None:
    message = client(gateway).messages.create(model="claude-failover", max_tokens=8, messages=HI)
    assert message.content[0].text == OPENAI_TEXT  # type: ignore[union-attr]
    row = gateway.wait_rows(1)[0]
    assert row["route"] == "fake/ok"


def test_error_event_midstream(gateway: RunningGateway) -> None:
    with (
        pytest.raises(anthropic.APIStatusError, match="Overloaded"),
        client(gateway).messages.stream(
            model="claude-error-midstream", max_tokens=8, messages=HI
        ) as stream,
    ):
        for _ in stream:
            pass
    row = gateway.wait_rows(1)[0]
    assert row["status"] != 200 and row["stream"]


def test_count_tokens(gateway: RunningGateway) -> None:
    counted = client(gateway).messages.count_tokens(
        model="ok", messages=[{"role": "user", "content": "x" * 400}]
    )
    assert 100 <= counted.input_tokens <= 130
    with pytest.raises(anthropic.NotFoundError):
        client(gateway).messages.count_tokens(model="nope", messages=HI)
