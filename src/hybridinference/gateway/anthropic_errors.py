"""Errors on the Anthropic surface (``/v1/messages``): Anthropic's shape
``{"type": "error", "error": {"type", "message"}}``, its error type chosen by status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hybridinference.errors import GatewayError
from hybridinference.gateway.responses import JSONResponse

ERROR_TYPES: Mapping[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_error_type(status: int) -> str:
    return ERROR_TYPES.get(status, "invalid_request_error" if status < 500 else "api_error")


def anthropic_error_body(exc: GatewayError, request_id: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": anthropic_error_type(exc.status_code), "message": exc.message},
        "request_id": request_id,
    }


def anthropic_error_response(
    exc: GatewayError, request_id: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        anthropic_error_body(exc, request_id),
        status_code=exc.status_code,
        headers={**exc.headers(), "request-id": request_id, **(headers or {})},
    )
