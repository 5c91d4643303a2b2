"""The dashboard's only way to data: ``/api/<path>`` is forwarded to the gateway's own HTTP
API with the signed-in session's credential, when that role's rule table allows it.

The tables are the security boundary between operators and key holders: a key holder
reaches only the model list, chat completions and the endpoints that the gateway itself
scopes to the calling key (so another key's data is never reachable through here).
Responses are relayed chunk by chunk, so a streamed chat reply is not buffered.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from hybridinference.dashboard.sessions import Role

#: response headers worth passing on to the page (route, request id, rate-limit hints)
RELAYED_HEADERS = ("content-type", "x-request-id", "retry-after", "cache-control")
RELAYED_PREFIX = "x-hybridinference-"
SAFE_PATH = re.compile(r"/[A-Za-z0-9_.:/-]*")
HTTP_METHODS = frozenset({"get", "post", "put", "patch", "delete"})
ENDPOINTS_TTL = 30.0


@dataclass(frozen=True, slots=True)
class Rule:
    methods: frozenset[str]
    pattern: re.Pattern[str]

    def allows(self, method: str, path: str) -> bool:
        return method in self.methods and self.pattern.fullmatch(path) is not None


def rule(methods: str, pattern: str) -> Rule:
    return Rule(frozenset(methods.split()), re.compile(pattern))


#: what every signed-in user may call
COMMON_RULES = (
    rule("GET", r"/v1/models"),
    rule("POST", r"/v1/chat/completions"),
    # the gateway answers these for the calling key only
    rule("GET", r"/v1/usage(/[A-Za-z0-9_.-]+){0,2}"),
)
RULES: Mapping[Role, tuple[Rule, ...]] = {
    Role.OPERATOR: (
        *COMMON_RULES,
        rule("GET POST PATCH PUT DELETE", r"/admin/[A-Za-z0-9_.:/-]+"),
        rule("GET", r"/health(/ready)?"),
    ),
    Role.KEY_HOLDER: COMMON_RULES,
}


def endpoints_for(role: Role, endpoints: frozenset[str]) -> list[str]:
    """The ``"METHOD /path/{param}"`` entries of the gateway's API that ``role`` may call."""
    out = []
    for entry in endpoints:
        method, _, template = entry.partition(" ")
        if allowed(role, method, re.sub(r"\{[^}/]+\}", "x", template)):
            out.append(entry)
    return sorted(out)


def allowed(role: Role, method: str, path: str) -> bool:
    if SAFE_PATH.fullmatch(path) is None or ".." in path or "//" in path:
        return False
    return any(r.allows(method, path) for r in RULES[role])


@dataclass(frozen=True, slots=True)
class Upstream:
    status: int
    headers: dict[str, str]
    body: AsyncIterator[bytes]


class GatewayClient:
    """One pooled HTTP client to the gateway, opened and closed with the dashboard app."""

    def __init__(self, base_url: str, *, connect_timeout: float = 5.0) -> None:
        self._base = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._endpoints: frozenset[str] = frozenset()
        self._endpoints_at = float("-inf")

    @property
    def base_url(self) -> str:
        return self._base

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout, auto_decompress=False)
        return self._session

    async def status(self, method: str, path: str, credential: str) -> int:
        """The status the gateway answers this credential with (a sign-in probe)."""
        async with self._client().request(
            method, self._base + path, headers={"authorization": f"Bearer {credential}"}
        ) as response:
            await response.read()
            return response.status

    async def call(
        self, method: str, path: str, credential: str, body: object = None
    ) -> tuple[int, Any]:
        """One JSON call to the gateway: (status, decoded body or None)."""
        async with self._client().request(
            method,
            self._base + path,
            headers={"authorization": f"Bearer {credential}"},
            json=body,
        ) as response:
            data = await response.read()
            try:
                return response.status, orjson.loads(data) if data else None
            except orjson.JSONDecodeError:
                return response.status, None

    async def endpoints(self) -> frozenset[str]:
        """Every ``"METHOD /path"`` the gateway serves, from its OpenAPI document (cached
        briefly), so the page calls only endpoints that exist instead of probing."""
        now = asyncio.get_running_loop().time()
        if now - self._endpoints_at < ENDPOINTS_TTL:
            return self._endpoints
        async with self._client().get(self._base + "/openapi.json") as response:
            document = await response.json() if response.status == 200 else {}
        paths = document.get("paths", {}) if isinstance(document, dict) else {}
        self._endpoints = frozenset(
            f"{method.upper()} {path}"
            for path, operations in paths.items()
            for method in operations
            if method in HTTP_METHODS
        )
        self._endpoints_at = now
        return self._endpoints

    async def open(
        self,
        method: str,
        path: str,
        query: str,
        credential: str,
        body: bytes | None,
        content_type: str | None,
    ) -> Upstream:
        headers = {"authorization": f"Bearer {credential}", "accept-encoding": "identity"}
        if content_type:
            headers["content-type"] = content_type
        url = self._base + path + (f"?{query}" if query else "")
        response = await self._client().request(method, url, headers=headers, data=body)
        relayed = {
            name.lower(): value
            for name, value in response.headers.items()
            if name.lower() in RELAYED_HEADERS or name.lower().startswith(RELAYED_PREFIX)
        }
        return Upstream(response.status, relayed, _chunks(response))

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _chunks(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.content.iter_any():
            yield chunk
    finally:
        if response.content.at_eof():
            response.release()  # back to the pool
        else:
            response.close()  # abandoned mid-body (the page went away): drop the connection
