"""API keys: generation, HMAC hashing, and the in-memory cache every request checks.

Only HMAC-SHA256(server secret, key) is stored. A known key never waits on the database:
the cache is reloaded in the background, and an unknown key waits for a fresh
reload (shared by concurrent misses, at most ten a second), so a key created a moment ago
by the CLI or another gateway process works at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from starlette.requests import HTTPConnection

from hybridinference.background import cancel_and_wait
from hybridinference.errors import AuthenticationFailed
from hybridinference.schemas.keys import EDITABLE_KEY_FIELDS, ApiKeyRecord, KeySpend
from hybridinference.storage.base import Store

logger = logging.getLogger(__name__)

KEY_PREFIX = "hi-"
PREFIX_SHOWN = 10
MISS_RELOAD_INTERVAL = 0.1  # seconds between reloads caused by unknown keys


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class KeyHasher:
    secret: bytes

    def hash(self, key: str) -> str:
        return hmac.digest(self.secret, key.encode(), hashlib.sha256).hex()  # one-shot C path


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling. ``key_id`` is None when auth is off (anonymous)."""

    key_id: str | None
    allowed_models: tuple[str, ...] | None
    record: ApiKeyRecord | None = None  # limits and budgets are read from it


ANONYMOUS = Principal(key_id=None, allowed_models=None)


def presented_key(authorization: str | None, api_key: str | None) -> str | None:
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    if api_key:
        return api_key.strip()
    return None


def request_key(request: HTTPConnection) -> str | None:
    """The key a request presents (``Authorization: Bearer`` or ``X-API-Key``), read from
    the raw ASGI headers (Starlette's ``Headers.get`` raises and catches per absent one)."""
    authorization: str | None = None
    api_key: str | None = None
    for name, value in request.scope["headers"]:
        if name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
        elif name == b"x-api-key" and api_key is None:
            api_key = value.decode("latin-1")
    return presented_key(authorization, api_key)


#: presented keys whose digest is remembered (then the memo starts afresh)
MAX_REMEMBERED_KEYS = 10_000


class KeyCache:
    def __init__(
        self,
        store: Store,
        hasher: KeyHasher,
        *,
        required: bool,
        refresh_seconds: float,
        clock: Callable[[], float],
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._wall_clock = wall_clock
        self._spend: dict[str, KeySpend] = {}
        self._hasher = hasher
        self._required = required
        self._refresh_seconds = refresh_seconds
        self._clock = clock
        self._by_hash: dict[str, ApiKeyRecord] = {}
        #: presented keys that authenticated → their digest, so a returning client costs a
        #: dict lookup instead of an HMAC; a revoked key still fails (``_by_hash`` decides)
        self._digests: dict[str, str] = {}
        self._last_reload = float("-inf")
        self._reload_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    @property
    def required(self) -> bool:
        return self._required

    @property
    def hasher(self) -> KeyHasher:
        return self._hasher

    async def reload(self) -> None:
        async with self._reload_lock:
            await self._load()

    async def _load(self) -> None:
        self._last_reload = self._clock()  # when this load started
        keys = await self._store.list_keys()
        self._by_hash = {k.key_hash: k for k in keys if k.active}
        self._spend = await self._store.key_spend(self._wall_clock())

    async def _reload_for_miss(self, since: float) -> None:
        """Make sure a reload that started after ``since`` (an unknown key's arrival) has
        finished: shared by concurrent misses, at most one per MISS_RELOAD_INTERVAL (the
        miss waits for it). So a key created a moment ago in another process works at
        once, and a flood of invalid keys costs the database at most ten reads a second."""
        async with self._reload_lock:
            if self._last_reload >= since:
                return
            wait = self._last_reload + MISS_RELOAD_INTERVAL - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
            await self._load()

    def spend(self, key_id: str) -> KeySpend:
        """The key's spend this UTC day and month, as of the last reload."""
        return self._spend.get(key_id) or KeySpend(key_id=key_id)

    def active_keys(self) -> tuple[ApiKeyRecord, ...]:
        """Every active key as of the last reload (read by the metrics at scrape time)."""
        return tuple(self._by_hash.values())

    def forget(self, key_id: str) -> None:
        """Drop a revoked key at once in this process (others catch up on reload)."""
        self._by_hash = {h: k for h, k in self._by_hash.items() if k.id != key_id}

    def remember(self, key: ApiKeyRecord) -> None:
        self._by_hash = {**self._by_hash, key.key_hash: key}

    async def authenticate(self, key: str | None) -> Principal:
        if not self._required:
            return ANONYMOUS
        if not key:
            raise AuthenticationFailed(
                "Missing API key: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'."
            )
        digest = self._digests.get(key) or self._hasher.hash(key)
        record = self._by_hash.get(digest)
        if record is None:
            try:
                await self._reload_for_miss(self._clock())
            except Exception:
                logger.exception("reloading API keys failed")
            record = self._by_hash.get(digest)
        if record is None or not hmac.compare_digest(record.key_hash, digest):
            raise AuthenticationFailed("Invalid API key.")
        if key not in self._digests:  # only keys that authenticated: guesses never fill it
            if len(self._digests) >= MAX_REMEMBERED_KEYS:
                self._digests.clear()
            self._digests[key] = digest
        return Principal(key_id=record.id, allowed_models=record.allowed_models, record=record)

    def start(self) -> None:
        self._task = asyncio.create_task(self._refresh_loop(), name="api-key-refresh")

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_seconds)
            try:
                await self.reload()
            except Exception:
                logger.exception("reloading API keys failed; keeping the cached set")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)


def check_admin(token: str | None, presented: str | None) -> None:
    if token is None:
        raise AuthenticationFailed(
            "The admin API is disabled: set the admin token environment variable."
        )
    if presented is None or not hmac.compare_digest(token.encode(), presented.encode()):
        raise AuthenticationFailed("Invalid admin token.", code="invalid_admin_token")


async def issue_key(
    store: Store,
    hasher: KeyHasher,
    *,
    name: str,
    allowed_models: tuple[str, ...] | None,
    now: float,
    settings: Mapping[str, Any] | None = None,
) -> tuple[ApiKeyRecord, str]:
    """Create and store a key; the secret is returned once and never stored.
    ``settings``: owner, limits and budgets (``schemas.keys.EDITABLE_KEY_FIELDS``)."""
    secret = generate_key()
    record = ApiKeyRecord(
        id=new_key_id(),
        name=name,
        key_hash=hasher.hash(secret),
        prefix=secret[:PREFIX_SHOWN],
        allowed_models=allowed_models,
        created_at=now,
    )
    if settings:
        if unknown := set(settings) - EDITABLE_KEY_FIELDS:
            raise ValueError(f"unknown key settings: {', '.join(sorted(unknown))}")
        record = replace(record, **settings)
    await store.create_key(record)
    return record, secret


def describe_key(record: ApiKeyRecord) -> dict[str, object]:
    return {
        "id": record.id,
        "name": record.name,
        "prefix": record.prefix,
        "allowed_models": list(record.allowed_models) if record.allowed_models else None,
        "created_at": record.created_at,
        "revoked_at": record.revoked_at,
        "active": record.active,
        "owner": record.owner,
        "rpm_limit": record.rpm_limit,
        "tpm_limit": record.tpm_limit,
        "max_concurrency": record.max_concurrency,
        "daily_budget": record.daily_budget,
        "monthly_budget": record.monthly_budget,
        "updated_at": record.updated_at,
    }


def describe_spend(spend: KeySpend | None) -> dict[str, object]:
    spend = spend or KeySpend(key_id="")
    return {
        "day": {"cost": spend.day_cost, "tokens": spend.day_tokens, "requests": spend.day_requests},
        "month": {
            "cost": spend.month_cost,
            "tokens": spend.month_tokens,
            "requests": spend.month_requests,
        },
    }


def resolve_secret(env_value: str | None, fallback_file: Path) -> bytes:
    """The server secret keys are hashed under: the env var when set, else a random secret
    kept (mode 0600) in ``fallback_file`` beside the embedded database."""
    if env_value:
        return env_value.encode()
    try:
        return fallback_file.read_bytes().strip()
    except FileNotFoundError:
        pass
    fallback_file.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48).encode()
    fd = os.open(fallback_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
    return secret
