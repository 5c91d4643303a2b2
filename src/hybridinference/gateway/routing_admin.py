"""``GET /admin/routing``: every model's strategy and hedging counts, and per route its
kind, price, load (in flight, engine /metrics), probe health, circuit state, quota and
latency statistics. Admin token required (it shows the deployment's topology)."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request

from hybridinference.errors import GatewayError
from hybridinference.gateway.auth import check_admin, request_key
from hybridinference.gateway.deps import app_state
from hybridinference.gateway.responses import JSONResponse, error_response


async def routing_status(request: Request) -> JSONResponse:
    state = app_state(request)
    try:
        check_admin(
            state.admin_token,
            request_key(request),
        )
    except GatewayError as exc:
        return error_response(exc)
    return JSONResponse({"object": "routing", "models": state.routing.manager.snapshot()})


def include_routing_admin(app: FastAPI) -> None:
    app.add_api_route(
        "/admin/routing", routing_status, methods=["GET"], response_model=None, tags=["admin"]
    )
