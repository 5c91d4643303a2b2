"""The request log over HTTP: filterable, paginated, one request with its routing attempts.

- ``GET /admin/requests`` and ``GET /admin/requests/{request_id}``: every key's requests
  (admin token).
- ``GET /v1/usage/requests`` and ``GET /v1/usage/requests/{request_id}``: the calling
  API key's own requests only (the key filter is forced, never taken from the query).

Filters: ``since``/``until`` (unix seconds), ``request_id``, ``key_id``, ``model``,
``provider`` (the part of the route before the slash), ``route``, ``status`` (``ok`` =
below 400, ``error`` = 400 and above, or one code), then ``limit`` (1–1000) and
``offset``; newest first. It reads the most recent rows through ``Store.recent_requests``
(500 first, more only while the ``since`` window is not yet covered, at most
``scan_limit``) and filters those, so pages reach at most that far back (``truncated``
says when older rows exist).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI
from starlette.requests import Request

from hybridinference.errors import GatewayError, InvalidRequest, NotFound
from hybridinference.gateway.auth import check_admin, request_key
from hybridinference.gateway.deps import app_state
from hybridinference.gateway.responses import JSONResponse, error_response
from hybridinference.schemas.records import RequestRecord
from hybridinference.storage.base import Store

SCAN_LIMIT = 5_000
FIRST_SCAN = 500
MAX_PAGE = 1000
STATUS_CLASSES: dict[str, Callable[[int], bool]] = {
    "ok": lambda status: status < 400,
    "error": lambda status: status >= 400,
}


@dataclass(frozen=True, slots=True)
class RequestFilter:
    since: float | None = None
    until: float | None = None
    key_id: str | None = None
    model: str | None = None
    provider: str | None = None
    route: str | None = None
    status: str | None = None
    request_id: str | None = None

    def matches(self, r: RequestRecord) -> bool:
        return (
            (self.since is None or r.created_at >= self.since)
            and (self.until is None or r.created_at < self.until)
            and (self.key_id is None or r.key_id == self.key_id)
            and (self.model is None or r.model == self.model)
            and (self.route is None or r.route == self.route)
            and (self.provider is None or (r.route or "").split("/", 1)[0] == self.provider)
            and (self.status is None or _status_matches(self.status, r.status))
            and (self.request_id is None or r.request_id == self.request_id)
        )


def _status_matches(wanted: str, status: int) -> bool:
    check = STATUS_CLASSES.get(wanted)
    return check(status) if check is not None else str(status) == wanted


def _number(params: dict[str, str], name: str) -> float | None:
    raw = params.get(name)
    if raw in (None, ""):
        return None
    try:
        return float(raw)
    except ValueError:
        raise InvalidRequest(f"'{name}' must be a number (unix seconds).", param=name) from None


def _int(params: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name) or str(default)
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise InvalidRequest(f"'{name}' must be an integer from {low} to {high}.", param=name)
    return int(raw)


def parse_filter(params: dict[str, str], forced_key: str | None, scoped: bool) -> RequestFilter:
    status = params.get("status") or None
    if status is not None and status not in STATUS_CLASSES and not status.isdigit():
        raise InvalidRequest("'status' must be 'ok', 'error' or an HTTP status.", param="status")
    return RequestFilter(
        since=_number(params, "since"),
        until=_number(params, "until"),
        key_id=forced_key if scoped else (params.get("key_id") or None),
        model=params.get("model") or None,
        provider=params.get("provider") or None,
        route=params.get("route") or None,
        status=status,
        request_id=params.get("request_id") or None,
    )


def describe_request(record: RequestRecord) -> dict[str, object]:
    data = dataclasses.asdict(record)
    data["provider"] = record.route.split("/", 1)[0] if record.route else None
    return data


async def scan(store: Store, wanted: RequestFilter) -> tuple[list[RequestRecord], bool]:
    """The matching rows among the most recent ones, and whether older rows went unread."""
    size = FIRST_SCAN
    while True:
        rows = await store.recent_requests(size)
        matching = [r for r in rows if wanted.matches(r)]
        exhausted = len(rows) < size
        covered = wanted.since is not None and bool(rows) and rows[-1].created_at < wanted.since
        found = wanted.request_id is not None and bool(matching)
        if exhausted or covered or found or size >= SCAN_LIMIT:
            return matching, not (exhausted or covered or found)
        size = min(SCAN_LIMIT, size * 4)


async def _scope(request: Request) -> tuple[bool, str | None]:
    """(scoped to one key?, that key's id) for the caller; raises when not allowed."""
    state = app_state(request)
    presented = request_key(request)
    if request.url.path.startswith("/admin/"):
        check_admin(state.admin_token, presented)
        return False, None
    principal = await state.keys.authenticate(presented)
    return True, principal.key_id


async def list_requests(request: Request) -> JSONResponse:
    state = app_state(request)
    try:
        scoped, key_id = await _scope(request)
        params = dict(request.query_params)
        wanted = parse_filter(params, key_id, scoped)
        limit = _int(params, "limit", 50, 1, MAX_PAGE)
        offset = _int(params, "offset", 0, 0, SCAN_LIMIT)
    except GatewayError as exc:
        return error_response(exc)
    matching, truncated = await scan(state.store, wanted)
    page = matching[offset : offset + limit]
    return JSONResponse(
        {
            "object": "list",
            "data": [describe_request(r) for r in page],
            "offset": offset,
            "limit": limit,
            "total": len(matching),
            "has_more": offset + limit < len(matching),
            "scan_limit": SCAN_LIMIT,
            "truncated": truncated,
        }
    )


async def get_request(request: Request) -> JSONResponse:
    state = app_state(request)
    request_id = request.path_params["request_id"]
    try:
        scoped, key_id = await _scope(request)
        rows, _ = await scan(state.store, RequestFilter(request_id=request_id))
        found = rows[0] if rows else None
        if found is None or (scoped and found.key_id != key_id):
            raise NotFound(f"No request with id {request_id!r}.", param="request_id")
    except GatewayError as exc:
        return error_response(exc)
    return JSONResponse(describe_request(found))


def include_request_routes(app: FastAPI) -> None:
    for prefix, tag in (("/admin/requests", "admin"), ("/v1/usage/requests", "usage")):
        app.add_api_route(prefix, list_requests, methods=["GET"], response_model=None, tags=[tag])
        app.add_api_route(
            prefix + "/{request_id}",
            get_request,
            methods=["GET"],
            response_model=None,
            tags=[tag],
        )
