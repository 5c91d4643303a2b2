"""A fake Ollama native API on a real socket, scripted by model name.

It checks what Ollama would refuse or misread (roles, images that are not raw base64,
tool-call arguments that are not objects, a missing ``stream`` field — Ollama streams by
default) and answers with the real shapes: ``/api/chat`` JSON or NDJSON lines ending in
``done: true`` with counts and nanosecond durations, ``/api/embed``, ``/api/tags``.

Model names: ``ok``, ``tools`` (two tool calls in one line, then a final answer once
tool results arrive), ``thinking``, ``image``, ``max`` (``done_reason: length``),
``status-<code>``, ``busy`` (503), ``missing`` (404 unknown model), ``error-midstream``.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

ANSWER = ("Hello", " from", " the", " fake", " Ollama", " upstream.")
FINAL = "Paris is sunny, 18 degrees; it is 14:00 CET."
THOUGHT = "The user wants weather and time: call both tools."
CALLS = (("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"}))
CREATED = "2026-11-29T12:00:00.000000Z"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class OllamaLog:
    received: list[Received] = field(default_factory=list)


class Invalid(Exception):
    pass


class FakeOllamaUpstream:
    def __init__(self) -> None:
        self.log = OllamaLog()
        self.app = web.Application()
        self.app.router.add_post("/api/chat", self.chat)
        self.app.router.add_post("/api/embed", self.embed)
        self.app.router.add_get("/api/tags", self.tags)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        self.log.received.append(Received(request.path, dict(request.headers), body))
        model = str(body.get("model", ""))
        try:
            validate(body)
        except Invalid as exc:
            return _error(400, str(exc))
        failure = scripted_failure(model)
        if failure is not None:
            return failure
        message, done_reason = answer(model, body)
        if body.get("stream", True):
            return await self._stream(request, model, message, done_reason)
        return _json({**_line(model, message), **_done(done_reason)})

    async def _stream(
        self, request: web.Request, model: str, message: dict[str, Any], done_reason: str
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        pieces: list[dict[str, Any]] = []
        if message.get("thinking"):
            pieces.append({"role": "assistant", "content": "", "thinking": message["thinking"]})
        if message.get("tool_calls"):
            pieces.append({"role": "assistant", "content": "", "tool_calls": message["tool_calls"]})
        for word in re.findall(r"\S+|\s+\S+", message.get("content", "")):
            pieces.append({"role": "assistant", "content": word})
        for i, piece in enumerate(pieces):
            if i == 2 and model.startswith("error-midstream"):
                await response.write(
                    b'{"error":"an error was encountered while running the model"}\n'
                )
                return response
            await response.write(orjson.dumps(_line(model, piece)) + b"\n")
        last = {**_line(model, {"role": "assistant", "content": ""}), **_done(done_reason)}
        await response.write(orjson.dumps(last) + b"\n")
        return response

    async def embed(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.log.received.append(Received(request.path, dict(request.headers), body))
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        size = body.get("dimensions") or 3
        vectors = [[float(len(text)), 0.5, -1.0][:size] for text in inputs]
        return _json(
            {
                "model": body["model"],
                "embeddings": vectors,
                "total_duration": 1000,
                "load_duration": 10,
                "prompt_eval_count": 2 * len(inputs),
            }
        )

    async def tags(self, request: web.Request) -> web.Response:
        del request
        details = {"format": "gguf", "family": "llama", "parameter_size": "1B"}
        model = {"name": "ok:latest", "model": "ok:latest", "modified_at": CREATED}
        return _json({"models": [{**model, "size": 1, "digest": "abc", "details": details}]})


def validate(body: dict[str, Any]) -> None:
    if "stream" not in body:
        raise Invalid("the gateway must say whether to stream (Ollama defaults to streaming)")
    for i, message in enumerate(body.get("messages") or ()):
        if message.get("role") not in ("system", "user", "assistant", "tool"):
            raise Invalid(f"invalid role '{message.get('role')}' in messages[{i}]")
        if not isinstance(message.get("content", ""), str):
            raise Invalid(f"json: cannot unmarshal array into messages[{i}].content of type string")
        for image in message.get("images") or ():
            try:
                base64.b64decode(image, validate=True)
            except (binascii.Error, ValueError):
                raise Invalid("illegal base64 data in images") from None
        for call in message.get("tool_calls") or ():
            if not isinstance(call["function"].get("arguments"), dict):
                raise Invalid("json: cannot unmarshal string into arguments of type object")


def scripted_failure(model: str) -> web.Response | None:
    if model.startswith("status-"):
        status = int(model.split("-")[1])
        return _error(status, f"scripted status {status}")
    if model.startswith("busy"):
        return _error(503, "server busy, please try again.  maximum pending requests exceeded")
    if model.startswith("missing"):
        return _error(404, f"model '{model}' not found")
    return None


def answer(model: str, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    last = body["messages"][-1]
    if model.startswith("tools"):
        if last["role"] == "tool":
            return {"role": "assistant", "content": FINAL}, "stop"
        calls = [
            {"function": {"index": i, "name": n, "arguments": a}} for i, (n, a) in enumerate(CALLS)
        ]
        return {"role": "assistant", "content": "", "tool_calls": calls}, "stop"
    if model.startswith("image"):
        count = sum(len(m.get("images") or ()) for m in body["messages"])
        return {"role": "assistant", "content": f"images: {count}"}, "stop"
    message: dict[str, Any] = {"role": "assistant", "content": "".join(ANSWER)}
    if model.startswith("thinking"):
        message["thinking"] = THOUGHT
    return message, "length" if model.startswith("max") else "stop"


def _line(model: str, message: dict[str, Any]) -> dict[str, Any]:
    return {"model": model, "created_at": CREATED, "message": message, "done": False}


def _done(reason: str) -> dict[str, Any]:
    return {
        "done": True,
        "done_reason": reason,
        "total_duration": 5_000_000,
        "load_duration": 1_000_000,
        "prompt_eval_count": 9,
        "prompt_eval_duration": 1_000_000,
        "eval_count": 6,
        "eval_duration": 3_000_000,
    }


def _json(data: dict[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps(data), content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return web.Response(
        status=status, body=orjson.dumps({"error": message}), content_type="application/json"
    )
