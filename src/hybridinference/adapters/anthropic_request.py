"""OpenAI chat request → Anthropic Messages request (the Anthropic adapter's way out).

System and developer messages are hoisted into ``system`` (Anthropic has no system
turns); consecutive ``tool`` messages fold into one user turn of ``tool_result`` blocks;
tool-call arguments become objects; thinking blocks come back from ``reasoning_details``
(only with their signature, which Anthropic requires). Temperature is refused above 1
rather than clamped, because clamping would silently change its meaning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hybridinference.adapters.base import JSONObject
from hybridinference.adapters.params import ParamPolicy
from hybridinference.adapters.parts import (
    parse_arguments,
    parse_data_url,
    reasoning_details,
    reasoning_text,
    text_of,
)

#: OpenAI parameters this translation maps, plus Anthropic-native extras it forwards
SUPPORTED = (
    "model",
    "messages",
    "stream",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "reasoning_effort",
    "top_k",
    "thinking",
    "output_config",
    "context_management",
    "cache_control",
)
NATIVE_EXTRAS = ("top_k", "thinking", "output_config", "context_management", "cache_control")
EFFORT_BUDGET: Mapping[str, int] = {
    "minimal": 1024,
    "low": 1024,
    "medium": 4096,
    "high": 16384,
    "xhigh": 32768,
    "max": 65536,
}
TOOL_CHOICE: Mapping[str, JSONObject] = {
    "auto": {"type": "auto"},
    "none": {"type": "none"},
    "required": {"type": "any"},
}


@dataclass(frozen=True, slots=True)
class AnthropicDefaults:
    max_tokens: int


def to_anthropic(body: JSONObject, policy: ParamPolicy, defaults: AnthropicDefaults) -> JSONObject:
    body = policy.screen(body)
    system, messages = _messages(body["messages"], policy)
    out: JSONObject = {"model": body["model"], "messages": messages}
    if system:
        out["system"] = system
    out["max_tokens"] = (
        body.get("max_completion_tokens") or body.get("max_tokens") or defaults.max_tokens
    )
    temperature = body.get("temperature")
    if temperature is not None:
        if temperature > 1:
            raise policy.refuse("temperature", "Anthropic accepts 0 to 1")
        out["temperature"] = temperature
    if body.get("top_p") is not None:
        out["top_p"] = body["top_p"]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("stream"):
        out["stream"] = True
    _tools(body, out, policy)
    _reasoning(body, out, policy)
    _response_format(body, out, policy)
    user = body.get("safety_identifier") or body.get("user")
    if isinstance(user, str) and user:
        out["metadata"] = {"user_id": user}
    for key in NATIVE_EXTRAS:
        if body.get(key) is not None and key not in out:
            out[key] = body[key]
    return out


def _messages(
    messages: list[JSONObject], policy: ParamPolicy
) -> tuple[list[JSONObject], list[JSONObject]]:
    system: list[JSONObject] = []
    turns: list[JSONObject] = []
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.get("content")))
        elif role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id", ""),
                "content": _user_content(message.get("content"), policy),
            }
            last = turns[-1] if turns else None
            if last is not None and last.get("_tool_results"):
                last["content"].append(block)
            else:
                turns.append({"role": "user", "content": [block], "_tool_results": True})
        elif role == "assistant":
            turns.append({"role": "assistant", "content": _assistant_blocks(message)})
        else:
            turns.append({"role": "user", "content": _user_content(message.get("content"), policy)})
    for turn in turns:
        turn.pop("_tool_results", None)
    if not turns and system:  # a conversation of only a system prompt: make it the user turn
        turns, system = [{"role": "user", "content": system}], []
    return system, turns


def _text_blocks(content: Any) -> list[JSONObject]:
    if isinstance(content, list):
        return [{"type": "text", "text": text_of([p])} for p in content if text_of([p])]
    text = text_of(content)
    return [{"type": "text", "text": text}] if text else []


def _user_content(content: Any, policy: ParamPolicy) -> str | list[JSONObject]:
    if isinstance(content, list):
        return [_user_part(part, policy) for part in content if isinstance(part, dict)]
    return content if isinstance(content, str) else ""


def _user_part(part: JSONObject, policy: ParamPolicy) -> JSONObject:
    kind = part.get("type")
    if kind == "image_url":
        image = part.get("image_url") or {}
        url = image.get("url", "") if isinstance(image, dict) else str(image)
        inline = parse_data_url(url)
        if inline is None:
            return {"type": "image", "source": {"type": "url", "url": url}}
        source = {"type": "base64", "media_type": inline.media_type, "data": inline.data}
        return {"type": "image", "source": source}
    if kind in ("text", "input_text"):
        block: JSONObject = {"type": "text", "text": part.get("text", "")}
        if "cache_control" in part:
            block["cache_control"] = part["cache_control"]
        return block
    raise policy.refuse_content(f"content part type '{kind}'")


def _assistant_blocks(message: JSONObject) -> list[JSONObject]:
    blocks: list[JSONObject] = []
    details = reasoning_details(message)
    signed = [d for d in details if d.get("type") == "reasoning.text" and d.get("signature")]
    if len(signed) == 1 and not signed[0].get("text"):
        # a client that kept only the signature: the text is the turn's reasoning field
        details = [
            {**d, "text": reasoning_text(message) or ""} if d is signed[0] else d for d in details
        ]
    for detail in details:
        if detail.get("type") == "reasoning.encrypted" and detail.get("data"):
            blocks.append({"type": "redacted_thinking", "data": detail["data"]})
        elif detail.get("type") == "reasoning.text" and detail.get("signature"):
            blocks.append(
                {
                    "type": "thinking",
                    "thinking": detail.get("text") or "",
                    "signature": detail["signature"],
                }
            )
    text = text_of(message.get("content"))
    if text:
        blocks.append({"type": "text", "text": text})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        name = function.get("name", "")
        blocks.append(
            {
                "type": "tool_use",
                "id": call.get("id", ""),
                "name": name,
                "input": parse_arguments(function.get("arguments"), name),
            }
        )
    return blocks


def _tools(body: JSONObject, out: JSONObject, policy: ParamPolicy) -> None:
    tools = body.get("tools")
    if tools:
        converted = []
        for tool in tools:
            if tool.get("type", "function") != "function":
                raise policy.refuse("tools", f"tool type '{tool.get('type')}'")
            function = tool.get("function") or {}
            entry: JSONObject = {
                "name": function.get("name", ""),
                "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
            }
            if function.get("description"):
                entry["description"] = function["description"]
            converted.append(entry)
        out["tools"] = converted
    choice = body.get("tool_choice")
    native: JSONObject | None = None
    if isinstance(choice, str):
        if choice not in TOOL_CHOICE:
            raise policy.refuse("tool_choice", f"unknown value '{choice}'")
        native = dict(TOOL_CHOICE[choice])
    elif isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name")
        if not name:
            raise policy.refuse("tool_choice", "only function tool choices are supported")
        native = {"type": "tool", "name": name}
    if body.get("parallel_tool_calls") is False and tools:
        native = native or {"type": "auto"}
        if native["type"] != "none":
            native["disable_parallel_tool_use"] = True
    if native is not None and (tools or native["type"] == "none"):
        out["tool_choice"] = native


def _reasoning(body: JSONObject, out: JSONObject, policy: ParamPolicy) -> None:
    effort = body.get("reasoning_effort")
    if effort is None or body.get("thinking") is not None:
        return
    if effort == "none":
        out["thinking"] = {"type": "disabled"}
        return
    if effort not in EFFORT_BUDGET:
        raise policy.refuse("reasoning_effort", f"unknown value '{effort}'")
    budget = min(EFFORT_BUDGET[effort], out["max_tokens"] - 1)
    if budget < 1024:
        raise policy.refuse("reasoning_effort", "thinking needs max_tokens above 1024 on Anthropic")
    out["thinking"] = {"type": "enabled", "budget_tokens": budget}


def _response_format(body: JSONObject, out: JSONObject, policy: ParamPolicy) -> None:
    fmt = body.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return
    if fmt["type"] == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") or {"type": "object"}
    elif fmt["type"] == "json_object":
        schema = {"type": "object"}
    else:
        raise policy.refuse("response_format", f"type '{fmt['type']}'")
    config = dict(out.get("output_config") or body.get("output_config") or {})
    config["format"] = {"type": "json_schema", "schema": schema}
    out["output_config"] = config
