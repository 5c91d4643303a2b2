"""Anthropic's named SSE events ↔ OpenAI chat chunks, both directions, incrementally.

Anthropic block indices count every content block; OpenAI tool-call indices count tool
calls only, so each direction keeps the map. Anthropic usage in ``message_delta`` is
cumulative. The OpenAI → Anthropic side opens a block lazily on the first delta of its
kind and closes the previous one first; usage arrives after the finish chunk, so the
closing ``message_delta`` is only written when the upstream stream ends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hybridinference.adapters.anthropic_response import (
    finish_reason,
    stop_reason,
    usage_to_anthropic,
    usage_to_openai,
)
from hybridinference.adapters.base import JSONObject
from hybridinference.adapters.http import scrub_credentials
from hybridinference.adapters.parts import (
    ANTHROPIC_FORMAT,
    pack_signatures,
    reasoning_text,
    set_reasoning,
)
from hybridinference.errors import (
    UpstreamError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamServerError,
)

#: an ``error`` event's type → the gateway error it becomes
STREAM_ERRORS: Mapping[str, Callable[[str], UpstreamError]] = {
    "rate_limit_error": UpstreamRateLimited,
    "invalid_request_error": lambda m: UpstreamRejected(m, status_code=400),
}


@dataclass(slots=True)
class AnthropicToOpenAI:
    """Feed it Anthropic events; it returns the OpenAI chunks they become."""

    route: str
    created: int
    base: JSONObject = field(default_factory=dict)
    tool_index: dict[int, int] = field(default_factory=dict)  # block index → tool index
    thinking_index: dict[int, int] = field(default_factory=dict)
    usage: JSONObject = field(default_factory=dict)
    finished: bool = False

    def feed(self, name: str | None, data: JSONObject) -> list[JSONObject]:
        kind = data.get("type", name)
        handler = _DECODERS.get(str(kind))
        return handler(self, data) if handler is not None else []

    def _chunk(self, delta: JSONObject, finish: str | None = None) -> JSONObject:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return {**self.base, "choices": [choice]}

    def _start(self, data: JSONObject) -> list[JSONObject]:
        message = data.get("message") or {}
        self.base = {
            "id": message.get("id", "msg"),
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": message.get("model", ""),
        }
        self.usage.update(message.get("usage") or {})
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, data: JSONObject) -> list[JSONObject]:
        block = data.get("content_block") or {}
        index = data.get("index", 0)
        if block.get("type") == "tool_use":
            position = self.tool_index[index] = len(self.tool_index)
            head = {
                "index": position,
                "id": block.get("id", ""),
                "type": "function",
                "function": {"name": block.get("name", ""), "arguments": ""},
            }
            return [self._chunk({"tool_calls": [head]})]
        if block.get("type") in ("thinking", "redacted_thinking"):
            self.thinking_index[index] = len(self.thinking_index)
            if block.get("type") == "redacted_thinking":
                detail = {"type": "reasoning.encrypted", "data": block.get("data", "")}
                return [self._detail(index, detail)]
        if block.get("type") == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        return []

    def _detail(self, index: int, detail: JSONObject) -> JSONObject:
        entry = {**detail, "index": self.thinking_index.get(index, 0), "format": ANTHROPIC_FORMAT}
        return self._chunk({"reasoning_details": [entry]})

    def _block_delta(self, data: JSONObject) -> list[JSONObject]:
        delta = data.get("delta") or {}
        index = data.get("index", 0)
        kind = delta.get("type")
        if kind == "text_delta":
            return [self._chunk({"content": delta.get("text", "")})]
        if kind == "input_json_delta":
            piece = delta.get("partial_json", "")
            if not piece:
                return []
            call = {"index": self.tool_index.get(index, 0), "function": {"arguments": piece}}
            return [self._chunk({"tool_calls": [call]})]
        if kind == "thinking_delta":
            # text in both reasoning fields, and in reasoning_details (merged by index, as
            # OpenRouter streams it) so a client can send the signed block back whole
            text = delta.get("thinking", "")
            chunk = self._detail(index, {"type": "reasoning.text", "text": text})
            set_reasoning(chunk["choices"][0]["delta"], text)
            return [chunk]
        if kind == "signature_delta":
            detail = {"type": "reasoning.text", "signature": delta.get("signature", "")}
            return [self._detail(index, detail)]
        return []

    def _message_delta(self, data: JSONObject) -> list[JSONObject]:
        self.usage.update({k: v for k, v in (data.get("usage") or {}).items() if v is not None})
        native = (data.get("delta") or {}).get("stop_reason")
        if native is None:
            return []
        self.finished = True
        chunk = self._chunk({}, finish_reason(native))
        chunk["choices"][0]["native_finish_reason"] = native
        return [chunk]

    def _stop(self, _data: JSONObject) -> list[JSONObject]:
        return [{**self.base, "choices": [], "usage": usage_to_openai(self.usage)}]

    def _error(self, data: JSONObject) -> list[JSONObject]:
        error = data.get("error") or {}
        detail = scrub_credentials(str(error.get("message", "unknown error")))
        message = f"{self.route} failed mid-stream: {detail}"
        factory = STREAM_ERRORS.get(str(error.get("type")), UpstreamServerError)
        raise factory(message[:600])


_DECODERS: Mapping[str, Callable[[AnthropicToOpenAI, JSONObject], list[JSONObject]]] = {
    "message_start": AnthropicToOpenAI._start,
    "content_block_start": AnthropicToOpenAI._block_start,
    "content_block_delta": AnthropicToOpenAI._block_delta,
    "message_delta": AnthropicToOpenAI._message_delta,
    "message_stop": AnthropicToOpenAI._stop,
    "error": AnthropicToOpenAI._error,
}

Event = tuple[str, JSONObject]


@dataclass(slots=True)
class OpenAIToAnthropic:
    """Feed it OpenAI chunks; it returns the Anthropic events they become."""

    message_id: str
    model: str
    open_kind: str | None = None  # "text", "thinking:<n>", "redacted:<n>" or "tool:<n>"
    block: int = -1
    signature: str = ""
    finish: str | None = None
    tool_calls: int = 0
    usage: JSONObject = field(default_factory=dict)

    def start(self) -> list[Event]:
        message: JSONObject = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return [("message_start", {"type": "message_start", "message": message})]

    def feed(self, chunk: JSONObject) -> list[Event]:
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        events: list[Event] = []
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            events.extend(self._delta(delta))
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
        return events

    def _delta(self, delta: JSONObject) -> list[Event]:
        events: list[Event] = []
        details = [d for d in delta.get("reasoning_details") or () if isinstance(d, dict)]
        # one thinking block per reasoning_details index (none given: one block in all)
        index = next((d["index"] for d in details if isinstance(d.get("index"), int)), -1)
        thought = reasoning_text(delta)
        if thought:
            events += self._open(f"thinking:{index}", _empty_thinking())
            events.append(self._delta_event({"type": "thinking_delta", "thinking": thought}))
        for detail in details:
            at = detail.get("index", index)
            if detail.get("type") == "reasoning.encrypted":
                block = {"type": "redacted_thinking", "data": detail.get("data", "")}
                events += self._open(f"redacted:{at}", block)
            elif detail.get("signature"):
                events += self._open(f"thinking:{at}", _empty_thinking())
                self.signature += detail["signature"]
        text = delta.get("content")
        if isinstance(text, str) and text:
            events += self._open("text", {"type": "text", "text": ""})
            events.append(self._delta_event({"type": "text_delta", "text": text}))
        for call in delta.get("tool_calls") or ():
            events += self._tool_call(call)
        return events

    def _tool_call(self, call: JSONObject) -> list[Event]:
        function = call.get("function") or {}
        kind = f"tool:{call.get('index', 0)}"
        events: list[Event] = []
        if kind != self.open_kind:
            packed = pack_signatures([call])
            if packed is not None:  # a Gemini thought signature: its own thinking block
                events += self._open(f"thinking:gemini-{call.get('index', 0)}", _empty_thinking())
                self.signature = packed
            self.tool_calls += 1
            block = {
                "type": "tool_use",
                "id": call.get("id") or f"toolu_{self.message_id}_{call.get('index', 0)}",
                "name": function.get("name", ""),
                "input": {},
            }
            events += self._open(kind, block)
        arguments = function.get("arguments")
        if arguments:
            events.append(
                self._delta_event({"type": "input_json_delta", "partial_json": arguments})
            )
        return events

    def _open(self, kind: str, block: JSONObject) -> list[Event]:
        if kind == self.open_kind:
            return []
        events = self._close()
        self.block += 1
        self.open_kind = kind
        start = {"type": "content_block_start", "index": self.block, "content_block": block}
        return [*events, ("content_block_start", start)]

    def _close(self) -> list[Event]:
        if self.open_kind is None:
            return []
        events: list[Event] = []
        if self.open_kind.startswith("thinking"):
            delta = {"type": "signature_delta", "signature": self.signature}
            events.append(self._delta_event(delta))
            self.signature = ""
        self.open_kind = None
        stop = {"type": "content_block_stop", "index": self.block}
        return [*events, ("content_block_stop", stop)]

    def _delta_event(self, delta: JSONObject) -> Event:
        return (
            "content_block_delta",
            {"type": "content_block_delta", "index": self.block, "delta": delta},
        )

    def end(self) -> list[Event]:
        usage: dict[str, Any] = usage_to_anthropic(self.usage)
        delta = {
            "stop_reason": stop_reason(self.finish, self.tool_calls > 0),
            "stop_sequence": None,
        }
        message_delta = {"type": "message_delta", "delta": delta, "usage": usage}
        return [
            *self._close(),
            ("message_delta", message_delta),
            ("message_stop", {"type": "message_stop"}),
        ]


def _empty_thinking() -> JSONObject:
    return {"type": "thinking", "thinking": "", "signature": ""}
