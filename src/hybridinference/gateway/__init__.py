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

from typing import Any

from fastapi import FastAPI

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
    app.add_api_route(
        "/v1/models", models.list_models, methods=["GET"], response_model=None, tags=["models"]
    )
    app.add_api_route(
        "/v1/models/{model:path}",
        models.retrieve_model,
        methods=["GET"],
        response_model=None,
        tags=["models"],
    )
    app.add_api_route(
        "/health", health.liveness, methods=["GET"], response_model=None, tags=["health"]
    )
    app.add_api_route(
        "/health/ready", health.readiness, methods=["GET"], response_model=None, tags=["health"]
    )
    app.add_api_route(
        "/metrics",
        metrics.metrics,
        methods=["GET"],
        response_model=None,
        include_in_schema=False,
        tags=["observability"],
    )
    app.add_api_route(
        "/admin/keys", admin.create_key, methods=["POST"], response_model=None, tags=["admin"]
    )
    app.add_api_route(
        "/admin/keys", admin.list_keys, methods=["GET"], response_model=None, tags=["admin"]
    )
    app.add_api_route(
        "/admin/keys/{key_id}",
        admin.revoke_key,
        methods=["DELETE"],
        response_model=None,
        tags=["admin"],
    )
    for method, endpoint in (("GET", admin.get_key), ("PATCH", admin.update_key)):
        app.add_api_route(
            "/admin/keys/{key_id}",
            endpoint,
            methods=[method],
            response_model=None,
            tags=["admin"],
        )
    include_usage_routes(app)
    include_request_routes(app)
    include_routing_admin(app)
    include_config_admin(app)
    install_openapi(app)  # the answers each operation documents (gateway/openapi_doc.py)
