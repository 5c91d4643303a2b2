"""The alert logger: a small service that Alertmanager posts webhooks to. It stores each
alert (firing, then resolved) in the ``alerts`` table and lists them for the dashboard.

- ``POST /webhook``      Alertmanager's webhook body (version 4); bearer token optional.
- ``GET /alerts``        ``?status=firing|resolved&limit=N``, newest first.
- ``GET /health``        liveness.

Run with ``hybridinference alert-logger``; one process is enough (Alertmanager retries).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import orjson
from fastapi import FastAPI
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from hybridinference import __version__
from hybridinference.observability.alert_store import AlertStore
from hybridinference.observability.alerts import AlertmanagerWebhook, stored_alerts

MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_LIST = 1000
STATUSES = ("firing", "resolved")


def _json(data: object, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def _error(status: int, message: str, error_type: str = "invalid_request_error") -> Response:
    return _json({"error": {"message": message, "type": error_type}}, status)


def _authorized(request: Request, token: str | None) -> bool:
    if token is None:
        return True
    presented = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    return hmac.compare_digest(presented.encode(), token.encode())


def _parse(body: bytes) -> AlertmanagerWebhook | Response:
    try:
        return AlertmanagerWebhook.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        return _error(400, f"Not an Alertmanager webhook: {where}: {first['msg']}")


def create_alert_logger(
    open_store: Callable[[], AlertStore],
    *,
    token: str | None = None,
    clock: Callable[[], float] = time.time,
) -> FastAPI:
    stores: list[AlertStore] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        del app
        stores.append(open_store())
        try:
            yield
        finally:
            await stores.pop().aclose()

    app = FastAPI(title="HybridInference alert logger", version=__version__, lifespan=lifespan)

    def authorized(request: Request) -> bool:
        return _authorized(request, token)

    async def webhook(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "Invalid or missing bearer token.", "authentication_error")
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return _error(413, f"Body over {MAX_BODY_BYTES} bytes.")
        payload = _parse(body)
        if isinstance(payload, Response):
            return payload
        alerts = stored_alerts(payload, clock())
        await stores[0].save(alerts)
        return _json({"stored": len(alerts)})

    async def list_alerts(request: Request) -> Response:
        if not authorized(request):
            return _error(401, "Invalid or missing bearer token.", "authentication_error")
        status = request.query_params.get("status")
        if status is not None and status not in STATUSES:
            return _error(400, f"status: expected one of {', '.join(STATUSES)}")
        try:
            limit = min(int(request.query_params.get("limit", "100")), MAX_LIST)
        except ValueError:
            return _error(400, "limit: expected an integer")
        alerts = await stores[0].recent(status, max(limit, 1))
        return _json({"object": "list", "data": [a.to_json() for a in alerts]})

    async def health(request: Request) -> Response:
        del request
        return _json({"status": "ok"})

    app.add_api_route("/webhook", webhook, methods=["POST"], response_model=None)
    app.add_api_route("/alerts", list_alerts, methods=["GET"], response_model=None)
    app.add_api_route("/health", health, methods=["GET"], response_model=None)
    return app
