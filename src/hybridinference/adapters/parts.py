"""Pieces of OpenAI-shaped messages every translator needs: text, images as data URLs,
tool-call arguments, and the reasoning fields (with provider signatures) of a turn.

Reasoning travels in OpenAI-shaped history the way OpenRouter carries it: the text in
both ``reasoning_content`` and ``reasoning``, and anything a provider needs back verbatim
(Anthropic thinking signatures, redacted thinking) in ``reasoning_details`` entries.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import struct
from dataclasses import dataclass
from typing import Any

import orjson

from hybridinference.adapters.base import JSONObject
from hybridinference.errors import UpstreamRejected

ANTHROPIC_FORMAT = "anthropic-claude-v1"


@dataclass(frozen=True, slots=True)
class InlineImage:
    media_type: str
    data: str  # base64, no prefix


def parse_data_url(url: str) -> InlineImage | None:
    """``data:<mime>;base64,<data>`` → its parts; None for any other URL."""
    if not url.startswith("data:"):
        return None
    head, sep, data = url[5:].partition(",")
    if not sep or not head.endswith(";base64"):
        raise UpstreamRejected(
            "Image data URLs must be base64 encoded (data:<type>;base64,...).",
            param="messages",
            status_code=400,
        )
    try:
        base64.b64decode(data[:64] + "=" * (-len(data[:64]) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise UpstreamRejected(
            "Image data URL is not valid base64.", param="messages", status_code=400
        ) from None
    return InlineImage(head.removesuffix(";base64") or "application/octet-stream", data)


def data_url(media_type: str, data: str) -> str:
    return f"data:{media_type};base64,{data}"


def text_of(content: Any) -> str:
    """The text of a message ``content``: a string, or the text parts of a list, joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") in ("text", "input_text", None)
        )
    return ""


def parse_arguments(arguments: Any, tool: str) -> JSONObject:
    """A tool call's JSON-string ``arguments`` as the object native APIs want."""
    if isinstance(arguments, dict):
        return arguments
    if arguments in (None, ""):
        return {}
    try:
        value = orjson.loads(arguments)
    except (orjson.JSONDecodeError, TypeError):
        raise UpstreamRejected(
            f"The arguments of tool call '{tool}' are not valid JSON.",
            param="messages",
            status_code=400,
        ) from None
    if not isinstance(value, dict):
        raise UpstreamRejected(
            f"The arguments of tool call '{tool}' must be a JSON object.",
            param="messages",
            status_code=400,
        )
    return value


def dump_arguments(arguments: Any) -> str:
    return orjson.dumps(arguments if arguments is not None else {}).decode()


def reasoning_text(message: JSONObject) -> str | None:
    """Reasoning from either de-facto field (``reasoning_content`` or ``reasoning``)."""
    for key in ("reasoning_content", "reasoning"):
        value = message.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def set_reasoning(target: JSONObject, text: str) -> None:
    """Emit reasoning under both names: clients split between them."""
    target["reasoning_content"] = text
    target["reasoning"] = text


def reasoning_details(message: JSONObject) -> list[JSONObject]:
    details = message.get("reasoning_details")
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def encode_embedding(vector: list[float], encoding: str | None) -> list[float] | str:
    """A vector as the client asked: floats, or base64 of little-endian float32."""
    if encoding != "base64":
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


#: Anthropic's format has no field for Gemini's per-call thought signatures: on the
#: Anthropic surface they ride in an empty thinking block whose signature is this prefix
#: plus a JSON map of tool call id → signature (clients send thinking blocks back as is)
GEMINI_SIGNATURES = "hybridinference.gemini-thought-signatures:"


def call_signature(call: JSONObject) -> str | None:
    google = (call.get("extra_content") or {}).get("google") or {}
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    return signature if isinstance(signature, str) and signature else None


def pack_signatures(calls: list[JSONObject]) -> str | None:
    signed = {c.get("id", ""): s for c in calls if (s := call_signature(c))}
    return GEMINI_SIGNATURES + orjson.dumps(signed).decode() if signed else None


def unpack_signatures(signature: object) -> dict[str, str] | None:
    if not isinstance(signature, str) or not signature.startswith(GEMINI_SIGNATURES):
        return None
    try:
        value = orjson.loads(signature[len(GEMINI_SIGNATURES) :])
    except orjson.JSONDecodeError:
        return None
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else None


def sign_call(call: JSONObject, signature: str) -> None:
    call["extra_content"] = {"google": {"thought_signature": signature}}


def new_call_id() -> str:
    """A tool-call id for providers that give none (Gemini, Ollama)."""
    return "call_" + secrets.token_hex(12)
