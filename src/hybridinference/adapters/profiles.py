"""Profiles for OpenAI-compatible upstreams: the quirks of each, fixed in one place.

A profile may rewrite the request (field names, roles, refused parameters) and fix each
response or stream chunk in place (reasoning under both names, cache-token fields). The
``generic`` profile does nothing at all, so the pass-through hot path stays a dict copy.

Reasoning is read from ``reasoning_content`` or ``reasoning`` and emitted under both:
clients split between the two names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from hybridinference.adapters.base import JSONObject
from hybridinference.adapters.params import unsupported

RequestFix = Callable[[JSONObject, str], JSONObject]
ResponseFix = Callable[[JSONObject], None]


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    request: tuple[RequestFix, ...] = ()
    response: ResponseFix | None = None  # a whole chat.completion
    chunk: ResponseFix | None = None  # one chat.completion.chunk

    def fix_request(self, body: JSONObject, provider: str) -> JSONObject:
        for fix in self.request:
            body = fix(body, provider)
        return body


def _pair_reasoning(message: object) -> None:
    if not isinstance(message, dict):
        return
    content = message.get("reasoning_content")
    reasoning = message.get("reasoning")
    if content and not reasoning:
        message["reasoning"] = content
    elif reasoning and not content and isinstance(reasoning, str):
        message["reasoning_content"] = reasoning


def _usage(result: JSONObject) -> None:
    """DeepSeek's cache hit/miss counts → ``prompt_tokens_details.cached_tokens``."""
    usage = result.get("usage")
    if not isinstance(usage, dict) or "prompt_cache_hit_tokens" not in usage:
        return
    details = usage.get("prompt_tokens_details")
    if not isinstance(details, dict):
        details = usage["prompt_tokens_details"] = {}
    details.setdefault("cached_tokens", usage["prompt_cache_hit_tokens"])


def fix_completion(result: JSONObject) -> None:
    for choice in result.get("choices") or ():
        _pair_reasoning(choice.get("message"))
    _usage(result)


def fix_chunk(chunk: JSONObject) -> None:
    for choice in chunk.get("choices") or ():
        _pair_reasoning(choice.get("delta"))
    _usage(chunk)


def developer_as_system(body: JSONObject, _provider: str) -> JSONObject:
    """Open-model servers' chat templates know ``system``, not ``developer``."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not any(
        isinstance(m, dict) and m.get("role") == "developer" for m in messages
    ):
        return body
    fixed = [
        {**m, "role": "system"} if isinstance(m, dict) and m.get("role") == "developer" else m
        for m in messages
    ]
    return {**body, "messages": fixed}


#: what the gateway itself adds to assistant turns (reasoning, provider signatures); OpenAI
#: refuses unknown message fields, so a history that was served elsewhere must lose them
GATEWAY_HISTORY_FIELDS = ("reasoning_content", "reasoning", "reasoning_details")


def strip_history_extras(body: JSONObject, _provider: str) -> JSONObject:
    messages = body.get("messages")
    if not isinstance(messages, list):
        return body
    fixed = [_plain_assistant(m) for m in messages]
    if all(a is b for a, b in zip(fixed, messages, strict=True)):
        return body
    return {**body, "messages": fixed}


def _plain_assistant(message: object) -> object:
    if not isinstance(message, dict) or message.get("role") != "assistant":
        return message
    calls = message.get("tool_calls")
    signed = isinstance(calls, list) and any(
        isinstance(c, dict) and "extra_content" in c for c in calls
    )
    if not signed and not any(k in message for k in GATEWAY_HISTORY_FIELDS):
        return message
    plain = {k: v for k, v in message.items() if k not in GATEWAY_HISTORY_FIELDS}
    if signed:
        plain["tool_calls"] = [
            {k: v for k, v in c.items() if k != "extra_content"} if isinstance(c, dict) else c
            for c in calls  # type: ignore[union-attr]
        ]
    return plain


def _rename(old: str, new: str) -> RequestFix:
    def fix(body: JSONObject, _provider: str) -> JSONObject:
        if old not in body:
            return body
        out = dict(body)
        value = out.pop(old)
        out.setdefault(new, value)
        return out

    return fix


def _refuse_values(param: str, allowed: Iterable[object], why: str, kind: str) -> RequestFix:
    allowed_values = tuple(allowed)

    def fix(body: JSONObject, provider: str) -> JSONObject:
        value = body.get(param)
        if value is not None and value not in allowed_values:
            raise unsupported(provider, kind, param, why)
        return body

    return fix


def _json_object_only(body: JSONObject, provider: str) -> JSONObject:
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") not in (None, "text", "json_object"):
        raise unsupported(provider, "deepseek", "response_format", "only json_object is supported")
    return body


def _drop(*params: str) -> RequestFix:
    def fix(body: JSONObject, _provider: str) -> JSONObject:
        if not any(p in body for p in params):
            return body
        return {k: v for k, v in body.items() if k not in params}

    return fix


OPEN_MODEL = (developer_as_system,)


def _reasoning(name: str, *request: RequestFix) -> Profile:
    """A profile whose upstream reports reasoning under one name or the other."""
    return Profile(name, request, response=fix_completion, chunk=fix_chunk)


PROFILES: Mapping[str, Profile] = {
    "generic": Profile("generic"),
    "openai": Profile(
        "openai", request=(_rename("max_tokens", "max_completion_tokens"), strip_history_extras)
    ),
    "vllm": _reasoning("vllm", *OPEN_MODEL),
    "sglang": _reasoning("sglang", *OPEN_MODEL),
    "ollama": _reasoning("ollama", *OPEN_MODEL),
    "chutes": _reasoning("chutes", *OPEN_MODEL),
    "featherless": _reasoning("featherless", *OPEN_MODEL),
    "deepseek": _reasoning("deepseek", *OPEN_MODEL, _json_object_only),
    "zhipu": _reasoning(
        "zhipu",
        *OPEN_MODEL,
        _rename("max_completion_tokens", "max_tokens"),
        _refuse_values("tool_choice", ("auto",), "GLM only supports 'auto'", "zhipu"),
        _drop("stream_options"),
    ),
    "openrouter": _reasoning("openrouter"),
}
