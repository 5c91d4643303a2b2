"""``GET /health`` (liveness) and ``GET /health/ready`` (readiness)."""

from __future__ import annotations

import asyncio

from starlette.requests import Request

from hybridinference.gateway.deps import app_state
from hybridinference.gateway.responses import JSONResponse

STORE_PING_TIMEOUT = 2.0


async def liveness(request: Request) -> JSONResponse:
    del request
    return JSONResponse({"status": "ok"})


async def readiness(request: Request) -> JSONResponse:
    """Ready when the config is loaded, the log store answers and a route is usable."""
    state = app_state(request)
    checks: dict[str, str] = {"config": "ok"}
    try:
        async with asyncio.timeout(STORE_PING_TIMEOUT):
            await state.store.ping()
        checks["log_store"] = "ok"
    except Exception as exc:
        checks["log_store"] = f"unreachable ({type(exc).__name__})"
    manager = state.routing.manager
    usable = sum(1 for routed in manager.models if manager.usable(routed))
    checks["routes"] = f"{usable} usable model(s)" if usable else "no usable route"
    if state.limits is not None:  # informational: the failure policy covers an outage
        checks["limits"] = state.limits.status()
    ready = checks["log_store"] == "ok" and usable > 0
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )
