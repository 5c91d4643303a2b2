"""Read and validate a JSON request body: once, under the size limit, errors naming the field."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request

from hybridinference.errors import InvalidRequest, PayloadTooLarge
from hybridinference.gateway.exchange import ClientDisconnected


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"Request body is larger than the limit of {limit} bytes.")
            chunks.append(chunk)
    except ClientDisconnect:  # gone mid-upload: a 499 like any disconnect, not a 500
        raise ClientDisconnected from None
    raw = chunks[0] if len(chunks) == 1 else b"".join(chunks)
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


def validate(schema: type[BaseModel], data: dict[str, Any]) -> None:
    """Check ``data`` against ``schema``; the first problem becomes a 400 naming the field.

    Strict: the raw body (not the validated model) is what gets used and forwarded, so a
    value pydantic would coerce (``"stream": "false"`` is truthy) must be refused instead.
    """
    try:
        schema.model_validate(data, strict=True)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or None
        message = first["msg"]
        if first["type"] == "missing":
            message = "Field required"
        raise InvalidRequest(
            f"Invalid value for '{field}': {message}." if field else f"Invalid request: {message}.",
            param=field,
            code="invalid_value" if first["type"] != "missing" else "missing_required_parameter",
        ) from None
