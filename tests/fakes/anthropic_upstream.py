"""A fake Anthropic Messages API on a real socket, scripted by model name.

It checks requests the way the real API does (x-api-key and anthropic-version headers,
``max_tokens`` required, only user/assistant roles, temperature 0..1, non-empty text,
tool results answering the tool uses of the turn before, thinking blocks signed, no
unknown top-level fields) and answers with the real shapes, plain or as named SSE events.

Model names:

- ``ok...``              a text answer
- ``tools...``           two parallel tool calls; once the tool results are in, a final answer
- ``thinking...``        a signed thinking block first; ``thinking-tools...`` then tool calls,
                         and on the next turn insists the signed thinking block came back
- ``cache...``           a text answer whose usage has cache reads and writes
- ``image...``           describes the image sources it received
- ``max...``             stops on max_tokens
- ``status-<code>...``   that status with an Anthropic error body
- ``overloaded...``      529 overloaded_error; ``ratelimit...`` 429 with Retry-After
- ``flaky-<n>...``       529 for the first n requests of that exact name
- ``error-midstream...`` two text deltas, then an ``error`` event
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

ANSWER = ("Hello", " from", " the", " fake", " Anthropic", " upstream.")
FINAL = "Paris is sunny, 18 degrees; it is 14:00 CET."
SIGNATURE = "sig-fake-thinking-1"
THOUGHT = "The user wants weather and time: call both tools."
TOOL_USES = (
    {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
    {"type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {"tz": "CET"}},
)
_FIELDS = (
    "model messages max_tokens system stop_sequences temperature top_p top_k tools tool_choice "
    "thinking output_config metadata stream service_tier container diagnostics speed "
    "user_profile_id workspace_id cache_control context_management inference_geo"
)
TOP_LEVEL = frozenset(_FIELDS.split())


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class AnthropicLog:
    received: list[Received] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)

    def bodies(self, prefix: str = "") -> list[dict[str, Any]]:
        return [r.body for r in self.received if str(r.body.get("model", "")).startswith(prefix)]


class Invalid(Exception):
    pass


class FakeAnthropicUpstream:
    def __init__(self, api_key: str = "sk-ant-fake") -> None:
        self.api_key = api_key
        self.log = AnthropicLog()
        self.app = web.Application()
        self.app.router.add_post("/v1/messages", self.messages)
        self.app.router.add_post("/v1/messages/count_tokens", self.count_tokens)
        self.app.router.add_get("/v1/models", self.models)

    async def messages(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        self.log.received.append(Received(request.path, dict(request.headers), body))
        refused = self._refuse(request, body)
        if refused is not None:
            return refused
        model = str(body["model"])
        failure = self._scripted_failure(model)
        if failure is not None:
            return failure
        content, stop = self._answer(model, body)
        message = {
            "id": "msg_fake01",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": _usage(model, content),
        }
        if body.get("stream"):
            return await self._stream(request, message)
        return _json(message)

    def _refuse(self, request: web.Request, body: dict[str, Any]) -> web.Response | None:
        if not self._authorized(request):
            return _error(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return _error(400, "invalid_request_error", "anthropic-version header is required")
        try:
            validate(body)
        except Invalid as exc:
            return _error(400, "invalid_request_error", str(exc))
        return None

    def _authorized(self, request: web.Request) -> bool:
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        return self.api_key in (request.headers.get("x-api-key"), bearer)

    def _scripted_failure(self, model: str) -> web.Response | None:
        if model.startswith("status-"):
            status = int(re.match(r"status-(\d+)", model).group(1))  # type: ignore[union-attr]
            kind = "invalid_request_error" if status < 500 else "api_error"
            return _error(status, kind, f"scripted status {status}")
        if model.startswith("overloaded"):
            return _error(529, "overloaded_error", "Overloaded")
        if model.startswith("ratelimit"):
            return _error(429, "rate_limit_error", "slow down", {"retry-after": "7"})
        if model.startswith("flaky-"):
            count = self.log.counters[model] = self.log.counters.get(model, 0) + 1
            if count <= int(re.match(r"flaky-(\d+)", model).group(1)):  # type: ignore[union-attr]
                return _error(529, "overloaded_error", "Overloaded")
        return None

    def _answer(self, model: str, body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
        last = body["messages"][-1]
        has_results = isinstance(last["content"], list) and any(
            b.get("type") == "tool_result" for b in last["content"]
        )
        thinking = [{"type": "thinking", "thinking": THOUGHT, "signature": SIGNATURE}]
        if model.startswith(("tools", "thinking-tools")):
            if has_results:
                return [{"type": "text", "text": FINAL}], "end_turn"
            first = thinking if model.startswith("thinking") else []
            return [*first, *(dict(t) for t in TOOL_USES)], "tool_use"
        if model.startswith("image"):
            return [{"type": "text", "text": describe_images(body)}], "end_turn"
        text = [{"type": "text", "text": "".join(ANSWER)}]
        if model.startswith("thinking"):
            return [*thinking, *text], "end_turn"
        return text, "max_tokens" if model.startswith("max") else "end_turn"

    async def _stream(self, request: web.Request, message: dict[str, Any]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        usage = message["usage"]
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "usage": {**usage, "output_tokens": 1},
        }
        await _event(response, "message_start", {"message": start})
        await _event(response, "ping", {})
        for index, block in enumerate(message["content"]):
            if message["model"].startswith("error-midstream"):
                start_block = {"index": index, "content_block": {"type": "text", "text": ""}}
                await _event(response, "content_block_start", start_block)
                for word in ANSWER[:2]:
                    await _event(response, "content_block_delta", _text_delta(index, word))
                error = {"type": "overloaded_error", "message": "Overloaded"}
                await _event(response, "error", {"error": error})
                return response
            await _stream_block(response, index, block)
        delta = {"stop_reason": message["stop_reason"], "stop_sequence": None}
        await _event(
            response,
            "message_delta",
            {"delta": delta, "usage": {"output_tokens": usage["output_tokens"]}},
        )
        await _event(response, "message_stop", {})
        return response

    async def count_tokens(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.log.received.append(Received(request.path, dict(request.headers), body))
        return _json({"input_tokens": len(orjson.dumps(body["messages"])) // 4})

    async def models(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error(401, "authentication_error", "invalid x-api-key")
        model = {
            "type": "model",
            "id": "claude-fake",
            "display_name": "Fake",
            "created_at": "2026-01-01T00:00:00Z",
        }
        return _json(
            {
                "data": [model],
                "has_more": False,
                "first_id": "claude-fake",
                "last_id": "claude-fake",
            }
        )


def validate(body: dict[str, Any]) -> None:
    """The checks the real API makes that a translation could get wrong."""
    unknown = set(body) - TOP_LEVEL
    if unknown:
        raise Invalid(f"{sorted(unknown)[0]}: Extra inputs are not permitted")
    if not isinstance(body.get("max_tokens"), int):
        raise Invalid("max_tokens: Field required")
    temperature = body.get("temperature")
    if temperature is not None and not 0 <= temperature <= 1:
        raise Invalid("temperature: Input should be less than or equal to 1")
    messages = body.get("messages")
    if not messages:
        raise Invalid("messages: at least one message is required")
    previous_tool_ids: set[str] = set()
    for i, message in enumerate(messages):
        if message.get("role") not in ("user", "assistant"):
            raise Invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        blocks = message["content"]
        if isinstance(blocks, str):
            blocks = [{"type": "text", "text": blocks}]
        for j, block in enumerate(blocks):
            _validate_block(f"messages.{i}.content.{j}", block, message["role"], previous_tool_ids)
        previous_tool_ids = {b["id"] for b in blocks if b.get("type") == "tool_use"}
        thinking_model = str(body["model"]).startswith("thinking")
        if thinking_model and previous_tool_ids and blocks[0].get("type") != "thinking":
            raise Invalid(
                f"messages.{i}.content.0.type: Expected `thinking` or `redacted_thinking`, "
                "but found `tool_use`. When thinking is enabled, a final assistant message "
                "must start with a thinking block"
            )


def _validate_block(where: str, block: dict[str, Any], role: str, tool_ids: set[str]) -> None:
    kind = block.get("type")
    if kind == "text" and not block.get("text"):
        raise Invalid(f"{where}: text content blocks must be non-empty")
    if kind == "tool_result" and (role != "user" or block.get("tool_use_id") not in tool_ids):
        raise Invalid(f"{where}: unexpected `tool_use_id` found in `tool_result` blocks")
    if kind == "thinking" and (block.get("signature"), block.get("thinking")) != (
        SIGNATURE,
        THOUGHT,
    ):
        raise Invalid(f"{where}.signature: Invalid `signature` in `thinking` block")
    if kind == "tool_use" and not isinstance(block.get("input"), dict):
        raise Invalid(f"{where}.input: Input should be a valid dictionary")
    if kind == "image":
        source = block.get("source") or {}
        if source.get("type") not in ("base64", "url"):
            raise Invalid(f"{where}.source.type: Input should be 'base64' or 'url'")
    if kind not in (
        "text",
        "image",
        "tool_use",
        "tool_result",
        "thinking",
        "redacted_thinking",
        "document",
    ):
        raise Invalid(f"{where}.type: Input tag '{kind}' does not match any of the expected tags")


def describe_images(body: dict[str, Any]) -> str:
    seen = []
    for message in body["messages"]:
        for block in message["content"] if isinstance(message["content"], list) else ():
            if block.get("type") == "image":
                source = block["source"]
                seen.append(
                    f"base64:{source['media_type']}"
                    if source["type"] == "base64"
                    else f"url:{source['url']}"
                )
    return "images: " + ", ".join(seen)


def _usage(model: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    usage: dict[str, Any] = {"input_tokens": 12, "output_tokens": 3 * len(content) + 4}
    if model.startswith("cache"):
        usage.update(cache_read_input_tokens=100, cache_creation_input_tokens=20)
    return usage


def _text_delta(index: int, text: str) -> dict[str, Any]:
    return {"index": index, "delta": {"type": "text_delta", "text": text}}


async def _stream_block(response: web.StreamResponse, index: int, block: dict[str, Any]) -> None:
    kind = block["type"]
    empty = {
        "text": {"type": "text", "text": ""},
        "thinking": {"type": "thinking", "thinking": "", "signature": ""},
    }
    start = empty.get(kind) or {**block, "input": {}}
    await _event(response, "content_block_start", {"index": index, "content_block": start})
    if kind == "text":
        words = re.findall(r"\S+|\s+\S+", block["text"])
        for word in words:
            await _event(response, "content_block_delta", _text_delta(index, word))
    elif kind == "thinking":
        delta = {"type": "thinking_delta", "thinking": block["thinking"]}
        await _event(response, "content_block_delta", {"index": index, "delta": delta})
        delta = {"type": "signature_delta", "signature": block["signature"]}
        await _event(response, "content_block_delta", {"index": index, "delta": delta})
    else:
        raw = orjson.dumps(block["input"]).decode()
        for part in ("", raw[: len(raw) // 2], raw[len(raw) // 2 :]):
            delta = {"type": "input_json_delta", "partial_json": part}
            await _event(response, "content_block_delta", {"index": index, "delta": delta})
    await _event(response, "content_block_stop", {"index": index})
    await asyncio.sleep(0)


async def _event(response: web.StreamResponse, name: str, data: dict[str, Any]) -> None:
    await response.write(
        f"event: {name}\n".encode() + b"data: " + orjson.dumps({"type": name, **data}) + b"\n\n"
    )


def _json(data: dict[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps(data), content_type="application/json")


def _error(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"}
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )
