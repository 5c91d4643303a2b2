"""The direct lane (gateway/fastpath.py) behaves like the FastAPI stack it bypasses."""

from __future__ import annotations

import httpx
import pytest
from fastapi import Depends
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hybridinference.gateway.fastpath import GatewayApp

SEEN_ROUTES: list[str | None] = []


class TagMiddleware:
    """User middleware: must wrap the lane too; records the route the lane set."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def tagged(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"x-tag", b"yes")]
            await send(message)

        await self.app(scope, receive, tagged)
        route = scope.get("route")
        SEEN_ROUTES.append(getattr(route, "path", None))


async def echo(request: Request) -> Response:
    body = await request.body()
    # FastAPI's own request handler would have put its exit stacks in the scope
    return JSONResponse({"fastapi": "fastapi_inner_astack" in request.scope, "n": len(body)})


async def boom(request: Request) -> Response:
    raise RuntimeError("bug")


def dependency() -> str:
    return "dep"


async def with_dependency(value: str = Depends(dependency)) -> Response:
    return JSONResponse({"value": value})


async def unexpected(request: Request, exc: Exception) -> Response:
    return JSONResponse({"error": {"type": "server_error", "message": str(exc)}}, status_code=500)


def build() -> GatewayApp:
    app = GatewayApp()
    app.add_api_route("/echo", echo, methods=["POST"])
    app.add_api_route("/boom", boom, methods=["POST"])
    app.add_api_route("/dep", with_dependency, methods=["POST"])
    app.add_exception_handler(Exception, unexpected)
    app.direct_lane(("/echo", "/boom", "/dep"))
    app.add_middleware(TagMiddleware)
    return app


@pytest.fixture
def client() -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=build(), raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def test_lane_serves_the_endpoint_inside_the_user_middleware(
    client: httpx.AsyncClient,
) -> None:
    SEEN_ROUTES.clear()
    async with client:
        response = await client.post("/echo", content=b"12345")
    assert response.status_code == 200
    assert response.json() == {"fastapi": False, "n": 5}
    assert response.headers["x-tag"] == "yes"
    assert SEEN_ROUTES == ["/echo"]  # the route is in the scope, as the router would set it


async def test_an_escaping_exception_gets_the_apps_exception_handler(
    client: httpx.AsyncClient,
) -> None:
    async with client:
        response = await client.post("/boom")
    assert response.status_code == 500
    assert response.json() == {"error": {"type": "server_error", "message": "bug"}}


async def test_other_methods_on_a_lane_path_still_get_the_routers_405(
    client: httpx.AsyncClient,
) -> None:
    async with client:
        response = await client.get("/echo")
    assert response.status_code == 405
    assert response.headers["x-tag"] == "yes"


async def test_an_endpoint_with_dependencies_stays_on_the_full_stack(
    client: httpx.AsyncClient,
) -> None:
    async with client:  # in the lane it would be called with the Request and fail
        response = await client.post("/dep")
    assert response.status_code == 200
    assert response.json() == {"value": "dep"}
