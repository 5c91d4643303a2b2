"""The HTTP surface: one module per endpoint family.

- ``inference``: chat completions, completions, embeddings (JSON and SSE).
- ``messages``: the Anthropic Messages API (``/v1/messages``, ``count_tokens``), translated;
  ``messages_stream`` its SSE relay, ``anthropic_errors`` its error shape.
- ``models``, ``health``, ``admin``: the other endpoints.
- ``usage``: analytics (``/admin/usage``; a key's own ``/v1/usage``).
- ``routing_admin``: health, circuits, load and latency per route (``/admin/routing``).
- ``config_admin``: config version and hot reload (``/admin/config``), runtime overrides
  (``/admin/overrides``).
- ``requests_admin``: the request log (``/admin/requests``; a key's own ``/v1/usage/requests``).
- ``exchange``: one request's lifecycle and its single log row.
- ``limits``: per-key rate limits and budgets (check before dispatch, settle after);
  ``shared_routing``: circuit and latency knowledge exchanged with other replicas.
- ``streaming``: upstream chunks → client SSE.
- ``auth``: API keys (hashing, cache); ``body``: JSON parsing and validation.
- ``metrics``: ``GET /metrics`` and the state readings it publishes.
- ``forwarded``: the client address behind trusted proxies.
- ``auth_throttle``: repeated bad credentials from one address slowed down (429).
- ``openapi_doc``: the answers the OpenAPI document describes (schemas, error envelope).
- ``middleware``: request id; ``responses``: JSON/SSE/error responses; ``errors``: handlers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI
from starlette.responses import Response

from hybridinference.gateway import admin, health, inference, metrics, models
from hybridinference.gateway.config_admin import include_config_admin
from hybridinference.gateway.messages import include_messages_routes
from hybridinference.gateway.openapi_doc import install_openapi
from hybridinference.gateway.requests_admin import include_request_routes
from hybridinference.gateway.routing_admin import include_routing_admin
from hybridinference.gateway.usage import include_usage_routes
from hybridinference.schemas.openai import (
    ChatCompletionRequest,
    CompletionRequest,
    EmbeddingRequest,
    ErrorResponse,
)

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in (
        (400, "Malformed JSON or an invalid field"),
        (401, "Missing or invalid API key"),
        (404, "Unknown model"),
        (413, "Body over the configured limit"),
        (429, "Rate limited"),
        (502, "Upstream failure"),
        (503, "No route available"),
        (504, "Upstream timeout"),
    )
}


def _body(schema: type[Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema.model_json_schema()}},
        }
    }


#: (method, path, endpoint, OpenAPI tag) of every endpoint without a request-body schema
SIMPLE_ROUTES: tuple[tuple[str, str, Callable[..., Awaitable[Response]], str], ...] = (
    ("GET", "/v1/models", models.list_models, "models"),
    ("GET", "/v1/models/{model:path}", models.retrieve_model, "models"),
    ("GET", "/health", health.liveness, "health"),
    ("GET", "/health/ready", health.readiness, "health"),
    ("GET", "/metrics", metrics.metrics, "observability"),
    ("POST", "/admin/keys", admin.create_key, "admin"),
    ("GET", "/admin/keys", admin.list_keys, "admin"),
    ("DELETE", "/admin/keys/{key_id}", admin.revoke_key, "admin"),
    ("GET", "/admin/keys/{key_id}", admin.get_key, "admin"),
    ("PATCH", "/admin/keys/{key_id}", admin.update_key, "admin"),
)


def include_routes(app: FastAPI) -> None:
    for path, endpoint, schema in (
        ("/v1/chat/completions", inference.chat_completions, ChatCompletionRequest),
        ("/v1/completions", inference.completions, CompletionRequest),
        ("/v1/embeddings", inference.embeddings, EmbeddingRequest),
    ):
        app.add_api_route(
            path,
            endpoint,
            methods=["POST"],
            response_model=None,
            responses=ERRORS,
            openapi_extra=_body(schema),
            tags=["inference"],
        )
    include_messages_routes(app)
    for method, path, handler, tag in SIMPLE_ROUTES:
        app.add_api_route(
            path,
            handler,
            methods=[method],
            response_model=None,
            include_in_schema=path != "/metrics",
            tags=[tag],
        )
    include_usage_routes(app)
    include_request_routes(app)
    include_routing_admin(app)
    include_config_admin(app)
    install_openapi(app)  # the answers each operation documents (gateway/openapi_doc.py)
