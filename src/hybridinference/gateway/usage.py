"""Usage analytics over HTTP: ``GET /admin/usage`` (admin token; any key, model, route)
and ``GET /v1/usage`` (an API key's own usage, with its limits and current spend).

Query parameters: ``start`` and ``end`` (unix seconds or ISO 8601; default: the last 24
hours), ``bucket`` (seconds or ``5m``/``1h``/``1d``; default ``1h``), ``group_by``
(comma-separated: ``key``, ``model``, ``route``, ``endpoint``) and the filters ``key_id``,
``model``, ``route``. Each row: requests, errors, error rate, tokens, cost, latency and
time-to-first-token p50/p95/p99.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request

from hybridinference.errors import (
    AuthenticationFailed,
    GatewayError,
    InvalidRequest,
    ServiceUnavailable,
)
from hybridinference.gateway.auth import (
    check_admin,
    describe_key,
    describe_spend,
    request_key,
)
from hybridinference.gateway.deps import app_state
from hybridinference.gateway.responses import JSONResponse, error_response
from hybridinference.storage.usage import DIMENSIONS, UsageQuery, UsageRow

logger = logging.getLogger(__name__)
DAY = 86_400.0
UNITS: dict[str, int] = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
MAX_BUCKETS = 10_000
ADDITIVE = ("requests", "errors", "prompt_tokens", "completion_tokens", "total_tokens", "cost")


def parse_time(params: dict[str, str], name: str, default: float) -> float:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise InvalidRequest(
            f"Invalid '{name}': expected unix seconds or an ISO 8601 time.", param=name
        ) from None


def parse_bucket(raw: str | None) -> int:
    if not raw:
        return 3600
    number, unit = (raw, 1) if raw[-1].isdigit() else (raw[:-1], UNITS.get(raw[-1]))
    if unit is None or not number.isdigit() or int(number) <= 0:
        raise InvalidRequest(
            "Invalid 'bucket': expected seconds or a number with s, m, h or d.", param="bucket"
        )
    return int(number) * unit


def parse_query(params: dict[str, str], now: float, forced_key: str | None) -> UsageQuery:
    end = parse_time(params, "end", now)
    start = parse_time(params, "start", end - DAY)
    bucket = parse_bucket(params.get("bucket"))
    group_by = tuple(d for d in params.get("group_by", "").split(",") if d)
    if unknown := [d for d in group_by if d not in DIMENSIONS]:
        raise InvalidRequest(
            f"Invalid 'group_by': {', '.join(unknown)} (expected {', '.join(DIMENSIONS)}).",
            param="group_by",
        )
    if end <= start:
        raise InvalidRequest("'end' must be after 'start'.", param="end")
    if (end - start) / bucket > MAX_BUCKETS:
        raise InvalidRequest(f"Too many buckets (over {MAX_BUCKETS}).", param="bucket")
    return UsageQuery(
        start=start,
        end=end,
        bucket_seconds=bucket,
        group_by=group_by,
        key_id=forced_key or params.get("key_id") or None,
        model=params.get("model") or None,
        route=params.get("route") or None,
    )


def describe_usage(query: UsageQuery, rows: list[UsageRow]) -> dict[str, Any]:
    totals: dict[str, float] = {name: 0 for name in ADDITIVE}
    for row in rows:
        for name in ADDITIVE:
            totals[name] += getattr(row, name)
    totals["error_rate"] = totals["errors"] / totals["requests"] if totals["requests"] else 0.0
    return {
        "object": "usage",
        "start": query.start,
        "end": query.end,
        "bucket_seconds": query.bucket_seconds,
        "group_by": list(query.group_by),
        "data": [row.to_json() for row in rows],
        "totals": totals,
    }


async def _run(request: Request, query: UsageQuery) -> list[UsageRow]:
    try:
        return await app_state(request).store.usage(query)
    except Exception as exc:
        logger.exception("usage query failed")
        raise ServiceUnavailable("Usage data is unavailable right now.") from exc


async def admin_usage(request: Request) -> JSONResponse:
    state = app_state(request)
    try:
        check_admin(state.admin_token, request_key(request))
        query = parse_query(dict(request.query_params), state.wall_clock(), None)
        rows = await _run(request, query)
    except GatewayError as exc:
        return error_response(exc)
    return JSONResponse(describe_usage(query, rows))


async def own_usage(request: Request) -> JSONResponse:
    state = app_state(request)
    try:
        principal = await state.keys.authenticate(request_key(request))
        if principal.key_id is None:
            raise AuthenticationFailed("Usage is kept per API key: send your key.")
        query = parse_query(dict(request.query_params), state.wall_clock(), principal.key_id)
        rows = await _run(request, query)
    except GatewayError as exc:
        return error_response(exc)
    body = describe_usage(query, rows)
    if principal.record is not None:
        key = describe_key(principal.record)
        body["key"] = {k: v for k, v in key.items() if k != "prefix"}
    body["spend"] = describe_spend(state.keys.spend(principal.key_id))
    return JSONResponse(body)


def include_usage_routes(app: FastAPI) -> None:
    app.add_api_route(
        "/admin/usage", admin_usage, methods=["GET"], response_model=None, tags=["admin"]
    )
    app.add_api_route("/v1/usage", own_usage, methods=["GET"], response_model=None, tags=["usage"])
