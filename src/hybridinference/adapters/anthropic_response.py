"""Anthropic Messages responses ↔ OpenAI chat completions, both directions.

Anthropic → OpenAI serves the Anthropic adapter; OpenAI → Anthropic serves the gateway's
own ``/v1/messages``. Usage arithmetic: Anthropic's ``input_tokens`` excludes cache reads
and writes, OpenAI's ``prompt_tokens`` includes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from hybridinference.adapters.base import JSONObject
from hybridinference.adapters.parts import (
    ANTHROPIC_FORMAT,
    dump_arguments,
    pack_signatures,
    reasoning_details,
    reasoning_text,
    set_reasoning,
    text_of,
)

FINISH_REASONS: Mapping[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
STOP_REASONS: Mapping[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def finish_reason(stop_reason: str | None) -> str:
    return FINISH_REASONS.get(stop_reason or "end_turn", "stop")


def stop_reason(finish: str | None, has_tool_calls: bool) -> str:
    if has_tool_calls and finish != "length":  # cut short, the last call may be partial
        return "tool_use"
    return STOP_REASONS.get(finish or "stop", "end_turn")


def usage_to_openai(usage: Mapping[str, Any] | None) -> JSONObject:
    usage = usage or {}
    read = _int(usage.get("cache_read_input_tokens"))
    write = _int(usage.get("cache_creation_input_tokens"))
    prompt = _int(usage.get("input_tokens")) + read + write
    completion = _int(usage.get("output_tokens"))
    out: JSONObject = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }
    if read or write:
        out["prompt_tokens_details"] = {"cached_tokens": read, "cache_write_tokens": write}
    return out


def usage_to_anthropic(usage: Mapping[str, Any] | None) -> JSONObject:
    usage = usage or {}
    details = usage.get("prompt_tokens_details") or {}
    read = _int(details.get("cached_tokens") or usage.get("prompt_cache_hit_tokens"))
    write = _int(details.get("cache_write_tokens"))
    return {
        "input_tokens": max(0, _int(usage.get("prompt_tokens")) - read - write),
        "output_tokens": _int(usage.get("completion_tokens")),
        "cache_read_input_tokens": read,
        "cache_creation_input_tokens": write,
    }


def from_anthropic(message: JSONObject, created: int) -> JSONObject:
    """An Anthropic ``message`` as an OpenAI ``chat.completion``."""
    texts: list[str] = []
    thoughts: list[str] = []
    details: list[JSONObject] = []
    calls: list[JSONObject] = []
    for block in message.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "thinking":
            thoughts.append(block.get("thinking", ""))
            details.append(_detail("reasoning.text", len(details), block))
        elif kind == "redacted_thinking":
            details.append(_detail("reasoning.encrypted", len(details), block))
        elif kind == "tool_use":
            calls.append(
                {
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {
                        "name": block.get("name", ""),
                        "arguments": dump_arguments(block.get("input")),
                    },
                }
            )
    out: JSONObject = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
    }
    if calls:
        out["tool_calls"] = calls
    if thoughts:
        set_reasoning(out, "".join(thoughts))
    if details:
        out["reasoning_details"] = details
    native = message.get("stop_reason")
    choice = {
        "index": 0,
        "message": out,
        "finish_reason": finish_reason(native),
        "logprobs": None,
        "native_finish_reason": native,
    }
    return {
        "id": message.get("id", "msg"),
        "object": "chat.completion",
        "created": created,
        "model": message.get("model", ""),
        "choices": [choice],
        "usage": usage_to_openai(message.get("usage")),
    }


def _detail(kind: str, index: int, block: JSONObject) -> JSONObject:
    detail: JSONObject = {"type": kind, "index": index, "format": ANTHROPIC_FORMAT}
    if kind == "reasoning.text":
        detail["text"] = block.get("thinking", "")
        detail["signature"] = block.get("signature", "")
    else:
        detail["data"] = block.get("data", "")
    return detail


def to_anthropic_message(completion: JSONObject, model: str, message_id: str) -> JSONObject:
    """An OpenAI ``chat.completion`` as an Anthropic ``message`` (first choice)."""
    choices = completion.get("choices") or [{}]
    choice = choices[0]
    message = choice.get("message") or {}
    content = thinking_blocks(message)
    calls = message.get("tool_calls") or []
    packed = pack_signatures(calls)
    if packed is not None:
        content.append({"type": "thinking", "thinking": "", "signature": packed})
    text = text_of(message.get("content"))
    if text:
        content.append({"type": "text", "text": text})
    for call in calls:
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id", ""),
                "name": function.get("name", ""),
                "input": arguments_object(function.get("arguments")),
            }
        )
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason"), bool(calls)),
        "stop_sequence": None,
        "usage": usage_to_anthropic(completion.get("usage")),
    }


def thinking_blocks(message: JSONObject) -> list[JSONObject]:
    """Thinking blocks of an OpenAI-shaped assistant message, signatures included."""
    blocks: list[JSONObject] = []
    for detail in reasoning_details(message):
        if detail.get("type") == "reasoning.encrypted":
            blocks.append({"type": "redacted_thinking", "data": detail.get("data", "")})
        elif detail.get("type") == "reasoning.text":
            blocks.append(
                {
                    "type": "thinking",
                    "thinking": detail.get("text") or "",
                    "signature": detail.get("signature") or "",
                }
            )
    if not blocks:
        text = reasoning_text(message)
        if text:
            blocks.append({"type": "thinking", "thinking": text, "signature": ""})
    return blocks


def arguments_object(arguments: Any) -> JSONObject:
    """Tool-call arguments as an object; text that is not a JSON object is kept whole."""
    if isinstance(arguments, dict):
        return arguments
    try:
        value = orjson.loads(arguments or "{}")
    except (orjson.JSONDecodeError, TypeError):
        return {"raw_arguments": str(arguments)}
    return value if isinstance(value, dict) else {"value": value}


def _int(value: object) -> int:
    return value if isinstance(value, int) and value >= 0 else 0
