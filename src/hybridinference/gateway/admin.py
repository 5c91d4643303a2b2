"""``/admin/keys``: create (secret shown once), list, get (with spend), update, revoke.
Admin token required."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request

from hybridinference.errors import GatewayError, InvalidRequest, NotFound
from hybridinference.gateway.auth import (
    check_admin,
    describe_key,
    describe_spend,
    issue_key,
    request_key,
)
from hybridinference.gateway.body import read_json_object, validate
from hybridinference.gateway.deps import app_state
from hybridinference.gateway.responses import JSONResponse, error_response


class KeySettings(BaseModel):
    """Owner, limits and budgets (None: unlimited), shared by create and update."""

    model_config = ConfigDict(extra="forbid")

    owner: str | None = Field(None, max_length=200)
    rpm_limit: int | None = Field(None, ge=1)
    tpm_limit: int | None = Field(None, ge=1)
    max_concurrency: int | None = Field(None, ge=1)
    daily_budget: float | None = Field(None, ge=0)
    monthly_budget: float | None = Field(None, ge=0)


class CreateKey(KeySettings):
    name: str = Field(min_length=1, max_length=200)
    allowed_models: list[str] | None = None


class UpdateKey(KeySettings):
    """Only the fields sent change; ``null`` clears a limit."""

    name: str | None = Field(None, min_length=1, max_length=200)
    allowed_models: list[str] | None = None


def _authorize(request: Request) -> None:
    check_admin(
        app_state(request).admin_token,
        request_key(request),
    )


async def create_key(request: Request) -> JSONResponse:
    state = app_state(request)
    try:
        _authorize(request)
        body = await read_json_object(request, state.config.server.max_body_bytes)
        validate(CreateKey, body)
        spec = CreateKey.model_validate(body)
        record, secret = await issue_key(
            state.store,
            state.keys.hasher,
            name=spec.name,
            allowed_models=tuple(spec.allowed_models) if spec.allowed_models else None,
            now=state.wall_clock(),
            settings=spec.model_dump(include=set(KeySettings.model_fields)),
        )
    except GatewayError as exc:
        return error_response(exc)
    state.keys.remember(record)
    return JSONResponse({**describe_key(record), "key": secret}, status_code=201)


async def list_keys(request: Request) -> JSONResponse:
    state = app_state(request)
    try:
        _authorize(request)
    except GatewayError as exc:
        return error_response(exc)
    keys = await state.store.list_keys()
    return JSONResponse({"object": "list", "data": [describe_key(k) for k in keys]})


async def revoke_key(request: Request) -> JSONResponse:
    state = app_state(request)
    key_id = request.path_params["key_id"]
    try:
        _authorize(request)
        if not await state.store.revoke_key(key_id, state.wall_clock()):
            raise NotFound(f"No active key with id {key_id!r}.", param="key_id")
    except GatewayError as exc:
        return error_response(exc)
    state.keys.forget(key_id)
    return JSONResponse({"id": key_id, "revoked": True})


async def get_key(request: Request) -> JSONResponse:
    state = app_state(request)
    key_id = request.path_params["key_id"]
    try:
        _authorize(request)
        record = await state.store.get_key(key_id)
        if record is None:
            raise NotFound(f"No key with id {key_id!r}.", param="key_id")
    except GatewayError as exc:
        return error_response(exc)
    spend = await state.store.key_spend(state.wall_clock())
    return JSONResponse({**describe_key(record), "spend": describe_spend(spend.get(key_id))})


async def update_key(request: Request) -> JSONResponse:
    state = app_state(request)
    key_id = request.path_params["key_id"]
    try:
        _authorize(request)
        body = await read_json_object(request, state.config.server.max_body_bytes)
        validate(UpdateKey, body)
        changes = UpdateKey.model_validate(body).model_dump(exclude_unset=True)
        if changes.get("name", "") is None:
            raise InvalidRequest("'name' cannot be null.", param="name")
        if "allowed_models" in changes:
            changes["allowed_models"] = tuple(changes["allowed_models"] or ()) or None
        record = await state.store.update_key(key_id, changes, state.wall_clock())
        if record is None:
            raise NotFound(f"No key with id {key_id!r}.", param="key_id")
    except GatewayError as exc:
        return error_response(exc)
    if record.active:
        state.keys.remember(record)  # this process at once; the others on their next reload
    return JSONResponse(describe_key(record))
