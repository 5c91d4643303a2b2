"""``GET /v1/models`` and ``GET /v1/models/{model}``: the OpenAI shapes plus OpenRouter-style
metadata."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from hybridinference.errors import GatewayError
from hybridinference.gateway.auth import request_key
from hybridinference.gateway.deps import app_state
from hybridinference.gateway.responses import JSONResponse, error_response
from hybridinference.routing.manager import RoutedModel


def describe(routed: RoutedModel, created: int) -> dict[str, Any]:
    config = routed.routes.config
    routes = routed.routes.routes or routed.parked  # every route disabled: list the parked
    cheapest = min(routes, key=lambda r: (r.pricing.input, r.pricing.output))
    return {
        "id": config.name,
        "object": "model",
        "created": created,
        "owned_by": config.owned_by,
        "name": config.name,
        "description": config.description,
        "aliases": list(config.aliases),
        "context_length": config.context_length,
        "max_output_tokens": config.max_output_tokens,
        "pricing": {  # US dollars per token, as strings (OpenRouter's convention)
            "prompt": f"{cheapest.pricing.input / 1_000_000:.12f}".rstrip("0").rstrip(".") or "0",
            "completion": f"{cheapest.pricing.output / 1_000_000:.12f}".rstrip("0").rstrip(".")
            or "0",
        },
        "routing": {"strategy": config.strategy, "routes": len(routed.routes.routes)},
    }


async def list_models(request: Request) -> JSONResponse:
    state = app_state(request)
    try:
        principal = await state.keys.authenticate(request_key(request))
    except GatewayError as exc:
        return error_response(exc)
    allowed = principal.allowed_models
    created = int(state.started_at)
    data = [
        describe(routed, created)
        for routed in state.routing.manager.models
        if routed.visibility == "public"  # a runtime override may unlist or hide a model
        and routed.routes.routes
        and (
            allowed is None
            or routed.routes.name in allowed
            or any(a in allowed for a in routed.routes.config.aliases)
        )
    ]
    return JSONResponse({"object": "list", "data": data})


async def retrieve_model(request: Request) -> JSONResponse:
    """``GET /v1/models/{model}`` (by name or alias); 404 for unknown and forbidden alike."""
    state = app_state(request)
    try:
        principal = await state.keys.authenticate(request_key(request))
        routed = state.routing.manager.resolve(
            request.path_params["model"], principal.allowed_models
        )
    except GatewayError as exc:
        return error_response(exc)
    return JSONResponse(describe(routed, int(state.started_at)))
