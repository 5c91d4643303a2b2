"""Typed access to the ``AppState`` from a request (no globals, no DI on the hot path)."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from starlette.requests import Request

if TYPE_CHECKING:
    from hybridinference.state import AppState

STATE_KEY = "hybridinference"


def app_state(request: Request) -> AppState:
    # item access: ``getattr`` first fails the normal attribute lookup (an AttributeError
    # with its message built and dropped) before Starlette's ``__getattr__`` finds it
    return cast("AppState", request.app.state[STATE_KEY])


def request_id(request: Request) -> str:
    return cast(str, request.scope["hybridinference.request_id"])
