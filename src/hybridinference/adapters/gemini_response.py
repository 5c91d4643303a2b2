"""Gemini responses → OpenAI shapes: completions, stream chunks, embeddings.

Gemini gives function calls no ids: the adapter's id factory makes them, and each call's
thought signature rides along in ``extra_content.google.thought_signature`` (Gemini's own
OpenAI-compatible convention) so tool loops survive a round trip. Gemini says ``STOP``
when it calls tools: any function call makes the finish reason ``tool_calls``. Thinking
tokens are billed as output, so they count as completion tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hybridinference.adapters.base import JSONObject
from hybridinference.adapters.http import scrub_credentials
from hybridinference.adapters.parts import dump_arguments, encode_embedding, set_reasoning
from hybridinference.errors import (
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamServerError,
)

FINISH_REASONS: Mapping[str, str] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    **{
        reason: "content_filter"
        for reason in (
            "SAFETY",
            "RECITATION",
            "LANGUAGE",
            "BLOCKLIST",
            "PROHIBITED_CONTENT",
            "SPII",
            "IMAGE_SAFETY",
            "IMAGE_PROHIBITED_CONTENT",
            "IMAGE_RECITATION",
        )
    },
}
#: a Google error status in a stream → the gateway error it becomes
STREAM_ERRORS: Mapping[str, Callable[[str], UpstreamError]] = {
    "RESOURCE_EXHAUSTED": UpstreamRateLimited,
    "INVALID_ARGUMENT": lambda m: UpstreamRejected(m, status_code=400),
}


def usage_to_openai(meta: Mapping[str, Any] | None) -> JSONObject:
    meta = meta or {}
    prompt = _int(meta.get("promptTokenCount")) + _int(meta.get("toolUsePromptTokenCount"))
    thoughts = _int(meta.get("thoughtsTokenCount"))
    completion = _int(meta.get("candidatesTokenCount")) + thoughts
    out: JSONObject = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": _int(meta.get("totalTokenCount")) or prompt + completion,
    }
    cached = _int(meta.get("cachedContentTokenCount"))
    if cached:
        out["prompt_tokens_details"] = {"cached_tokens": cached}
    if thoughts:
        out["completion_tokens_details"] = {"reasoning_tokens": thoughts}
    return out


def blocked(data: JSONObject, route: str) -> None:
    """A prompt Gemini refused outright (no candidates) is a clear 400, not an empty answer."""
    if data.get("candidates"):
        return
    reason = (data.get("promptFeedback") or {}).get("blockReason")
    if reason:
        raise UpstreamRejected(
            f"{route} blocked the prompt (Gemini blockReason {reason}).",
            status_code=400,
            code="content_blocked",
        )


@dataclass(slots=True)
class Turn:
    """What one response (or one stream event) holds, in OpenAI terms."""

    text: list[str] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)
    calls: list[JSONObject] = field(default_factory=list)
    native_finish: str | None = None


def read_candidate(data: JSONObject, new_id: Callable[[], str]) -> Turn:
    turn = Turn()
    candidates = data.get("candidates") or [{}]
    candidate = candidates[0]
    for part in (candidate.get("content") or {}).get("parts") or ():
        if "functionCall" in part:
            call = part["functionCall"]
            entry: JSONObject = {
                "id": call.get("id") or new_id(),
                "type": "function",
                "function": {
                    "name": call.get("name", ""),
                    "arguments": dump_arguments(call.get("args")),
                },
            }
            if part.get("thoughtSignature"):
                entry["extra_content"] = {"google": {"thought_signature": part["thoughtSignature"]}}
            turn.calls.append(entry)
        elif isinstance(part.get("text"), str):
            (turn.thoughts if part.get("thought") else turn.text).append(part["text"])
    turn.native_finish = candidate.get("finishReason")
    return turn


def finish_reason(turn: Turn, had_calls: bool) -> str:
    if had_calls:
        return "tool_calls"
    return FINISH_REASONS.get(turn.native_finish or "STOP", "stop")


def from_gemini(
    data: JSONObject, model: str, created: int, new_id: Callable[[], str]
) -> JSONObject:
    turn = read_candidate(data, new_id)
    message: JSONObject = {
        "role": "assistant",
        "content": "".join(turn.text) if turn.text or not turn.calls else None,
    }
    if turn.calls:
        message["tool_calls"] = turn.calls
    if turn.thoughts:
        set_reasoning(message, "".join(turn.thoughts))
    choice = {
        "index": 0,
        "message": message,
        "finish_reason": finish_reason(turn, bool(turn.calls)),
        "logprobs": None,
        "native_finish_reason": turn.native_finish,
    }
    return {
        "id": data.get("responseId") or new_id(),
        "object": "chat.completion",
        "created": created,
        "model": data.get("modelVersion") or model,
        "choices": [choice],
        "usage": usage_to_openai(data.get("usageMetadata")),
    }


@dataclass(slots=True)
class GeminiStreamDecoder:
    """Feed it each streamed ``GenerateContentResponse``; it returns OpenAI chunks."""

    route: str
    model: str
    created: int
    new_id: Callable[[], str]
    base: JSONObject = field(default_factory=dict)
    tool_calls: int = 0
    usage: JSONObject | None = None
    finished: bool = False

    def feed(self, data: JSONObject) -> list[JSONObject]:
        error = data.get("error")
        if isinstance(error, dict):
            detail = scrub_credentials(str(error.get("message", "unknown error")))
            message = f"{self.route} failed mid-stream: {detail}"
            factory = STREAM_ERRORS.get(str(error.get("status")), UpstreamServerError)
            raise factory(message[:600])
        chunks: list[JSONObject] = []
        if not self.base:
            blocked(data, self.route)
            self.base = {
                "id": data.get("responseId") or self.new_id(),
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": data.get("modelVersion") or self.model,
            }
            chunks.append(self._chunk({"role": "assistant", "content": ""}))
        if data.get("usageMetadata"):
            self.usage = usage_to_openai(data["usageMetadata"])
        turn = read_candidate(data, self.new_id)
        if turn.thoughts:
            delta: JSONObject = {}
            set_reasoning(delta, "".join(turn.thoughts))
            chunks.append(self._chunk(delta))
        if turn.text:
            chunks.append(self._chunk({"content": "".join(turn.text)}))
        for call in turn.calls:
            chunks.append(self._chunk({"tool_calls": [{"index": self.tool_calls, **call}]}))
            self.tool_calls += 1
        if turn.native_finish:
            self.finished = True
            chunk = self._chunk({}, finish_reason(turn, self.tool_calls > 0))
            chunk["choices"][0]["native_finish_reason"] = turn.native_finish
            chunks.append(chunk)
        return chunks

    def end(self) -> list[JSONObject]:
        if self.usage is None:
            return []
        return [{**self.base, "choices": [], "usage": self.usage}]

    def _chunk(self, delta: JSONObject, finish: str | None = None) -> JSONObject:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return {**self.base, "choices": [choice]}


def from_gemini_embeddings(data: JSONObject, model: str, encoding: str | None) -> JSONObject:
    vectors = [e.get("values") or [] for e in data.get("embeddings") or ()]
    items = []
    for index, vector in enumerate(vectors):
        embedding = encode_embedding(vector, encoding)
        items.append({"object": "embedding", "index": index, "embedding": embedding})
    return {
        "object": "list",
        "data": items,
        "model": model,
        "usage": {"prompt_tokens": 0, "total_tokens": 0},  # Gemini does not report them
    }


def _int(value: object) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
