"""The API key behind an operator's playground.

Operators sign in with the admin token, which the gateway does not take for inference
(``/v1/*`` wants an API key). So the first time an operator's playground calls ``/v1/*``,
this dashboard creates one key named ``dashboard playground`` through ``/admin/keys``, uses
it for every operator's playground, and revokes it when the dashboard stops. Its requests
are logged and counted like any key's; revoking it in the Keys page is safe (a new one is
made on the next use).
"""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp

from hybridinference.dashboard.proxy import GatewayClient

KEY_NAME = "dashboard playground"


class PlaygroundUnavailable(Exception):
    """The gateway would not create the playground key."""


class PlaygroundKey:
    def __init__(self, gateway: GatewayClient) -> None:
        self._gateway = gateway
        self._lock = asyncio.Lock()
        self._secret: str | None = None
        self._key_id: str | None = None
        self._admin_token: str | None = None

    async def secret(self, admin_token: str) -> str:
        async with self._lock:
            if self._secret is None:
                status, body = await self._gateway.call(
                    "POST", "/admin/keys", admin_token, {"name": KEY_NAME}
                )
                if status != 201 or not isinstance(body, dict) or "key" not in body:
                    raise PlaygroundUnavailable(f"creating the playground key answered {status}")
                self._secret, self._key_id = str(body["key"]), str(body["id"])
                self._admin_token = admin_token
            return self._secret

    def forget(self, secret: str) -> None:
        """The gateway refused this key (revoked): make a new one next time."""
        if self._secret == secret:
            self._secret = self._key_id = None

    async def aclose(self) -> None:
        if self._key_id is None or self._admin_token is None:
            return
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            await self._gateway.call("DELETE", f"/admin/keys/{self._key_id}", self._admin_token)
        self._secret = self._key_id = None
