"""Property tests for the Gemini and Ollama translators: random valid OpenAI requests
keep every message, tool call, tool result and parameter on the way out, and random
native answers read the same whole as streamed."""

from __future__ import annotations

import itertools
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridinference.adapters import gemini_request, ollama_request
from hybridinference.adapters.gemini_response import GeminiStreamDecoder, from_gemini
from hybridinference.adapters.ollama_response import OllamaStreamDecoder, from_ollama
from hybridinference.adapters.params import ParamPolicy
from hybridinference.adapters.parts import text_of
from hybridinference.errors import UpstreamRejected
from tests.unit.test_translate_anthropic import arguments, chat_requests, ident, text

GEMINI = ParamPolicy.of("gem", "gemini", gemini_request.SUPPORTED, ())
OLLAMA = ParamPolicy.of("llama", "ollama", ollama_request.SUPPORTED, ())
SETTINGS = settings(max_examples=40, deadline=None, database=None)


def _counter() -> Any:
    numbers = itertools.count()
    return lambda: f"id{next(numbers)}"


def _expected_items(messages: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    names: dict[str, str] = {}
    items: list[tuple[Any, ...]] = []
    for m in messages:
        if m["role"] == "system":
            continue
        if m["role"] == "tool":
            items.append(("result", names[m["tool_call_id"]], {"result": m["content"]}))
            continue
        role = "model" if m["role"] == "assistant" else "user"
        content = m.get("content")
        parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
        for part in parts:
            if part.get("type") == "image_url":
                items.append(("image", role))
            elif part.get("text"):
                items.append(("text", role, part["text"]))
        for call in m.get("tool_calls") or ():
            names[call["id"]] = call["function"]["name"]
            args = orjson.loads(call["function"]["arguments"])
            items.append(("call", call["function"]["name"], args))
    return items


def _gemini_items(contents: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    items: list[tuple[Any, ...]] = []
    for content in contents:
        for part in content["parts"]:
            if "text" in part:
                items.append(("text", content["role"], part["text"]))
            elif "inlineData" in part:
                items.append(("image", content["role"]))
            elif "functionCall" in part:
                call = part["functionCall"]
                items.append(("call", call["name"], call["args"]))
            else:
                response = part["functionResponse"]
                items.append(("result", response["name"], response["response"]))
    return items


@SETTINGS
@given(chat_requests())
def test_gemini_request_keeps_everything(body: dict[str, Any]) -> None:
    for message in body["messages"]:  # tool output that is a JSON object is sent as one
        if message["role"] == "tool":
            message["content"] = "text: " + message["content"]
    native = gemini_request.to_gemini(body, GEMINI)
    roles = [c["role"] for c in native["contents"]]
    assert all(a != b for a, b in itertools.pairwise(roles)), "same-role turns are merged"
    assert _gemini_items(native["contents"]) == _expected_items(body["messages"])
    system = [m["content"] for m in body["messages"] if m["role"] == "system"]
    assert [p["text"] for p in native.get("systemInstruction", {}).get("parts", [])] == system
    config = native["generationConfig"]
    assert config["maxOutputTokens"] == body["max_tokens"]
    assert config.get("temperature") == body.get("temperature")
    assert config.get("topP") == body.get("top_p")
    assert config.get("stopSequences") == body.get("stop")
    declared = [d["name"] for t in native.get("tools", []) for d in t["functionDeclarations"]]
    assert declared == [t["function"]["name"] for t in body.get("tools", [])]


@SETTINGS
@given(chat_requests())
def test_ollama_request_keeps_everything(body: dict[str, Any]) -> None:
    if body.get("tool_choice", "auto") != "auto":  # Ollama cannot honour it: a clear 400
        with pytest.raises(UpstreamRejected, match="'tool_choice'") as refused:
            ollama_request.to_ollama(body, OLLAMA, ollama_request.OllamaDefaults())
        assert refused.value.status_code == 400
        del body["tool_choice"]
    native = ollama_request.to_ollama(body, OLLAMA, ollama_request.OllamaDefaults())
    assert len(native["messages"]) == len(body["messages"])
    names: dict[str, str] = {}
    for sent, original in zip(native["messages"], body["messages"], strict=True):
        assert sent["role"] == original["role"]
        assert sent["content"] == text_of(original.get("content"))
        images = [
            p
            for p in original.get("content") or ()
            if isinstance(p, dict) and p.get("type") == "image_url"
        ]
        assert len(sent.get("images", [])) == len(images)
        calls = original.get("tool_calls") or []
        for call in calls:
            names[call["id"]] = call["function"]["name"]
        assert [
            (c["function"]["name"], c["function"]["arguments"]) for c in sent.get("tool_calls", [])
        ] == [(c["function"]["name"], orjson.loads(c["function"]["arguments"])) for c in calls]
        if original["role"] == "tool":
            assert sent["tool_name"] == names[original["tool_call_id"]]
    options = native["options"]
    assert options["num_predict"] == body["max_tokens"]
    assert options.get("temperature") == body.get("temperature")
    assert options.get("stop") == body.get("stop")
    assert native["stream"] is False


part = st.one_of(
    st.builds(lambda t: {"text": t}, text),
    st.builds(lambda t: {"text": t, "thought": True}, text),
    st.builds(
        lambda n, a, s: {
            "functionCall": {"name": n, "args": a},
            **({"thoughtSignature": s} if s else {}),
        },
        ident,
        arguments,
        st.one_of(st.none(), text),
    ),
)


def _accumulate(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "content": "",
        "reasoning": "",
        "calls": [],
        "finish": None,
        "usage": None,
    }
    for chunk in chunks:
        if chunk.get("usage"):
            out["usage"] = chunk["usage"]
        for choice in chunk["choices"]:
            delta = choice["delta"]
            out["content"] += delta.get("content") or ""
            out["reasoning"] += delta.get("reasoning") or ""
            for call in delta.get("tool_calls") or ():
                out["calls"].append(
                    (
                        call["index"],
                        call["function"]["name"],
                        call["function"]["arguments"],
                        call.get("extra_content"),
                    )
                )
            out["finish"] = choice["finish_reason"] or out["finish"]
    return out


@SETTINGS
@given(st.lists(part, min_size=1, max_size=6), st.sampled_from(["STOP", "MAX_TOKENS", "SAFETY"]))
def test_gemini_answer_whole_and_streamed_agree(parts: list[dict[str, Any]], finish: str) -> None:
    usage = {
        "promptTokenCount": 3,
        "candidatesTokenCount": 4,
        "thoughtsTokenCount": 2,
        "totalTokenCount": 9,
    }
    whole = {
        "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish}],
        "usageMetadata": usage,
    }
    completion = from_gemini(whole, "g", 0, _counter())
    message = completion["choices"][0]["message"]
    decoder = GeminiStreamDecoder("gem", "g", 0, _counter())
    chunks = []
    for i, one in enumerate(parts):
        event: dict[str, Any] = {"candidates": [{"content": {"role": "model", "parts": [one]}}]}
        if i == len(parts) - 1:
            event["candidates"][0]["finishReason"] = finish
            event["usageMetadata"] = usage
        chunks.extend(decoder.feed(event))
    chunks.extend(decoder.end())
    streamed = _accumulate(chunks)
    assert streamed["content"] == (message["content"] or "")
    assert streamed["reasoning"] == (message.get("reasoning") or "")
    calls = message.get("tool_calls") or []
    assert [c[1:] for c in streamed["calls"]] == [
        (c["function"]["name"], c["function"]["arguments"], c.get("extra_content")) for c in calls
    ]
    assert [c[0] for c in streamed["calls"]] == list(range(len(calls)))
    assert streamed["finish"] == completion["choices"][0]["finish_reason"]
    assert streamed["finish"] == (
        "tool_calls"
        if calls
        else {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter"}[finish]
    )
    assert streamed["usage"] == completion["usage"]
    assert completion["usage"]["completion_tokens"] == 6


@SETTINGS
@given(
    st.lists(text, max_size=4),
    st.one_of(st.none(), text),
    st.lists(st.tuples(ident, arguments), max_size=3),
    st.sampled_from(["stop", "length"]),
)
def test_ollama_answer_whole_and_streamed_agree(
    words: list[str], thinking: str | None, calls: list[tuple[str, Any]], reason: str
) -> None:
    tool_calls = [{"function": {"name": n, "arguments": a}} for n, a in calls]
    message: dict[str, Any] = {"role": "assistant", "content": "".join(words)}
    if thinking:
        message["thinking"] = thinking
    if tool_calls:
        message["tool_calls"] = tool_calls
    done = {"done": True, "done_reason": reason, "prompt_eval_count": 5, "eval_count": 7}
    completion = from_ollama({"model": "o", "message": message, **done}, 0, _counter())
    lines: list[dict[str, Any]] = []
    if thinking:
        lines.append({"message": {"role": "assistant", "content": "", "thinking": thinking}})
    lines.extend({"message": {"role": "assistant", "content": w}} for w in words)
    if tool_calls:
        lines.append({"message": {"role": "assistant", "content": "", "tool_calls": tool_calls}})
    lines.append({"message": {"role": "assistant", "content": ""}, **done})
    decoder = OllamaStreamDecoder("llama", 0, _counter())
    streamed = _accumulate(
        [c for line in lines for c in decoder.feed({"model": "o", "done": False, **line})]
    )
    expected = completion["choices"][0]["message"]
    assert streamed["content"] == (expected["content"] or "")
    assert streamed["reasoning"] == (expected.get("reasoning") or "")
    assert [(c[1], orjson.loads(c[2])) for c in streamed["calls"]] == [(n, a) for n, a in calls]
    assert streamed["finish"] == completion["choices"][0]["finish_reason"]
    assert streamed["finish"] == ("tool_calls" if calls else reason)
    assert (
        streamed["usage"]
        == completion["usage"]
        == {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}
    )
