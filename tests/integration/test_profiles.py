"""Provider profiles on the OpenAI-compatible adapter, through the gateway with the
official ``openai`` SDK (strict validation), against a fake upstream with each quirk."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from tests.conftest import GatewayFactory, gateway_config
from tests.fakes.compat_upstream import TEXT, THOUGHT, FakeCompatUpstream
from tests.fakes.servers import RunningAiohttp, RunningGateway, run_aiohttp

DEV: Any = [{"role": "developer", "content": "Be brief."}, {"role": "user", "content": "hi"}]
PROFILES = ("generic", "openai", "vllm", "deepseek", "zhipu", "openrouter")


@pytest.fixture(scope="module")
def fake_compat() -> Iterator[tuple[FakeCompatUpstream, RunningAiohttp]]:
    fake = FakeCompatUpstream()
    running = run_aiohttp(fake.app)
    yield fake, running
    running.stop()


@pytest.fixture
def gateway(
    make_gateway: GatewayFactory,
    fake_compat: tuple[FakeCompatUpstream, RunningAiohttp],
    tmp_path: Path,
) -> RunningGateway:
    config = gateway_config("http://127.0.0.1:9/v1", tmp_path)
    url = fake_compat[1].url + "/v1"
    for profile in PROFILES:
        config["providers"][profile] = {"kind": "openai", "base_url": url, "profile": profile}
    config["providers"]["lenient"] = {
        "kind": "openai",
        "base_url": url,
        "profile": "zhipu",
        "drop_unsupported_params": ["tool_choice"],
    }
    routes = {
        "gen-template": ("generic", "template-x"),
        "oa-o3": ("openai", "o3-mini"),
        "vllm-r": ("vllm", "vllm-r1"),
        "ds": ("deepseek", "deepseek-reasoner"),
        "glm": ("zhipu", "glm-4"),
        "glm-lenient": ("lenient", "glm-4"),
        "or-r": ("openrouter", "router-r1"),
    }
    config["models"] = [
        {"name": name, "routes": [{"provider": p, "model": m, "pricing": {"input": 1.0}}]}
        for name, (p, m) in routes.items()
    ]
    return make_gateway(config)


def sdk(gateway: RunningGateway) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=gateway.url + "/v1", api_key="k", max_retries=0, _strict_response_validation=True
    )


def test_generic_forwards_untouched(
    gateway: RunningGateway, fake_compat: tuple[FakeCompatUpstream, RunningAiohttp]
) -> None:
    with pytest.raises(openai.BadRequestError, match="developer"):
        sdk(gateway).chat.completions.create(model="gen-template", messages=DEV, max_tokens=5)
    assert fake_compat[0].log.bodies[-1]["messages"][0]["role"] == "developer"


def test_openai_gets_max_completion_tokens(
    gateway: RunningGateway, fake_compat: tuple[FakeCompatUpstream, RunningAiohttp]
) -> None:
    reply = sdk(gateway).chat.completions.create(model="oa-o3", messages=DEV, max_tokens=5)
    assert reply.choices[0].message.content == TEXT
    sent = fake_compat[0].log.bodies[-1]
    assert sent["max_completion_tokens"] == 5 and "max_tokens" not in sent
    assert sent["messages"][0]["role"] == "developer"  # OpenAI knows it


@pytest.mark.parametrize("model", ["vllm-r", "ds", "or-r"])
def test_reasoning_is_emitted_under_both_names(gateway: RunningGateway, model: str) -> None:
    reply = sdk(gateway).chat.completions.create(model=model, messages=DEV)
    message = reply.choices[0].message.model_dump()
    assert message["reasoning"] == message["reasoning_content"] == THOUGHT
    chunks = list(sdk(gateway).chat.completions.create(model=model, messages=DEV, stream=True))
    deltas = [c.choices[0].delta.model_dump() for c in chunks if c.choices]
    assert "".join(d.get("reasoning") or "" for d in deltas) == THOUGHT
    assert "".join(d.get("reasoning_content") or "" for d in deltas) == THOUGHT
    assert "".join(d.get("content") or "" for d in deltas) == TEXT


def test_open_model_servers_get_system_not_developer(
    gateway: RunningGateway, fake_compat: tuple[FakeCompatUpstream, RunningAiohttp]
) -> None:
    sdk(gateway).chat.completions.create(model="vllm-r", messages=DEV)
    assert fake_compat[0].log.bodies[-1]["messages"][0] == {
        "role": "system",
        "content": "Be brief.",
    }


def test_deepseek_cache_tokens_are_normalised(gateway: RunningGateway) -> None:
    reply = sdk(gateway).chat.completions.create(model="ds", messages=DEV)
    assert reply.usage is not None and reply.usage.prompt_tokens_details is not None
    assert reply.usage.prompt_tokens_details.cached_tokens == 16
    row = gateway.wait_rows(1)[0]
    assert (row["prompt_tokens"], row["completion_tokens"]) == (20, 8)
    assert row["cost"] == pytest.approx(20 / 1e6)
    with pytest.raises(openai.BadRequestError, match=r"'response_format'.*'deepseek'"):
        sdk(gateway).chat.completions.create(
            model="ds",
            messages=DEV,
            response_format={"type": "json_schema", "json_schema": {"name": "x", "schema": {}}},
        )


def test_zhipu_max_tokens_tool_choice_and_drop_list(
    gateway: RunningGateway, fake_compat: tuple[FakeCompatUpstream, RunningAiohttp]
) -> None:
    reply = sdk(gateway).chat.completions.create(model="glm", messages=DEV, max_completion_tokens=9)
    assert reply.choices[0].message.content == TEXT
    sent = fake_compat[0].log.bodies[-1]
    assert sent["max_tokens"] == 9 and "max_completion_tokens" not in sent
    tools: Any = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(gateway).chat.completions.create(
            model="glm", messages=DEV, tools=tools, tool_choice="required"
        )
    assert "'tool_choice'" in caught.value.message and "'zhipu'" in caught.value.message
    sdk(gateway).chat.completions.create(
        model="glm-lenient", messages=DEV, tools=tools, tool_choice="required"
    )
    assert "tool_choice" not in fake_compat[0].log.bodies[-1]
    chunks = list(
        sdk(gateway).chat.completions.create(
            model="glm", messages=DEV, stream=True, stream_options={"include_usage": True}
        )
    )
    assert "stream_options" not in fake_compat[0].log.bodies[-1]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == TEXT


def test_openai_gets_a_plain_history_from_a_conversation_served_elsewhere(
    gateway: RunningGateway, fake_compat: tuple[FakeCompatUpstream, RunningAiohttp]
) -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "f", "arguments": "{}"},
        "extra_content": {"google": {"thought_signature": "c2ln"}},
    }
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [call],
        "reasoning_content": "hmm",
        "reasoning": "hmm",
        "reasoning_details": [{"type": "reasoning.text", "text": "hmm", "signature": "s"}],
    }
    history: Any = [*DEV, assistant, {"role": "tool", "tool_call_id": "call_1", "content": "ok"}]
    reply = sdk(gateway).chat.completions.create(model="oa-o3", messages=history)
    assert reply.choices[0].message.content == TEXT
    sent = fake_compat[0].log.bodies[-1]["messages"][2]
    assert sent == {
        "role": "assistant",
        "content": None,
        "tool_calls": [{k: v for k, v in call.items() if k != "extra_content"}],
    }
