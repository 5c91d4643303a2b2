"""Read and validate a JSON request body: once, under the size limit, errors naming the field."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from starlette.requests import Request
from starlette.types import Receive

from hybridinference.errors import InvalidRequest, PayloadTooLarge, RequestTimeout
from hybridinference.gateway.deps import app_state
from hybridinference.gateway.exchange import ClientDisconnected
from hybridinference.schemas.fastcheck import fast_check


def declared_size(request: Request) -> int:
    """The body size the client announced (``Content-Length``), 0 when it announced none."""
    for name, value in request.scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


async def read_json_object(
    request: Request, limit: int, loop: asyncio.AbstractEventLoop | None = None
) -> dict[str, Any]:
    """The body as a JSON object (400 otherwise), at most ``limit`` bytes (413), within
    ``server.body_timeout`` (408); ``loop``: the running loop when the caller has it."""
    if declared_size(request) > limit:
        raise PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes.")
    # a body trickled in (slowloris) must not hold a connection and a task for ever: a
    # timer cancels this task (a plain timer handle: asyncio.timeout's context manager
    # was ~6 % of the CPU per request, docs/performance.md)
    timeout = app_state(request).config.server.body_timeout
    if loop is None:
        loop = asyncio.get_running_loop()
    task = asyncio.current_task(loop)
    assert task is not None
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    timer = loop.call_later(timeout, expire)
    try:
        raw = await _receive_body(request.receive, limit)
    except asyncio.CancelledError:
        if expired and task.uncancel() == 0:
            raise RequestTimeout(f"Request body did not arrive within {timeout:g} s.") from None
        raise
    finally:
        timer.cancel()
    if not raw:
        raise InvalidRequest("Request body is empty: expected a JSON object.")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"Request body is not valid JSON: {exc.msg} (position {exc.pos})."
        ) from None
    if not isinstance(data, dict):
        raise InvalidRequest("Request body must be a JSON object.")
    return data


async def _receive_body(receive: Receive, limit: int) -> bytes:
    """The ASGI body messages joined, refused past ``limit``; a disconnect mid-upload
    is a 499 like any disconnect, not a 500."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected
        chunk: bytes = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes.")
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def validate(schema: type[BaseModel], data: dict[str, Any]) -> None:
    """Check ``data`` against ``schema``; the first problem becomes a 400 naming the field.

    Strict: the raw body (not the validated model) is what gets used and forwarded, so a
    value pydantic would coerce (``"stream": "false"`` is truthy) must be refused instead.
    A body of the usual shapes passes ``fast_check`` and never reaches pydantic (on a sparse
    request, one that starts with cold caches, ~22 µs instead of ~52, docs/performance.md);
    pydantic decides the rest.
    """
    if fast_check(schema)(data):
        return
    try:
        schema.model_validate(data, strict=True)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        first = errors[0]
        loc = tuple(first["loc"])
        tag_at = next((i for i, part in enumerate(loc) if _is_union_member(part)), None)
        if tag_at is not None:  # "stop.str": the field is "stop", and it takes several types
            name = ".".join(str(part) for part in loc[:tag_at])
            raise InvalidRequest(
                f"Invalid type for '{name}': expected {_alternatives(errors, loc[:tag_at])}.",
                param=name,
                code="invalid_type",
            ) from None
        field = ".".join(str(part) for part in loc) or None
        message = first["msg"]
        if first["type"] == "missing":
            message = "Field required"
        raise InvalidRequest(
            f"Invalid value for '{field}': {message}." if field else f"Invalid request: {message}.",
            param=field,
            code="invalid_value" if first["type"] != "missing" else "missing_required_parameter",
        ) from None


#: how pydantic names the members of a plain union in an error location → what JSON calls it
_JSON_TYPES = {
    "str": "a string",
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean",
    "list": "an array",
    "tuple": "an array",
    "dict": "an object",
}


def _is_union_member(part: int | str) -> bool:
    return isinstance(part, str) and (part in _JSON_TYPES or "[" in part or part[:1].isupper())


def _json_type(tag: str) -> str:
    return _JSON_TYPES.get(tag.split("[", 1)[0], "an object")  # a model class: an object


def _alternatives(errors: list[ErrorDetails], prefix: tuple[int | str, ...]) -> str:
    """The JSON types the union at ``prefix`` accepts, in the order pydantic tried them."""
    names: list[str] = []
    for err in errors:
        loc = tuple(err["loc"])
        if len(loc) > len(prefix) and loc[: len(prefix)] == prefix:
            name = _json_type(str(loc[len(prefix)]))
            if name not in names:
                names.append(name)
    return " or ".join(names)
