"""OpenAI chat / embeddings request → Ollama's native ``/api/chat`` / ``/api/embed``.

Content parts flatten to a string with images moved to ``images`` (raw base64, no data:
prefix; remote URLs are refused because Ollama cannot fetch them); tool-call arguments
become objects and tool results get their ``tool_name`` from the earlier call; sampling
parameters go into ``options`` (``max_tokens`` → ``num_predict``) on top of the provider's
configured defaults (``num_ctx`` among them: Ollama silently truncates at its small default).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hybridinference.adapters.base import JSONObject
from hybridinference.adapters.params import ParamPolicy
from hybridinference.adapters.parts import (
    parse_arguments,
    parse_data_url,
    reasoning_text,
    text_of,
)

SUPPORTED = (
    "model",
    "messages",
    "stream",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "repeat_penalty",
    "tools",
    "tool_choice",
    "response_format",
    "reasoning_effort",
    "keep_alive",
    "options",
)
OPTIONS: Mapping[str, str] = {
    "temperature": "temperature",
    "top_p": "top_p",
    "top_k": "top_k",
    "min_p": "min_p",
    "seed": "seed",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "repeat_penalty": "repeat_penalty",
}
THINK: Mapping[str, bool | str] = {
    "none": False,
    "minimal": "low",
    "low": "low",
    "medium": "medium",
    "high": "high",
    "xhigh": "high",
    "max": "high",
}


@dataclass(frozen=True, slots=True)
class OllamaDefaults:
    keep_alive: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


def to_ollama(body: JSONObject, policy: ParamPolicy, defaults: OllamaDefaults) -> JSONObject:
    body = policy.screen(body)
    out: JSONObject = {
        "model": body["model"],
        "messages": _messages(body["messages"], policy),
        "stream": bool(body.get("stream")),
    }
    options = {**defaults.options, **(body.get("options") or {})}
    options.update({native: body[k] for k, native in OPTIONS.items() if body.get(k) is not None})
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit:
        options["num_predict"] = limit
    stop = body.get("stop")
    if stop:
        options["stop"] = [stop] if isinstance(stop, str) else list(stop)
    if options:
        out["options"] = options
    if body.get("tools"):
        out["tools"] = body["tools"]
    choice = body.get("tool_choice")
    if choice not in (None, "auto") and not (choice == "none" and not body.get("tools")):
        raise policy.refuse("tool_choice", "Ollama always chooses tools itself ('auto')")
    _format(body, out, policy)
    effort = body.get("reasoning_effort")
    if effort is not None:
        if effort not in THINK:
            raise policy.refuse("reasoning_effort", f"unknown value '{effort}'")
        out["think"] = THINK[effort]
    keep_alive = body.get("keep_alive") or defaults.keep_alive
    if keep_alive is not None:
        out["keep_alive"] = keep_alive
    return out


def _messages(messages: list[JSONObject], policy: ParamPolicy) -> list[JSONObject]:
    out: list[JSONObject] = []
    names: dict[str, str] = {}
    for message in messages:
        role = message.get("role")
        native: JSONObject = {"role": "system" if role == "developer" else role}
        content = message.get("content")
        native["content"] = text_of(content)
        images = _images(content, policy)
        if images:
            native["images"] = images
        if role == "assistant":
            _assistant(message, native, names)
        elif role == "tool":
            call_id = message.get("tool_call_id", "")
            native["tool_call_id"] = call_id
            if call_id in names:
                native["tool_name"] = names[call_id]
        out.append(native)
    return out


def _assistant(message: JSONObject, native: JSONObject, names: dict[str, str]) -> None:
    thinking = reasoning_text(message)
    if thinking:
        native["thinking"] = thinking
    calls = []
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        name = function.get("name", "")
        names[call.get("id", "")] = name
        arguments = parse_arguments(function.get("arguments"), name)
        calls.append({"id": call.get("id", ""), "function": {"name": name, "arguments": arguments}})
    if calls:
        native["tool_calls"] = calls


def _images(content: Any, policy: ParamPolicy) -> list[str]:
    if not isinstance(content, list):
        return []
    images = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "image_url":
            image = part.get("image_url") or {}
            url = image.get("url", "") if isinstance(image, dict) else str(image)
            inline = parse_data_url(url)
            if inline is None:
                raise policy.refuse_content("Ollama needs images inline: send data: URLs")
            images.append(inline.data)
        elif kind not in ("text", "input_text"):
            raise policy.refuse_content(f"content part type '{kind}'")
    return images


def _format(body: JSONObject, out: JSONObject, policy: ParamPolicy) -> None:
    fmt = body.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return
    if fmt["type"] == "json_object":
        out["format"] = "json"
    elif fmt["type"] == "json_schema":
        out["format"] = (fmt.get("json_schema") or {}).get("schema") or "json"
    else:
        raise policy.refuse("response_format", f"type '{fmt['type']}'")


def to_ollama_embed(body: JSONObject, policy: ParamPolicy, defaults: OllamaDefaults) -> JSONObject:
    body = policy.screen(body)
    inputs = body.get("input")
    texts = inputs if isinstance(inputs, list) else [inputs]
    if not all(isinstance(t, str) for t in texts):
        raise policy.refuse("input", "Ollama embeds text only, not token arrays")
    out: JSONObject = {"model": body["model"], "input": texts}
    if body.get("dimensions"):
        out["dimensions"] = body["dimensions"]
    if defaults.keep_alive is not None:
        out["keep_alive"] = defaults.keep_alive
    return out
