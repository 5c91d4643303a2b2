"""OpenAI chat / embeddings request → Gemini ``generateContent`` / ``batchEmbedContents``.

Roles become ``user``/``model`` (system and developer messages go to
``systemInstruction``); consecutive same-role contents merge; tool results become
``functionResponse`` parts named by looking the ``tool_call_id`` up in the earlier
assistant tool calls (Gemini has no call ids); tool calls carry back their Gemini thought
signature from ``extra_content.google.thought_signature``. Images must be inline (data
URLs): the gateway does not fetch remote URLs on a client's behalf.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from hybridinference.adapters.base import JSONObject
from hybridinference.adapters.params import ParamPolicy
from hybridinference.adapters.parts import parse_arguments, parse_data_url, text_of

SUPPORTED = (
    "model",
    "messages",
    "stream",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "top_k",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "reasoning_effort",
    "safety_settings",
    "cached_content",
)
GENERATION: Mapping[str, str] = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}
TOOL_MODES: Mapping[str, str] = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
THINKING_BUDGET: Mapping[str, int] = {
    "none": 0,
    "minimal": 512,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
    "xhigh": 32768,
    "max": -1,
}
FILE_URI_PREFIXES = ("gs://", "https://generativelanguage.googleapis.com/")


def to_gemini(body: JSONObject, policy: ParamPolicy) -> JSONObject:
    body = policy.screen(body)
    system, contents = _contents(body["messages"], policy)
    out: JSONObject = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": [{"text": t} for t in system]}
    config: JSONObject = {
        native: body[key] for key, native in GENERATION.items() if body.get(key) is not None
    }
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit:
        config["maxOutputTokens"] = limit
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    _response_format(body, config, policy)
    effort = body.get("reasoning_effort")
    if effort is not None:
        if effort not in THINKING_BUDGET:
            raise policy.refuse("reasoning_effort", f"unknown value '{effort}'")
        budget = THINKING_BUDGET[effort]
        config["thinkingConfig"] = {"thinkingBudget": budget, "includeThoughts": budget != 0}
    if config:
        out["generationConfig"] = config
    _tools(body, out, policy)
    if body.get("safety_settings"):
        out["safetySettings"] = body["safety_settings"]
    if body.get("cached_content"):
        out["cachedContent"] = body["cached_content"]
    return out


def _contents(
    messages: list[JSONObject], policy: ParamPolicy
) -> tuple[list[str], list[JSONObject]]:
    system: list[str] = []
    contents: list[JSONObject] = []
    names: dict[str, str] = {}  # tool call id → function name
    for message in messages:
        role = message.get("role")
        if role in ("system", "developer"):
            text = text_of(message.get("content"))
            if text:
                system.append(text)
            continue
        if role == "assistant":
            native_role, parts = "model", _model_parts(message, names)
        elif role == "tool":
            native_role, parts = "user", [_function_response(message, names, policy)]
        else:
            native_role, parts = "user", _user_parts(message.get("content"), policy)
        if not parts:
            continue
        if contents and contents[-1]["role"] == native_role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": native_role, "parts": parts})
    if not contents and system:
        contents, system = [{"role": "user", "parts": [{"text": t} for t in system]}], []
    return system, contents


def _user_parts(content: Any, policy: ParamPolicy) -> list[JSONObject]:
    if not isinstance(content, list):
        return [{"text": content}] if isinstance(content, str) and content else []
    parts: list[JSONObject] = []
    for part in content:
        kind = part.get("type")
        if kind in ("text", "input_text"):
            parts.append({"text": part.get("text", "")})
        elif kind == "image_url":
            image = part.get("image_url") or {}
            url = image.get("url", "") if isinstance(image, dict) else str(image)
            inline = parse_data_url(url)
            if inline is not None:
                parts.append({"inlineData": {"mimeType": inline.media_type, "data": inline.data}})
            elif url.startswith(FILE_URI_PREFIXES):
                parts.append({"fileData": {"fileUri": url}})
            else:
                raise policy.refuse_content("Gemini needs images inline: send them as data: URLs")
        else:
            raise policy.refuse_content(f"content part type '{kind}'")
    return parts


def _model_parts(message: JSONObject, names: dict[str, str]) -> list[JSONObject]:
    parts: list[JSONObject] = []
    text = text_of(message.get("content"))
    if text:
        parts.append({"text": text})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        name = function.get("name", "")
        names[call.get("id", "")] = name
        part: JSONObject = {
            "functionCall": {"name": name, "args": parse_arguments(function.get("arguments"), name)}
        }
        signature = ((call.get("extra_content") or {}).get("google") or {}).get("thought_signature")
        if signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _function_response(
    message: JSONObject, names: Mapping[str, str], policy: ParamPolicy
) -> JSONObject:
    call_id = message.get("tool_call_id", "")
    name = names.get(call_id)
    if name is None:
        raise policy.refuse_content(f"tool result '{call_id}' answers no earlier tool call")
    text = text_of(message.get("content"))
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = None
    response = value if isinstance(value, dict) else {"result": text}
    return {"functionResponse": {"name": name, "response": response}}


def _tools(body: JSONObject, out: JSONObject, policy: ParamPolicy) -> None:
    tools = body.get("tools")
    if tools:
        declarations = []
        for tool in tools:
            if tool.get("type", "function") != "function":
                raise policy.refuse("tools", f"tool type '{tool.get('type')}'")
            function = tool.get("function") or {}
            declaration: JSONObject = {"name": function.get("name", "")}
            if function.get("description"):
                declaration["description"] = function["description"]
            if function.get("parameters"):
                declaration["parametersJsonSchema"] = function["parameters"]
            declarations.append(declaration)
        out["tools"] = [{"functionDeclarations": declarations}]
    choice = body.get("tool_choice")
    if isinstance(choice, str):
        if choice not in TOOL_MODES:
            raise policy.refuse("tool_choice", f"unknown value '{choice}'")
        out["toolConfig"] = {"functionCallingConfig": {"mode": TOOL_MODES[choice]}}
    elif isinstance(choice, dict):
        name = (choice.get("function") or {}).get("name", "")
        config = {"mode": "ANY", "allowedFunctionNames": [name]}
        out["toolConfig"] = {"functionCallingConfig": config}


def _response_format(body: JSONObject, config: JSONObject, policy: ParamPolicy) -> None:
    fmt = body.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return
    if fmt["type"] not in ("json_object", "json_schema"):
        raise policy.refuse("response_format", f"type '{fmt['type']}'")
    config["responseMimeType"] = "application/json"
    schema = (fmt.get("json_schema") or {}).get("schema")
    if fmt["type"] == "json_schema" and schema:
        config["responseJsonSchema"] = schema


def to_gemini_embeddings(body: JSONObject, model: str, policy: ParamPolicy) -> JSONObject:
    inputs = body.get("input")
    texts = inputs if isinstance(inputs, list) else [inputs]
    if not all(isinstance(t, str) for t in texts):
        raise policy.refuse("input", "Gemini embeds text only, not token arrays")
    requests = []
    for text in texts:
        request: JSONObject = {"model": f"models/{model}", "content": {"parts": [{"text": text}]}}
        if body.get("dimensions"):
            request["outputDimensionality"] = body["dimensions"]
        requests.append(request)
    return {"requests": requests}
