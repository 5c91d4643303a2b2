"""A fake Gemini API (``v1`` and ``v1beta``) on a real socket, scripted by model name.

It checks what the real API would refuse (x-goog-api-key, unknown top-level fields,
roles other than user/model, empty parts, a ``functionResponse`` naming no earlier
``functionCall``, a missing thought signature on a Gemini-3-style tool loop) and answers
with the real shapes: generateContent JSON, streamGenerateContent ``alt=sse`` events (no
terminator), batchEmbedContents / embedContent.

Model names: ``ok``, ``tools`` (two parallel function calls, then a final answer once
function responses arrive), ``thinking`` (a thought part, counted thinking tokens),
``thinking-tools`` (tool calls carrying thought signatures, required back), ``image``
(describes inline images), ``safety`` (prompt blocked), ``max`` (MAX_TOKENS),
``status-<code>``, ``ratelimit`` (429), ``overloaded`` (503), ``error-midstream``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

ANSWER = ("Hello", " from", " the", " fake", " Gemini", " upstream.")
FINAL = "Paris is sunny, 18 degrees; it is 14:00 CET."
THOUGHT = "The user wants weather and time: call both tools."
SIGNATURE = "Z2VtaW5pLXRob3VnaHQtc2lnbmF0dXJl"
CALLS = (("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"}))
TOP_LEVEL = {"contents", "systemInstruction", "generationConfig", "tools", "toolConfig"} | {
    "safetySettings",
    "cachedContent",
}
STATUS_NAMES = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class GeminiLog:
    received: list[Received] = field(default_factory=list)


class Invalid(Exception):
    pass


class FakeGeminiUpstream:
    def __init__(self, api_key: str = "gemini-fake-key") -> None:
        self.api_key = api_key
        self.log = GeminiLog()
        self.app = web.Application()
        for version in ("v1", "v1beta"):
            self.app.router.add_post(f"/{version}/models/{{target}}", self.dispatch)
            self.app.router.add_get(f"/{version}/models", self.models)

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["target"].partition(":")
        body = orjson.loads(await request.read())
        self.log.received.append(Received(request.path_qs, dict(request.headers), body))
        if request.headers.get("x-goog-api-key") != self.api_key:
            return _error(
                400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT"
            )
        if method in ("embedContent", "batchEmbedContents"):
            return _json(embeddings(method, body))
        try:
            validate(model, body)
        except Invalid as exc:
            return _error(400, str(exc), "INVALID_ARGUMENT")
        failure = scripted_failure(model)
        if failure is not None:
            return failure
        if method == "streamGenerateContent":
            return await self._stream(request, model, body)
        return _json(answer(model, body))

    async def _stream(
        self, request: web.Request, model: str, body: dict[str, Any]
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        whole = answer(model, body)
        if not whole.get("candidates"):
            await _send(response, whole)
            return response
        candidate = whole["candidates"][0]
        parts = candidate["content"]["parts"]
        pieces: list[list[dict[str, Any]]] = []
        for part in parts:
            if "text" in part and not part.get("thought"):
                pieces.extend([{"text": w}] for w in re.findall(r"\S+|\s+\S+", part["text"]))
            else:
                pieces.append([part])
        for i, piece in enumerate(pieces):
            if i == 2 and model.startswith("error-midstream"):
                error = {
                    "code": 503,
                    "message": "The model is overloaded.",
                    "status": "UNAVAILABLE",
                }
                await _send(response, {"error": error})
                return response
            event: dict[str, Any] = {
                "candidates": [{"content": {"role": "model", "parts": piece}, "index": 0}],
                "modelVersion": model,
                "responseId": "resp-fake",
            }
            if i == len(pieces) - 1:
                event["candidates"][0]["finishReason"] = candidate["finishReason"]
                event["usageMetadata"] = whole["usageMetadata"]
            await _send(response, event)
        return response

    async def models(self, request: web.Request) -> web.Response:
        if request.headers.get("x-goog-api-key") != self.api_key:
            return _error(400, "API key not valid.", "INVALID_ARGUMENT")
        return _json({"models": [{"name": "models/gemini-fake", "displayName": "Fake"}]})


def validate(model: str, body: dict[str, Any]) -> None:
    unknown = set(body) - TOP_LEVEL
    if unknown:
        raise Invalid(f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}"')
    contents = body.get("contents") or []
    if not contents:
        raise Invalid("* GenerateContentRequest.contents: contents is not specified")
    called: list[str] = []
    for i, content in enumerate(contents):
        if content.get("role") not in ("user", "model"):
            raise Invalid(f"Please use a valid role: user, model. (contents[{i}])")
        if not content.get("parts"):
            raise Invalid(
                f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
            )
        calls = [p for p in content["parts"] if "functionCall" in p]
        called.extend(p["functionCall"]["name"] for p in calls)
        # like Gemini 3: the first function call of a turn must carry its signature
        if (
            model.startswith("thinking-tools")
            and calls
            and calls[0].get("thoughtSignature") != SIGNATURE
        ):
            raise Invalid("Function call is missing a thought_signature in functionCall parts.")
        for part in content["parts"]:
            if "functionResponse" in part and part["functionResponse"]["name"] not in called:
                raise Invalid(
                    "Please ensure that function response turn comes immediately after a "
                    "function call turn."
                )


def scripted_failure(model: str) -> web.Response | None:
    if model.startswith("status-"):
        status = int(model.split("-")[1])
        return _error(status, f"scripted status {status}", STATUS_NAMES.get(status, "INTERNAL"))
    if model.startswith("ratelimit"):
        return _error(429, "Resource has been exhausted (e.g. check quota).", "RESOURCE_EXHAUSTED")
    if model.startswith("overloaded"):
        return _error(503, "The model is overloaded. Please try again later.", "UNAVAILABLE")
    return None


def answer(model: str, body: dict[str, Any]) -> dict[str, Any]:
    usage = {"promptTokenCount": 11, "candidatesTokenCount": 6, "totalTokenCount": 17}
    if model.startswith("safety"):
        feedback = {"blockReason": "SAFETY", "safetyRatings": []}
        return {"promptFeedback": feedback, "usageMetadata": usage, "modelVersion": model}
    last = body["contents"][-1]["parts"]
    answered = any("functionResponse" in p for p in last)
    finish = "STOP"
    if model.startswith(("tools", "thinking-tools")) and not answered:
        parts: list[dict[str, Any]] = [{"functionCall": {"name": n, "args": a}} for n, a in CALLS]
        if model.startswith("thinking"):
            parts[0]["thoughtSignature"] = SIGNATURE
    elif model.startswith(("tools", "thinking-tools")):
        parts = [{"text": FINAL}]
    elif model.startswith("image"):
        kinds = [
            p["inlineData"]["mimeType"]
            for c in body["contents"]
            for p in c["parts"]
            if "inlineData" in p
        ]
        parts = [{"text": "images: " + ", ".join(kinds)}]
    else:
        parts = [{"text": "".join(ANSWER)}]
        finish = "MAX_TOKENS" if model.startswith("max") else "STOP"
    if model.startswith("thinking") and not answered:
        parts.insert(0, {"text": THOUGHT, "thought": True})
        usage = {**usage, "thoughtsTokenCount": 9, "totalTokenCount": 26}
    candidate = {"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}
    return {
        "candidates": [candidate],
        "usageMetadata": usage,
        "modelVersion": model,
        "responseId": "resp-fake",
    }


def embeddings(method: str, body: dict[str, Any]) -> dict[str, Any]:
    def vector(content: dict[str, Any], size: int | None) -> dict[str, Any]:
        text = "".join(p.get("text", "") for p in content["parts"])
        return {"values": [float(len(text)), 0.5, -1.0, 0.25][: size or 4]}

    if method == "embedContent":
        return {"embedding": vector(body["content"], body.get("outputDimensionality"))}
    return {
        "embeddings": [
            vector(r["content"], r.get("outputDimensionality")) for r in body["requests"]
        ]
    }


async def _send(response: web.StreamResponse, data: dict[str, Any]) -> None:
    await response.write(b"data: " + orjson.dumps(data) + b"\r\n\r\n")


def _json(data: dict[str, Any]) -> web.Response:
    return web.Response(body=orjson.dumps(data), content_type="application/json")


def _error(status: int, message: str, name: str) -> web.Response:
    body = {"error": {"code": status, "message": message, "status": name}}
    return web.Response(status=status, body=orjson.dumps(body), content_type="application/json")
