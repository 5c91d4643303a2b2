"""The dashboard web app: the static single-page UI, sign-in sessions and the ``/api`` proxy.

- ``GET /`` and ``/static/*``: the page (plain HTML, CSS and ES modules; no build step).
- ``POST /session`` signs in with the admin token (operator) or an API key (key holder);
  the gateway itself decides which it is. ``GET`` says who is signed in (and hands the
  page its CSRF token); ``DELETE`` signs out.
- ``/api/<path>`` forwards to the gateway API as the signed-in user (see ``proxy``).
- ``GET /api/alerts`` (operators) lists the alert logger's alerts, when one is configured.

Changes (any method but GET) need the session's CSRF token in ``X-CSRF-Token`` and, when
the browser sends one, an ``Origin`` of this same host.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import orjson
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from hybridinference.dashboard.headers import SecurityHeaders
from hybridinference.dashboard.playground import PlaygroundKey, PlaygroundUnavailable
from hybridinference.dashboard.proxy import GatewayClient, allowed, endpoints_for
from hybridinference.dashboard.sessions import (
    COOKIE_NAME,
    CSRF_HEADER,
    Role,
    Session,
    SessionStore,
    SignInThrottle,
)

STATIC_DIR = Path(__file__).parent / "static"
SIGN_IN_MAX_BYTES = 4096
#: role → the gateway call that succeeds only for that role's credential, in trial order.
#: ``/v1/usage`` needs a real key even when the gateway runs without auth (then it refuses
#: everyone), so a wrong admin token never passes as a key and always counts as a failure.
ROLE_PROBES: tuple[tuple[Role, str], ...] = (
    (Role.OPERATOR, "/admin/keys"),
    (Role.KEY_HOLDER, "/v1/usage?bucket=1d"),
)


@dataclass(frozen=True, slots=True)
class DashboardSettings:
    gateway_url: str
    session_hours: float = 12.0
    max_body_bytes: int = 2 * 1024 * 1024
    alerts_url: str | None = None  # the alert logger service
    alerts_token: str | None = None


def error(status: int, message: str, error_type: str) -> Response:
    body = {"error": {"message": message, "type": error_type, "param": None, "code": None}}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def json(data: object, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type="application/json")


def same_origin(request: Request) -> bool:
    """No ``Origin`` (not a cross-site browser request) or one naming this host. Ports are
    not compared: a proxy in front (nginx's ``Host $host``) drops the port the browser saw."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("x-forwarded-host") or request.headers.get("host", "")
    return urlsplit(origin).hostname == urlsplit(f"//{host}").hostname


async def read_limited(request: Request, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


class Handlers:
    def __init__(
        self,
        sessions: SessionStore,
        gateway: GatewayClient,
        settings: DashboardSettings,
        alerts: GatewayClient | None,
    ) -> None:
        self._sessions = sessions
        self._throttle = SignInThrottle(clock=sessions.clock)
        self._gateway = gateway
        self._max_body = settings.max_body_bytes
        self._alerts = alerts
        self._alerts_token = settings.alerts_token or ""
        self.playground = PlaygroundKey(gateway)

    def _session(self, request: Request) -> Session | None:
        return self._sessions.get(request.cookies.get(COOKIE_NAME))

    async def index(self, request: Request) -> Response:
        del request
        return FileResponse(STATIC_DIR / "index.html", headers={"cache-control": "no-cache"})

    async def whoami(self, request: Request) -> Response:
        """Who is signed in (``role`` null when nobody), and which gateway endpoints that
        role can reach through ``/api``."""
        session = self._session(request)
        if session is None:
            return json({"role": None})
        return json({**session.public(), "endpoints": await self._endpoints(session.role)})

    async def _endpoints(self, role: Role) -> list[str]:
        try:
            found = endpoints_for(role, await self._gateway.endpoints())
        except (aiohttp.ClientError, TimeoutError, ValueError):
            found = []
        if self._alerts is not None and role is Role.OPERATOR:
            found.append("GET /alerts")  # served by the alert logger, via this server
        return found

    async def alerts(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return error(401, "Not signed in.", "authentication_error")
        if session.role is not Role.OPERATOR:
            return error(403, "Not allowed for this sign-in.", "permission_error")
        if self._alerts is None:
            return error(404, "No alert logger is configured.", "not_found_error")
        try:
            upstream = await self._alerts.open(
                "GET", "/alerts", request.url.query, self._alerts_token, None, None
            )
        except (aiohttp.ClientError, TimeoutError):
            return error(502, "The alert logger is not reachable.", "upstream_error")
        return StreamingResponse(
            upstream.body, status_code=upstream.status, headers=upstream.headers
        )

    async def sign_in(self, request: Request) -> Response:
        if not same_origin(request):
            return error(403, "Cross-site sign-in refused.", "permission_error")
        client = request.client.host if request.client else "?"
        wait = self._throttle.retry_after(client)
        if wait is not None:
            refused = error(429, "Too many failed sign-ins: try again later.", "rate_limit_error")
            refused.headers["retry-after"] = str(int(wait) + 1)
            return refused
        raw = await read_limited(request, SIGN_IN_MAX_BYTES)
        try:
            token = orjson.loads(raw or b"null").get("token")
        except (orjson.JSONDecodeError, AttributeError):
            token = None
        if not isinstance(token, str) or not token.strip():
            return error(400, "Expected a JSON body with a 'token'.", "invalid_request_error")
        token = token.strip()
        role = await self._probe(token)
        if isinstance(role, Response):
            if role.status_code == 401:
                self._throttle.failed(client)
            return role
        label = "operator" if role is Role.OPERATOR else token[:10] + "…"
        session = self._sessions.create(role, token, label)
        response = json({**session.public(), "endpoints": await self._endpoints(role)})
        response.set_cookie(
            COOKIE_NAME,
            session.id,
            max_age=int(self._sessions.ttl_seconds),
            path="/",
            secure=True,
            httponly=True,
            samesite="strict",
        )
        return response

    async def _probe(self, token: str) -> Role | Response:
        try:
            for role, path in ROLE_PROBES:
                if await self._gateway.status("GET", path, token) == 200:
                    return role
        except (aiohttp.ClientError, TimeoutError):
            return error(502, "The gateway is not reachable.", "upstream_error")
        return error(401, "Not a valid admin token or API key.", "authentication_error")

    async def sign_out(self, request: Request) -> Response:
        session = self._session(request)
        if session is not None:
            if not session.csrf_matches(request.headers.get(CSRF_HEADER)):
                return error(403, "Missing or wrong CSRF token.", "permission_error")
            self._sessions.drop(session.id)
        response = Response(status_code=204)
        response.delete_cookie(COOKIE_NAME, path="/", secure=True, httponly=True, samesite="strict")
        return response

    async def api(self, request: Request) -> Response:
        session = self._session(request)
        if session is None:
            return error(401, "Not signed in.", "authentication_error")
        path = "/" + request.path_params["path"]
        if not allowed(session.role, request.method, path):
            return error(403, "Not allowed for this sign-in.", "permission_error")
        body: bytes | None = None
        if request.method != "GET":
            if not same_origin(request) or not session.csrf_matches(
                request.headers.get(CSRF_HEADER)
            ):
                return error(403, "Missing or wrong CSRF token.", "permission_error")
            body = await read_limited(request, self._max_body)
            if body is None:
                return error(413, "Request body too large.", "invalid_request_error")
        playground = session.role is Role.OPERATOR and path.startswith("/v1/")
        try:
            credential = (
                await self.playground.secret(session.credential)
                if playground
                else session.credential
            )
            upstream = await self._gateway.open(
                request.method,
                path,
                request.url.query,
                credential,
                body,
                request.headers.get("content-type"),
            )
        except PlaygroundUnavailable:
            return error(503, "Could not create the playground's API key.", "upstream_error")
        except (aiohttp.ClientError, TimeoutError):
            return error(502, "The gateway is not reachable.", "upstream_error")
        if upstream.status == 401 and playground:
            self.playground.forget(credential)
        elif upstream.status == 401:
            self._sessions.drop(session.id)  # the key was revoked or the token changed
        return StreamingResponse(
            upstream.body, status_code=upstream.status, headers=upstream.headers
        )


def create_dashboard_app(
    settings: DashboardSettings, *, clock: Callable[[], float] = time.monotonic
) -> Starlette:
    sessions = SessionStore(ttl_seconds=settings.session_hours * 3600, clock=clock)
    gateway = GatewayClient(settings.gateway_url)
    alerts = GatewayClient(settings.alerts_url) if settings.alerts_url else None
    handlers = Handlers(sessions, gateway, settings, alerts)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        del app
        try:
            yield
        finally:
            await handlers.playground.aclose()
            await gateway.aclose()
            if alerts is not None:
                await alerts.aclose()

    methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
    return Starlette(
        routes=[
            Route("/", handlers.index, methods=["GET"]),
            Route("/session", handlers.whoami, methods=["GET"]),
            Route("/session", handlers.sign_in, methods=["POST"]),
            Route("/session", handlers.sign_out, methods=["DELETE"]),
            Route("/api/alerts", handlers.alerts, methods=["GET"]),
            Route("/api/{path:path}", handlers.api, methods=methods),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ],
        middleware=[Middleware(SecurityHeaders)],
        lifespan=lifespan,
    )
