"""A fake OpenAI-compatible upstream with the quirks the provider profiles exist for,
scripted by model name (``<quirk>-...``), on a real socket:

- ``vllm...``     reasoning as ``reasoning`` only (current vLLM), message and deltas;
                  ``router...`` the same, as OpenRouter does
- ``deepseek...`` reasoning as ``reasoning_content``; usage with prompt cache hit/miss
- ``o3...``       refuses ``max_tokens`` (OpenAI reasoning models want max_completion_tokens)
                  and unknown message fields, as OpenAI does
- ``glm...``      refuses ``max_completion_tokens`` (GLM knows max_tokens only)
- ``template...`` refuses the ``developer`` role (an open model's chat template)
- ``agent...``    two parallel tool calls; once tool results are in, a final answer

Any model refuses a ``developer`` message when its name starts with a quirk of an open
model server (vllm, deepseek, glm, template).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

FINAL = "Paris is sunny, 18 degrees; it is 14:00 CET."
THOUGHT = "The user wants weather and time: call both tools."
TEXT = "Hello from the compatible upstream."
OPENAI_MESSAGE_FIELDS = {"role", "content", "name", "tool_calls", "tool_call_id", "refusal"}
CALLS = (("call_w1", "get_weather", '{"city": "Paris"}'), ("call_t2", "get_time", '{"tz": "CET"}'))


@dataclass
class CompatLog:
    bodies: list[dict[str, Any]] = field(default_factory=list)


class FakeCompatUpstream:
    def __init__(self) -> None:
        self.log = CompatLog()
        self.app = web.Application()
        self.app.router.add_post("/v1/chat/completions", self.chat)
        self.app.router.add_get("/v1/models", self.models)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        self.log.bodies.append(body)
        model = str(body["model"])
        refusal = refuse(model, body)
        if refusal is not None:
            return _error(400, refusal)
        message, finish = answer(model, body)
        usage = _usage(model)
        base = {"id": "chatcmpl-compat", "created": int(time.time()), "model": model}
        if not body.get("stream"):
            choice = {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
            return _json({**base, "object": "chat.completion", "choices": [choice], "usage": usage})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        base["object"] = "chat.completion.chunk"
        for delta in deltas(message):
            await _send(
                response, {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            )
        await _send(
            response, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
        )
        if (body.get("stream_options") or {}).get("include_usage"):
            await _send(response, {**base, "choices": [], "usage": usage})
        await response.write(b"data: [DONE]\n\n")
        return response

    async def models(self, request: web.Request) -> web.Response:
        del request
        return _json({"object": "list", "data": []})


def refuse(model: str, body: dict[str, Any]) -> str | None:
    if model.startswith("o3") and "max_tokens" in body:
        return "Unsupported parameter: 'max_tokens' is not supported with this model."
    if model.startswith("o3"):  # OpenAI validates message fields strictly
        for i, message in enumerate(body["messages"]):
            extra = set(message) - OPENAI_MESSAGE_FIELDS
            calls = message.get("tool_calls") or ()
            extra |= {k for c in calls for k in c if k not in ("id", "type", "function")}
            if extra:
                first = sorted(extra)[0]
                return f"Additional properties are not allowed ({first!r}) - messages.{i}"
    if model.startswith("glm") and "max_completion_tokens" in body:
        return "Unknown parameter: max_completion_tokens"
    open_model = model.startswith(("vllm", "deepseek", "glm", "template"))
    if open_model and any(m.get("role") == "developer" for m in body["messages"]):
        return "jinja2.exceptions.TemplateError: Unknown role 'developer'"
    return None


def answer(model: str, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    message: dict[str, Any] = {"role": "assistant", "content": TEXT}
    if model.startswith("agent"):
        if body["messages"][-1]["role"] == "tool":
            return {"role": "assistant", "content": FINAL}, "stop"
        calls = [
            {"id": i, "type": "function", "function": {"name": n, "arguments": a}}
            for i, n, a in CALLS
        ]
        return {"role": "assistant", "content": None, "tool_calls": calls}, "tool_calls"
    if model.startswith(("vllm", "router")):
        message["reasoning"] = THOUGHT
    if model.startswith("deepseek"):
        message["reasoning_content"] = THOUGHT
    return message, "stop"


def deltas(message: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
    for key in ("reasoning", "reasoning_content"):
        if message.get(key):
            out.append({key: message[key]})
    if message.get("content"):
        out.extend({"content": w} for w in re.findall(r"\S+|\s+\S+", message["content"]))
    for index, call in enumerate(message.get("tool_calls") or ()):
        head = {**call, "index": index, "function": {**call["function"], "arguments": ""}}
        out.append({"tool_calls": [head]})
        out.append(
            {
                "tool_calls": [
                    {"index": index, "function": {"arguments": call["function"]["arguments"]}}
                ]
            }
        )
    return out


def _usage(model: str) -> dict[str, Any]:
    usage: dict[str, Any] = {"prompt_tokens": 20, "completion_tokens": 8, "total_tokens": 28}
    if model.startswith("deepseek"):
        usage.update(prompt_cache_hit_tokens=16, prompt_cache_miss_tokens=4)
    return usage


async def _send(response: web.StreamResponse, data: dict[str, Any]) -> None:
    await response.write(b"data: " + orjson.dumps(data) + b"\n\n")


def _json(data: dict[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps(data), content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    body = {"error": {"message": message, "type": "BadRequestError", "param": None, "code": status}}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")
