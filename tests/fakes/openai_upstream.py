"""A fake OpenAI-compatible upstream on a real socket, scripted by model name.

Model names (anything after the script is free text, so tests can keep counters apart):

- ``ok...``                  a normal answer (the default for unknown names)
- ``tools...``               two parallel tool calls (finish_reason ``tool_calls``)
- ``slow-<ms>...``           wait before answering
- ``drip-<ms>...``           stream chunks ``<ms>`` apart
- ``status-<code>...``       answer with that HTTP status and an OpenAI error body
- ``ratelimit...``           429 with ``Retry-After: 7``
- ``flaky-<n>...``           503 for the first ``n`` requests of that exact name, then ok
- ``garbage...``             200 with a body that is not JSON (a malformed event when streaming)
- ``hang...``                never answers (the handler ends, recorded as ``cancelled``,
                             when the client goes away, so the server can shut down)
- ``hang-midstream...``      two chunks, then silence
- ``disconnect-midstream...`` two chunks, then the connection is dropped
- ``truncated...``           two chunks, then a clean end without finish_reason or [DONE]
- ``error-midstream...``     two chunks, then an in-band ``{"error": ...}`` event
- ``gated...``               streamed: the first word, then nothing until the test adds the
                             model name to ``log.released``
- ``big-<kib>...``           streamed: the first content chunk carries ``<kib>`` KiB of "x"

Everything received is recorded (path, headers, parsed body); so are streams the client
abandoned (``cancelled``), with the time it was noticed, how many content chunks each
streamed chat has sent so far (``progress``) and which streams were sent to the end
(``completed``), so tests can check what the client saw against what was sent when.
"""

from __future__ import annotations

import asyncio
import base64
import re
import struct
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

WORDS = ("Hello", " from", " the", " fake", " upstream", ".")


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    peer: tuple[str, int] | None = None  # the client's address: one per TCP connection


@dataclass
class UpstreamLog:
    received: list[Received] = field(default_factory=list)
    cancelled: list[tuple[str, float]] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    progress: dict[str, int] = field(default_factory=dict)
    completed: list[tuple[str, float]] = field(default_factory=list)
    released: set[str] = field(default_factory=set)  # "gated" streams the test let go on

    def bodies(self, model_prefix: str = "") -> list[dict[str, Any]]:
        return [
            r.body for r in self.received if str(r.body.get("model", "")).startswith(model_prefix)
        ]


def _number(pattern: str, model: str, default: int) -> int:
    match = re.match(pattern, model)
    return int(match.group(1)) if match else default


def _usage(prompt: int = 7, completion: int = len(WORDS)) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


TOOL_CALLS = [
    {
        "id": "call_a",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    },
    {
        "id": "call_b",
        "type": "function",
        "function": {"name": "get_time", "arguments": '{"tz": "CET"}'},
    },
]


class FakeOpenAIUpstream:
    def __init__(self) -> None:
        self.log = UpstreamLog()
        self.app = web.Application()
        self.app.router.add_post("/v1/chat/completions", self.chat)
        self.app.router.add_post("/v1/completions", self.completions)
        self.app.router.add_post("/v1/embeddings", self.embeddings)
        self.app.router.add_get("/v1/models", self.models)
        self.app.router.add_get("/health", self.health)

    async def _record(self, request: web.Request) -> dict[str, Any]:
        body = orjson.loads(await request.read())
        transport = request.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        self.log.received.append(
            Received(request.path, dict(request.headers), body, tuple(peer) if peer else None)
        )
        return body

    async def _scripted_failure(
        self, model: str, request: web.Request | None = None
    ) -> web.Response | None:
        if model.startswith("slow-"):
            await asyncio.sleep(_number(r"slow-(\d+)", model, 100) / 1000)
        if model.startswith("status-"):
            status = _number(r"status-(\d+)", model, 500)
            return _error(status, f"scripted status {status}")
        if model.startswith("ratelimit"):
            return _error(429, "slow down", headers={"Retry-After": "7"})
        if model.startswith("flaky-"):
            count = self.log.counters.get(model, 0) + 1
            self.log.counters[model] = count
            if count <= _number(r"flaky-(\d+)", model, 1):
                return _error(503, "flaky upstream is down")
        if model.startswith("hang") and not model.startswith("hang-midstream"):
            if request is None:
                await asyncio.sleep(3600)
            await _wait_until_closed(request)
            self.log.cancelled.append((model, time.monotonic()))
            return web.Response(status=499)
        return None

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        model = str(body.get("model", ""))
        failure = await self._scripted_failure(model, request)
        if failure is not None:
            return failure
        if body.get("stream"):
            return await self._stream_chat(request, body, model)
        if model.startswith("garbage"):
            return web.Response(body=b"<html>not json", content_type="application/json")
        message: dict[str, Any] = {"role": "assistant", "content": "".join(WORDS)}
        finish = "stop"
        if model.startswith("tools"):
            message = {"role": "assistant", "content": None, "tool_calls": TOOL_CALLS}
            finish = "tool_calls"
        return _json(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "system_fingerprint": "fp_fake",
                "choices": [
                    {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
                ],
                "usage": _usage(),
            }
        )

    async def _stream_chat(
        self, request: web.Request, body: dict[str, Any], model: str
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        base = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
        }
        delay = _number(r"drip-(\d+)", model, 0) / 1000
        include_usage = (body.get("stream_options") or {}).get("include_usage") is True
        try:
            await _send(
                response,
                {
                    **base,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": ""},
                            "finish_reason": None,
                        }
                    ],
                },
            )
            if model.startswith("tools"):
                await self._stream_tool_calls(response, base)
                finish = "tool_calls"
            else:
                for i, word in enumerate(WORDS):
                    if i == 2 and await self._midstream_fault(request, response, model):
                        return response
                    if i == 0 and model.startswith("big-"):
                        word = "x" * 1024 * _number(r"big-(\d+)", model, 256) + word
                    if i == 1 and model.startswith("gated"):
                        await self._wait_for_release(request, model)
                    if delay:
                        await asyncio.sleep(delay)
                    await _send(
                        response,
                        {
                            **base,
                            "choices": [
                                {"index": 0, "delta": {"content": word}, "finish_reason": None}
                            ],
                        },
                    )
                    self.log.progress[model] = self.log.progress.get(model, 0) + 1
                finish = "stop"
            await _send(
                response, {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
            )
            if include_usage:
                await _send(response, {**base, "choices": [], "usage": _usage()})
            await response.write(b"data: [DONE]\n\n")
            self.log.completed.append((model, time.monotonic()))
        except (ConnectionResetError, asyncio.CancelledError):
            self.log.cancelled.append((model, time.monotonic()))
            raise
        return response

    async def _stream_tool_calls(self, response: web.StreamResponse, base: dict[str, Any]) -> None:
        for index, call in enumerate(TOOL_CALLS):
            head = {
                "index": index,
                "id": call["id"],
                "type": "function",
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            await _send(
                response,
                {
                    **base,
                    "choices": [
                        {"index": 0, "delta": {"tool_calls": [head]}, "finish_reason": None}
                    ],
                },
            )
            args = call["function"]["arguments"]
            for part in (args[: len(args) // 2], args[len(args) // 2 :]):
                delta = {"tool_calls": [{"index": index, "function": {"arguments": part}}]}
                await _send(
                    response,
                    {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
                )

    async def _wait_for_release(self, request: web.Request, model: str) -> None:
        while model not in self.log.released:
            if request.transport is None or request.transport.is_closing():
                raise ConnectionResetError
            await asyncio.sleep(0.005)

    async def _midstream_fault(
        self, request: web.Request, response: web.StreamResponse, model: str
    ) -> bool:
        """Apply a mid-stream script; True when the stream must end here."""
        if model.startswith("hang-midstream"):
            await _wait_until_closed(request)
            self.log.cancelled.append((model, time.monotonic()))
            return True
        if model.startswith("disconnect-midstream"):
            assert request.transport is not None
            request.transport.abort()
            return True
        if model.startswith("truncated"):
            return True
        if model.startswith("error-midstream"):
            await response.write(
                b'data: {"error": {"message": "engine crashed", "type": "server_error"}}\n\n'
            )
            return True
        if model.startswith("garbage"):
            await response.write(b"data: {not json\n\n")
            return True
        return False

    async def completions(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        model = str(body.get("model", ""))
        failure = await self._scripted_failure(model, request)
        if failure is not None:
            return failure
        base = {
            "id": "cmpl-fake",
            "object": "text_completion",
            "created": int(time.time()),
            "model": model,
        }
        if not body.get("stream"):
            return _json(
                {
                    **base,
                    "choices": [
                        {
                            "index": 0,
                            "text": "".join(WORDS),
                            "finish_reason": "stop",
                            "logprobs": None,
                        }
                    ],
                    "usage": _usage(),
                }
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for word in WORDS:
            await _send(
                response,
                {
                    **base,
                    "choices": [
                        {"index": 0, "text": word, "finish_reason": None, "logprobs": None}
                    ],
                },
            )
        await _send(
            response,
            {
                **base,
                "choices": [{"index": 0, "text": "", "finish_reason": "stop", "logprobs": None}],
            },
        )
        if (body.get("stream_options") or {}).get("include_usage"):
            await _send(response, {**base, "choices": [], "usage": _usage()})
        await response.write(b"data: [DONE]\n\n")
        return response

    async def embeddings(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        failure = await self._scripted_failure(str(body.get("model", "")), request)
        if failure is not None:
            return failure
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = []
        for index, _ in enumerate(inputs):
            vector = [0.25 * (index + 1), -0.5, 1.0]
            embedding: Any = vector
            if body.get("encoding_format") == "base64":
                embedding = base64.b64encode(struct.pack("<3f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": embedding})
        return _json(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": 3 * len(inputs), "total_tokens": 3 * len(inputs)},
            }
        )

    async def models(self, request: web.Request) -> web.Response:
        del request
        return _json(
            {
                "object": "list",
                "data": [{"id": "ok", "object": "model", "created": 0, "owned_by": "fake"}],
            }
        )

    async def health(self, request: web.Request) -> web.Response:
        del request
        return web.Response(text="ok")


async def _wait_until_closed(request: web.Request | None) -> None:
    while request is not None and request.transport is not None:
        if request.transport.is_closing():
            return
        await asyncio.sleep(0.01)


async def _send(response: web.StreamResponse, chunk: dict[str, Any]) -> None:
    await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")


def _json(data: dict[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps(data), content_type="application/json")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {
        "error": {"message": message, "type": "upstream_test_error", "param": None, "code": None}
    }
    return web.Response(
        status=status, body=orjson.dumps(body), content_type="application/json", headers=headers
    )
