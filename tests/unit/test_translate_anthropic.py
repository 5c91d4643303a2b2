"""Property tests: random valid requests and answers survive a round trip through the
Anthropic translators (OpenAI → Anthropic → OpenAI requests; Anthropic → OpenAI →
Anthropic messages, whole and as streams) without losing messages, tool calls, tool
results, thinking signatures or parameters."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridinference.adapters.anthropic_inbound import to_openai_request
from hybridinference.adapters.anthropic_request import SUPPORTED, AnthropicDefaults, to_anthropic
from hybridinference.adapters.anthropic_response import from_anthropic, to_anthropic_message
from hybridinference.adapters.anthropic_stream import AnthropicToOpenAI, OpenAIToAnthropic
from hybridinference.adapters.params import ParamPolicy
from hybridinference.errors import UpstreamRejected

POLICY = ParamPolicy.of("claude", "anthropic", SUPPORTED, ())
text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=20)
ident = st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True)
json_value = st.one_of(st.integers(-5, 5), st.booleans(), text)
arguments = st.dictionaries(ident, json_value, max_size=3)
PNG = "data:image/png;base64,iVBORw0KGgo="


@st.composite
def conversations(draw: st.DrawFn) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(text)})
    counter = 0
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            parts = [{"type": "text", "text": draw(text)}]
            if draw(st.booleans()):
                parts.append({"type": "image_url", "image_url": {"url": PNG}})
            messages.append({"role": "user", "content": parts})
        else:
            messages.append({"role": "user", "content": draw(text)})
        calls = []
        for _ in range(draw(st.integers(0, 3))):
            counter += 1
            args = orjson.dumps(draw(arguments)).decode()
            calls.append(
                {
                    "id": f"call_{counter}",
                    "type": "function",
                    "function": {"name": draw(ident), "arguments": args},
                }
            )
        assistant: dict[str, Any] = {
            "role": "assistant",
            "content": draw(text) if not calls or draw(st.booleans()) else None,
        }
        if calls:
            assistant["tool_calls"] = calls
        messages.append(assistant)
        messages.extend(
            {"role": "tool", "tool_call_id": c["id"], "content": draw(text)} for c in calls
        )
    return messages


@st.composite
def chat_requests(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "m", "messages": draw(conversations())}
    body["max_tokens"] = draw(st.integers(1, 8192))
    if draw(st.booleans()):
        body["temperature"] = draw(st.floats(0, 1))
    if draw(st.booleans()):
        body["top_p"] = draw(st.floats(0, 1))
    if draw(st.booleans()):
        body["stop"] = draw(st.lists(text, min_size=1, max_size=3))
    if draw(st.booleans()):
        names = draw(st.lists(ident, min_size=1, max_size=3, unique=True))
        body["tools"] = [
            {"type": "function", "function": {"name": n, "parameters": {"type": "object"}}}
            for n in names
        ]
        body["tool_choice"] = draw(
            st.sampled_from(
                ["auto", "none", "required", {"type": "function", "function": {"name": names[0]}}]
            )
        )
    return body


def _normal(messages: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What must survive, message by message."""
    out: list[tuple[Any, ...]] = []
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            content = tuple(p.get("text") or p.get("image_url", {}).get("url") for p in content)
        elif isinstance(content, str):
            content = (content,) if m["role"] == "user" else content
        calls = tuple(
            (c["id"], c["function"]["name"], orjson.loads(c["function"]["arguments"]))
            for c in m.get("tool_calls") or ()
        )
        if m["role"] == "assistant" and content is None:
            content = ""
        if m["role"] == "system" and isinstance(content, tuple):
            content = "".join(content)
        out.append((m["role"], content, calls, m.get("tool_call_id")))
    return out


@settings(max_examples=40, deadline=None, database=None)
@given(chat_requests())
def test_chat_request_round_trip(body: dict[str, Any]) -> None:
    native = to_anthropic(body, POLICY, AnthropicDefaults(4096))
    assert all(m["role"] in ("user", "assistant") for m in native["messages"])
    back = to_openai_request(native)
    assert _normal(back["messages"]) == _normal(body["messages"])
    for key in ("max_tokens", "temperature", "top_p", "stop", "tools", "tool_choice"):
        if key in body and not (key == "tool_choice" and "tools" not in body):
            sent = back.get(key)
            if key == "tools":
                sent = [
                    {
                        "type": "function",
                        "function": {
                            "name": t["function"]["name"],
                            "parameters": t["function"]["parameters"],
                        },
                    }
                    for t in sent
                ]
            assert sent == body[key], key


thinking = st.builds(lambda t, s: {"type": "thinking", "thinking": t, "signature": s}, text, text)
tool_use = st.builds(
    lambda i, n, a: {"type": "tool_use", "id": f"toolu_{i}", "name": n, "input": a},
    st.integers(0, 10**6),
    ident,
    arguments,
)


@st.composite
def anthropic_messages(draw: st.DrawFn) -> dict[str, Any]:
    content = draw(st.lists(thinking, max_size=2))
    if draw(st.booleans()):
        content.append({"type": "text", "text": draw(text)})
    uses = draw(st.lists(tool_use, max_size=3, unique_by=lambda b: b["id"]))
    content.extend(uses)
    if not content:
        content.append({"type": "text", "text": draw(text)})
    stop = "tool_use" if uses else draw(st.sampled_from(["end_turn", "max_tokens", "refusal"]))
    usage = {
        "input_tokens": draw(st.integers(0, 1000)),
        "output_tokens": draw(st.integers(0, 1000)),
        "cache_read_input_tokens": draw(st.integers(0, 1000)),
        "cache_creation_input_tokens": draw(st.integers(0, 1000)),
    }
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": usage,
    }


@settings(max_examples=40, deadline=None, database=None)
@given(anthropic_messages())
def test_message_round_trip(message: dict[str, Any]) -> None:
    completion = from_anthropic(message, 0)
    back = to_anthropic_message(completion, "m", "msg_1")
    assert back["content"] == message["content"]
    assert back["stop_reason"] == message["stop_reason"]
    assert back["usage"] == message["usage"]


def events_of(message: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The SSE events Anthropic would send for ``message``."""
    start = {**message, "content": [], "stop_reason": None}
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": start})
    ]
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        empty = {
            "text": {"type": "text", "text": ""},
            "thinking": {"type": "thinking", "thinking": "", "signature": ""},
        }
        events.append(
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": empty.get(kind) or {**block, "input": {}},
                },
            )
        )
        if kind == "text":
            deltas = [{"type": "text_delta", "text": block["text"]}]
        elif kind == "thinking":
            deltas = [
                {"type": "thinking_delta", "thinking": block["thinking"]},
                {"type": "signature_delta", "signature": block["signature"]},
            ]
        else:
            raw = orjson.dumps(block["input"]).decode()
            deltas = [
                {"type": "input_json_delta", "partial_json": raw[:3]},
                {"type": "input_json_delta", "partial_json": raw[3:]},
            ]
        events.extend(
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d})
            for d in deltas
        )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": message["stop_reason"]},
                "usage": message["usage"],
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def assemble(events: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """What an Anthropic client builds from the events."""
    content: list[dict[str, Any]] = []
    partial: dict[int, str] = {}
    out: dict[str, Any] = {}
    for name, data in events:
        assert data["type"] == name
        if name == "content_block_start":
            assert data["index"] == len(content)
            content.append(dict(data["content_block"]))
        elif name == "content_block_delta":
            block, delta = content[data["index"]], data["delta"]
            key = {
                "text_delta": "text",
                "thinking_delta": "thinking",
                "signature_delta": "signature",
            }.get(delta["type"])
            if key:
                block[key] = block.get(key, "") + delta[key]
            else:
                partial[data["index"]] = partial.get(data["index"], "") + delta["partial_json"]
        elif name == "content_block_stop" and data["index"] in partial:
            content[data["index"]]["input"] = orjson.loads(partial[data["index"]])
        elif name == "message_delta":
            out = {"stop_reason": data["delta"]["stop_reason"], "usage": data["usage"]}
    return {"content": content, **out}


@settings(max_examples=40, deadline=None, database=None)
@given(anthropic_messages())
def test_stream_round_trip(message: dict[str, Any]) -> None:
    decoder = AnthropicToOpenAI("claude", 0)
    chunks = [c for name, data in events_of(message) for c in decoder.feed(name, data)]
    encoder = OpenAIToAnthropic("msg_1", "m")
    events = encoder.start()
    for chunk in chunks:
        events.extend(encoder.feed(chunk))
    events.extend(encoder.end())
    rebuilt = assemble(events)
    assert rebuilt["content"] == message["content"]
    assert rebuilt["stop_reason"] == message["stop_reason"]
    assert rebuilt["usage"] == message["usage"]


def test_tool_choice_parallel_and_response_format_mapping() -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]
    base: dict[str, Any] = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    cases = [
        ({"tool_choice": "required"}, {"type": "any"}),
        ({"tool_choice": "none"}, {"type": "none"}),
        (
            {"tool_choice": {"type": "function", "function": {"name": "f"}}},
            {"type": "tool", "name": "f"},
        ),
        ({"parallel_tool_calls": False}, {"type": "auto", "disable_parallel_tool_use": True}),
    ]
    for extra, expected in cases:
        native = to_anthropic({**base, "tools": tools, **extra}, POLICY, AnthropicDefaults(64))
        assert native["tool_choice"] == expected
        back = to_openai_request(native)
        for key, value in extra.items():
            assert back[key] == value
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    native = to_anthropic({**base, "response_format": fmt}, POLICY, AnthropicDefaults(64))
    assert native["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert to_openai_request(native)["response_format"]["json_schema"]["schema"] == schema


def test_only_system_becomes_the_user_turn_and_thinking_needs_room() -> None:
    body: dict[str, Any] = {"model": "m", "messages": [{"role": "developer", "content": "hi"}]}
    native = to_anthropic(body, POLICY, AnthropicDefaults(64))
    assert native["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert "system" not in native
    body["reasoning_effort"] = "high"
    with pytest.raises(UpstreamRejected, match="'reasoning_effort'"):
        to_anthropic(body, POLICY, AnthropicDefaults(512))
    native = to_anthropic(body, POLICY, AnthropicDefaults(64000))
    assert native["thinking"] == {"type": "enabled", "budget_tokens": 16384}
    assert to_openai_request(native)["reasoning_effort"] == "high"


def test_gemini_thought_signatures_survive_the_anthropic_surface() -> None:
    calls = [
        {
            "id": f"call_{i}",
            "type": "function",
            "function": {"name": "f", "arguments": "{}"},
            "extra_content": {"google": {"thought_signature": f"sig{i}=="}},
        }
        for i in range(2)
    ]
    completion = {
        "choices": [
            {
                "message": {"role": "assistant", "content": None, "tool_calls": calls},
                "finish_reason": "tool_calls",
            }
        ]
    }
    message = to_anthropic_message(completion, "m", "msg_1")
    assert [b["type"] for b in message["content"]] == ["thinking", "tool_use", "tool_use"]
    history = to_openai_request(
        {
            "model": "m",
            "max_tokens": 8,
            "messages": [{"role": "assistant", "content": message["content"]}],
        }
    )
    assert history["messages"][0]["tool_calls"] == calls
    assert "reasoning_details" not in history["messages"][0]
    encoder = OpenAIToAnthropic("msg_1", "m")
    events = encoder.start()
    for index, call in enumerate(calls):
        events += encoder.feed(
            {"choices": [{"index": 0, "delta": {"tool_calls": [{**call, "index": index}]}}]}
        )
    events += encoder.end()
    streamed = assemble(events)["content"]
    assert [b["type"] for b in streamed] == ["thinking", "tool_use", "thinking", "tool_use"]
    back = to_openai_request(
        {"model": "m", "max_tokens": 8, "messages": [{"role": "assistant", "content": streamed}]}
    )
    assert back["messages"][0]["tool_calls"] == calls
