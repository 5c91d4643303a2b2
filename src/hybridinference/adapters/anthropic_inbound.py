"""Anthropic Messages request → OpenAI chat request: how the gateway's ``/v1/messages``
reaches any configured model (an Anthropic one goes back out through the Anthropic
adapter, with thinking signatures carried in ``reasoning_details``).

``tool_result`` blocks become ``tool`` messages (one per block, in order, before the rest
of their user turn); ``tool_use`` inputs become JSON-string arguments. Streams always ask
for usage, which Anthropic clients always get.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hybridinference.adapters.base import JSONObject
from hybridinference.adapters.parts import (
    ANTHROPIC_FORMAT,
    data_url,
    dump_arguments,
    set_reasoning,
    sign_call,
    unpack_signatures,
)
from hybridinference.errors import InvalidRequest

TOOL_CHOICE: Mapping[str, str] = {"auto": "auto", "any": "required", "none": "none"}
#: thinking budget → the OpenAI effort it is closest to (upper bounds)
EFFORT_FOR_BUDGET = ((2048, "low"), (8192, "medium"), (24576, "high"))
COPIED = ("temperature", "top_p", "top_k")


def to_openai_request(body: JSONObject) -> JSONObject:
    messages: list[JSONObject] = []
    system = body.get("system")
    if isinstance(system, str) and system:
        messages.append({"role": "system", "content": system})
    elif isinstance(system, list) and system:
        messages.append({"role": "system", "content": [_text_part(b) for b in system]})
    for message in body["messages"]:
        if message["role"] == "assistant":
            messages.append(_assistant(message["content"]))
        else:
            messages.extend(_user(message["content"]))
    out: JSONObject = {"model": body["model"], "messages": messages}
    out["max_tokens"] = body["max_tokens"]
    for key in COPIED:
        if body.get(key) is not None:
            out[key] = body[key]
    if body.get("stop_sequences"):
        out["stop"] = list(body["stop_sequences"])
    if body.get("stream"):
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    _tools(body, out)
    _thinking(body, out)
    user = (body.get("metadata") or {}).get("user_id")
    if isinstance(user, str) and user:
        out["user"] = user
    fmt = (body.get("output_config") or {}).get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        schema = {"name": "output", "schema": fmt.get("schema") or {}}
        out["response_format"] = {"type": "json_schema", "json_schema": schema}
    return out


def _text_part(block: JSONObject) -> JSONObject:
    part: JSONObject = {"type": "text", "text": block.get("text", "")}
    if "cache_control" in block:
        part["cache_control"] = block["cache_control"]
    return part


def _user(content: str | list[JSONObject]) -> list[JSONObject]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    out: list[JSONObject] = []
    parts: list[JSONObject] = []
    for block in content:
        kind = block.get("type")
        if kind == "tool_result":
            out.append(
                {
                    "role": "tool",
                    "tool_call_id": block.get("tool_use_id", ""),
                    "content": _tool_result_content(block.get("content")),
                }
            )
        elif kind == "image":
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block)}})
        elif kind == "text":
            parts.append(_text_part(block))
        else:
            raise _unsupported_block(kind)
    if parts:
        out.append({"role": "user", "content": parts})
    return out


def _tool_result_content(content: Any) -> str | list[JSONObject]:
    if isinstance(content, list):
        return [_text_part(b) for b in content if isinstance(b, dict) and b.get("type") == "text"]
    return content if isinstance(content, str) else ""


def _image_url(block: JSONObject) -> str:
    source = block.get("source") or {}
    if source.get("type") == "base64":
        return data_url(source.get("media_type", "image/png"), source.get("data", ""))
    return str(source.get("url", ""))


def _assistant(content: str | list[JSONObject]) -> JSONObject:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    thoughts: list[str] = []
    details: list[JSONObject] = []
    calls: list[JSONObject] = []
    signatures: dict[str, str] = {}  # Gemini thought signatures, by tool call id
    for block in content:
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "thinking" and unpack_signatures(block.get("signature")) is not None:
            signatures.update(unpack_signatures(block.get("signature")) or {})
        elif kind == "thinking":
            thoughts.append(block.get("thinking", ""))
            details.append(
                {
                    "type": "reasoning.text",
                    "text": block.get("thinking", ""),
                    "signature": block.get("signature", ""),
                    "format": ANTHROPIC_FORMAT,
                    "index": len(details),
                }
            )
        elif kind == "redacted_thinking":
            details.append(
                {
                    "type": "reasoning.encrypted",
                    "data": block.get("data", ""),
                    "format": ANTHROPIC_FORMAT,
                    "index": len(details),
                }
            )
        elif kind != "tool_use":
            raise _unsupported_block(kind)
        else:
            function = {
                "name": block.get("name", ""),
                "arguments": dump_arguments(block.get("input")),
            }
            calls.append({"id": block.get("id", ""), "type": "function", "function": function})
    message: JSONObject = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
    }
    for call in calls:
        if call["id"] in signatures:
            sign_call(call, signatures[call["id"]])
    if calls:
        message["tool_calls"] = calls
    if thoughts:
        set_reasoning(message, "".join(thoughts))
    if details:
        message["reasoning_details"] = details
    return message


def _unsupported_block(kind: object) -> InvalidRequest:
    """Dropping a block would silently change the conversation: refuse it instead."""
    return InvalidRequest(
        f"Content block type '{kind}' is not supported on /v1/messages by this gateway.",
        param="messages",
        code="unsupported_content_block",
    )


def _tools(body: JSONObject, out: JSONObject) -> None:
    tools = body.get("tools")
    if tools:
        out["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": tool["name"],
                    **({"description": tool["description"]} if tool.get("description") else {}),
                    "parameters": tool.get("input_schema") or {"type": "object"},
                },
            }
            for tool in tools
        ]
    choice = body.get("tool_choice")
    if not isinstance(choice, dict):
        return
    if choice.get("type") == "tool":
        out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name", "")}}
    elif choice.get("type") in TOOL_CHOICE:
        out["tool_choice"] = TOOL_CHOICE[choice["type"]]
    if choice.get("disable_parallel_tool_use") and tools:
        out["parallel_tool_calls"] = False


def _thinking(body: JSONObject, out: JSONObject) -> None:
    thinking = body.get("thinking")
    if not isinstance(thinking, dict) or thinking.get("type") != "enabled":
        return
    budget = thinking.get("budget_tokens") or 0
    out["reasoning_effort"] = next(
        (effort for limit, effort in EFFORT_FOR_BUDGET if budget <= limit), "xhigh"
    )
