"""The acceptance conversation: system + user, two parallel tool calls, the tool results,
a final answer — streamed and not — through every adapter (OpenAI-compatible, Anthropic,
Gemini, Ollama; with and without thinking signatures) with the official ``openai`` SDK,
and through ``/v1/messages`` with the official ``anthropic`` SDK; both SDKs validate
strictly. Every request leaves one log row with its tokens and cost."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import openai
import orjson
import pytest

from hybridinference.app import create_app
from hybridinference.config import parse_config
from tests.conftest import gateway_config
from tests.fakes.anthropic_upstream import FakeAnthropicUpstream
from tests.fakes.compat_upstream import FakeCompatUpstream
from tests.fakes.gemini_upstream import FakeGeminiUpstream
from tests.fakes.ollama_upstream import FakeOllamaUpstream
from tests.fakes.servers import RunningAiohttp, RunningGateway, run_aiohttp, run_gateway

FINAL = "Paris is sunny, 18 degrees; it is 14:00 CET."
SYSTEM = "You are a terse assistant. Use the tools."
QUESTION = "What is the weather in Paris, and what time is it there?"
EXPECTED_CALLS = [("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})]
RESULTS = {"get_weather": '{"sky": "sunny", "celsius": 18}', "get_time": '{"time": "14:00"}'}
SCHEMAS = {
    "get_weather": {"type": "object", "properties": {"city": {"type": "string"}}},
    "get_time": {"type": "object", "properties": {"tz": {"type": "string"}}},
}
OPENAI_TOOLS: Any = [
    {"type": "function", "function": {"name": n, "description": n, "parameters": p}}
    for n, p in SCHEMAS.items()
]
ANTHROPIC_TOOLS: Any = [
    {"name": n, "description": n, "input_schema": p} for n, p in SCHEMAS.items()
]
ROUTES = {
    "agent-openai": ("compat", "agent"),
    "agent-anthropic": ("claude", "tools"),
    "agent-anthropic-thinking": ("claude", "thinking-tools"),
    "agent-gemini": ("gem", "tools"),
    "agent-gemini-thinking": ("gem", "thinking-tools"),
    "agent-ollama": ("llama", "tools"),
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    claude, gem, llama, compat = (
        FakeAnthropicUpstream(),
        FakeGeminiUpstream(),
        FakeOllamaUpstream(),
        FakeCompatUpstream(),
    )
    servers: list[RunningAiohttp] = [run_aiohttp(f.app) for f in (claude, gem, llama, compat)]
    config = gateway_config("http://127.0.0.1:9/v1", tmp_path_factory.mktemp("agent"))
    config["providers"] = {
        "claude": {"kind": "anthropic", "base_url": servers[0].url, "api_key_env": "CLAUDE"},
        "gem": {"kind": "gemini", "base_url": servers[1].url, "api_key_env": "GEM"},
        "llama": {"kind": "ollama", "base_url": servers[2].url},
        "compat": {"kind": "openai", "base_url": servers[3].url + "/v1", "profile": "vllm"},
    }
    pricing = {"input": 2.0, "output": 10.0}
    config["models"] = [
        {"name": name, "routes": [{"provider": p, "model": m, "pricing": pricing}]}
        for name, (p, m) in ROUTES.items()
    ]
    env = {"CLAUDE": claude.api_key, "GEM": gem.api_key}
    parsed = parse_config(config, env, "agent-test")
    app = create_app(parsed, env, rng=random.Random(7))
    running = run_gateway(app, Path(parsed.storage.url.removeprefix("sqlite:///")))
    yield running
    running.stop()
    for server in servers:
        server.stop()


def openai_turn(
    client: openai.OpenAI, model: str, messages: list[Any], stream: bool
) -> tuple[dict[str, Any], str | None]:
    if not stream:
        reply = client.chat.completions.create(model=model, messages=messages, tools=OPENAI_TOOLS)
        choice = reply.choices[0]
        return choice.message.model_dump(exclude_none=True), choice.finish_reason
    message: dict[str, Any] = {"role": "assistant", "content": ""}
    calls: dict[int, dict[str, Any]] = {}
    details: dict[int, dict[str, Any]] = {}
    finish = None
    for chunk in client.chat.completions.create(
        model=model, messages=messages, tools=OPENAI_TOOLS, stream=True
    ):
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta.model_dump(exclude_none=True)
        finish = chunk.choices[0].finish_reason or finish
        message["content"] += delta.get("content") or ""
        for detail in delta.get("reasoning_details") or ():  # merged by index
            entry = details.setdefault(detail["index"], {**detail, "text": ""})
            entry["text"] += detail.get("text") or ""
            entry["signature"] = detail.get("signature") or entry.get("signature")
        for call in delta.get("tool_calls") or ():
            entry = calls.setdefault(
                call["index"], {"type": "function", "function": {"name": "", "arguments": ""}}
            )
            entry["id"] = call.get("id") or entry.get("id")
            function = call.get("function") or {}
            entry["function"]["name"] += function.get("name") or ""
            entry["function"]["arguments"] += function.get("arguments") or ""
            if call.get("extra_content"):
                entry["extra_content"] = call["extra_content"]
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    if details:
        message["reasoning_details"] = [details[i] for i in sorted(details)]
    return message, finish


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("model", list(ROUTES))
def test_agent_conversation_with_the_openai_sdk(
    gateway: RunningGateway, model: str, stream: bool
) -> None:
    client = openai.OpenAI(
        base_url=gateway.url + "/v1", api_key="k", max_retries=0, _strict_response_validation=True
    )
    messages: list[Any] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": QUESTION},
    ]
    first, finish = openai_turn(client, model, messages, stream)
    assert finish == "tool_calls"
    calls = first["tool_calls"]
    assert [(c["function"]["name"], orjson.loads(c["function"]["arguments"])) for c in calls] == (
        EXPECTED_CALLS
    )
    assert len({c["id"] for c in calls}) == 2
    messages.append(first)
    for call in calls:
        name = call["function"]["name"]
        messages.append({"role": "tool", "tool_call_id": call["id"], "content": RESULTS[name]})
    final, finish = openai_turn(client, model, messages, stream)
    assert (final["content"], finish) == (FINAL, "stop")
    where = "model = ? AND stream = ? AND endpoint = 'chat'"
    mine = gateway.wait_rows(2, where, (model, int(stream)))
    assert [r["status"] for r in mine] == [200, 200]
    assert all(r["prompt_tokens"] > 0 and r["completion_tokens"] > 0 for r in mine)
    assert all(r["cost"] > 0 for r in mine)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("model", list(ROUTES))
def test_agent_conversation_through_v1_messages(
    gateway: RunningGateway, model: str, stream: bool
) -> None:
    client = anthropic.Anthropic(
        base_url=gateway.url, api_key="k", max_retries=0, _strict_response_validation=True
    )

    def turn(messages: list[Any]) -> anthropic.types.Message:
        kwargs: Any = {
            "model": model,
            "max_tokens": 2048,
            "system": SYSTEM,
            "messages": messages,
            "tools": ANTHROPIC_TOOLS,
        }
        if not stream:
            return client.messages.create(**kwargs)
        with client.messages.stream(**kwargs) as events:
            return events.get_final_message()

    messages: list[Any] = [{"role": "user", "content": QUESTION}]
    first = turn(messages)
    assert first.stop_reason == "tool_use"
    uses = [b for b in first.content if b.type == "tool_use"]
    assert [(u.name, u.input) for u in uses] == EXPECTED_CALLS
    messages.append(
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]}
    )
    results = [
        {"type": "tool_result", "tool_use_id": u.id, "content": RESULTS[u.name]} for u in uses
    ]
    messages.append({"role": "user", "content": results})
    final = turn(messages)
    assert final.stop_reason == "end_turn"
    assert [b.text for b in final.content if b.type == "text"] == [FINAL]
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0
    where = "model = ? AND stream = ? AND endpoint = 'messages'"
    mine = gateway.wait_rows(2, where, (model, int(stream)))
    assert [r["status"] for r in mine] == [200, 200]
    assert all(r["cost"] > 0 for r in mine)
