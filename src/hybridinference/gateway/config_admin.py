"""``/admin/config`` and ``/admin/overrides`` (admin token required).

- ``GET /admin/config``: this process's config version, when it was loaded, reload
  counts and the last error, and how many overrides apply or are stale.
- ``POST /admin/config/reload``: reload the file now; 400 with the validation message
  when it is invalid (the current config stays).
- ``GET /admin/overrides``: the stored overrides, each with ``stale`` (why it does not
  apply to the current file, or null); ``PUT /admin/overrides``: set one; ``DELETE
  /admin/overrides?model=&route=&field=``: clear one (``?all=true``: every one);
  ``GET /admin/overrides/audit``: who changed what, when, old → new.

A change is applied by this process at once and by every other within
``reload.overrides_interval`` seconds (they poll the database).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from hybridinference.errors import ConfigError, GatewayError, InvalidRequest, NotFound
from hybridinference.gateway.auth import check_admin, request_key
from hybridinference.gateway.body import read_json_object, validate
from hybridinference.gateway.deps import app_state
from hybridinference.gateway.forwarded import client_address
from hybridinference.gateway.responses import JSONResponse, error_response
from hybridinference.routing.overrides import Override, check_override, stale_reason
from hybridinference.schemas.overrides import OverrideAudit, OverrideRecord

if TYPE_CHECKING:
    from hybridinference.state import AppState

AUDIT_LIMIT = 1000


class SetOverride(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, max_length=200)
    route: str | None = Field(None, max_length=400)
    field: str = Field(min_length=1, max_length=40)
    value: bool | float | str
    actor: str | None = Field(None, max_length=200, description="Who; default: admin@ip.")
    reason: str | None = Field(None, max_length=1000)


def _authorized(request: Request) -> AppState:
    state = app_state(request)
    check_admin(state.admin_token, request_key(request))
    return state


async def get_config(request: Request) -> JSONResponse:
    try:
        state = _authorized(request)
    except GatewayError as exc:
        return error_response(exc)
    return JSONResponse({"object": "config", "pid": os.getpid(), **state.runtime.describe()})


async def reload_config(request: Request) -> JSONResponse:
    try:
        state = _authorized(request)
        try:
            result = await state.runtime.reload("admin")
        except ConfigError as exc:
            raise InvalidRequest(str(exc), code="invalid_config") from None
    except GatewayError as exc:
        return error_response(exc)
    body = {
        "object": "config.reload",
        "status": result.status,
        "version": result.version,
        "restart_required": list(result.restart_required),
    }
    return JSONResponse({**body, "pid": os.getpid()})


def _describe(record: OverrideRecord, stale: str | None) -> dict[str, Any]:
    return {
        "model": record.model,
        "route": record.route or None,
        "field": record.field,
        "value": orjson.loads(record.value),
        "actor": record.actor,
        "reason": record.reason,
        "updated_at": record.updated_at,
        "stale": stale,
    }


def _audit(entry: OverrideAudit) -> dict[str, Any]:
    def value(text: str | None) -> Any:
        return None if text is None else orjson.loads(text)

    return {
        "id": entry.id,
        "at": entry.at,
        "actor": entry.actor,
        "action": entry.action,
        "model": entry.model,
        "route": entry.route or None,
        "field": entry.field,
        "old": value(entry.old),
        "new": value(entry.new),
        "reason": entry.reason,
    }


async def list_overrides(request: Request) -> JSONResponse:
    try:
        state = _authorized(request)
    except GatewayError as exc:
        return error_response(exc)
    config = state.config
    data = [
        _describe(
            r, stale_reason(config, Override(r.model, r.route, r.field, orjson.loads(r.value)))
        )
        for r in await state.store.list_overrides()
    ]
    stale = sum(1 for item in data if item["stale"])
    return JSONResponse({"object": "list", "data": data, "stale": stale})


async def set_override(request: Request) -> JSONResponse:
    try:
        state = _authorized(request)
        body = await read_json_object(request, state.config.server.max_body_bytes)
        validate(SetOverride, body)
        spec = SetOverride.model_validate(body)
        checked = check_override(state.config, spec.model, spec.route, spec.field, body["value"])
        record = OverrideRecord(
            model=checked.model,
            route=checked.route,
            field=checked.field,
            value=orjson.dumps(checked.value).decode(),
            actor=spec.actor or _default_actor(request, state),
            reason=spec.reason,
            updated_at=state.wall_clock(),
        )
        previous = await state.store.change_override(record, clear=False)
    except GatewayError as exc:
        return error_response(exc)
    await state.runtime.refresh_overrides()  # this process now; the others on their poll
    return JSONResponse(
        {
            **_describe(record, None),
            "previous": None if previous is None else orjson.loads(previous.value),
        }
    )


async def clear_overrides(request: Request) -> JSONResponse:
    params = request.query_params
    try:
        state = _authorized(request)
        stored = await state.store.list_overrides()
        if params.get("all") == "true":
            targets = stored
        else:
            if "model" not in params or "field" not in params:
                raise InvalidRequest("Name the override (model, field, route) or pass all=true.")
            key = (params["model"], params.get("route") or "", params["field"])
            targets = [r for r in stored if (r.model, r.route, r.field) == key]
            if not targets:
                raise NotFound("No such override.", param="field")
    except GatewayError as exc:
        return error_response(exc)
    actor = params.get("actor") or _default_actor(request, state)
    now = state.wall_clock()
    for target in targets:
        clearing = OverrideRecord(
            target.model, target.route, target.field, target.value, actor, None, now
        )
        await state.store.change_override(clearing, clear=True)
    await state.runtime.refresh_overrides()
    return JSONResponse({"object": "list", "cleared": [_describe(t, None) for t in targets]})


async def override_audit(request: Request) -> JSONResponse:
    try:
        state = _authorized(request)
        limit = request.query_params.get("limit", "100")
        if not limit.isdigit() or not 1 <= int(limit) <= AUDIT_LIMIT:
            raise InvalidRequest(f"limit: expected 1..{AUDIT_LIMIT}.", param="limit")
    except GatewayError as exc:
        return error_response(exc)
    entries = await state.store.override_audit(int(limit))
    return JSONResponse({"object": "list", "data": [_audit(e) for e in entries]})


def _default_actor(request: Request, state: AppState) -> str:
    address = client_address(request.scope, state.config.server.trusted_proxies)
    return f"admin@{address or 'unknown'}"


def include_config_admin(app: FastAPI) -> None:
    for path, method, endpoint in (
        ("/admin/config", "GET", get_config),
        ("/admin/config/reload", "POST", reload_config),
        ("/admin/overrides", "GET", list_overrides),
        ("/admin/overrides", "PUT", set_override),
        ("/admin/overrides", "DELETE", clear_overrides),
        ("/admin/overrides/audit", "GET", override_audit),
    ):
        app.add_api_route(path, endpoint, methods=[method], response_model=None, tags=["admin"])
