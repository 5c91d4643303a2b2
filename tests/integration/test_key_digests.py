"""The key cache remembers the digest of a presented key that authenticated, so a
returning client costs a dict lookup instead of an HMAC (the HMAC, cold, was the largest
single stage of a sparse request's critical path: docs/performance.md). Only keys that
authenticated are remembered, and revocation still wins over the memo."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hybridinference.errors import AuthenticationFailed
from hybridinference.gateway.auth import KeyCache, KeyHasher, issue_key
from hybridinference.storage import open_store


@dataclass(frozen=True, slots=True)
class CountingHasher(KeyHasher):
    """The real HMAC, counting the keys it hashed."""

    hashed: list[str] = field(default_factory=list)

    def hash(self, key: str) -> str:
        self.hashed.append(key)
        return KeyHasher.hash(self, key)


async def test_a_key_is_hashed_once_guesses_every_time_and_revocation_wins(
    tmp_path: Path,
) -> None:
    store = open_store(f"sqlite:///{tmp_path}/keys.db")
    await store.migrate()
    hasher = CountingHasher(b"test-secret")
    try:
        record, secret = await issue_key(
            store, hasher, name="memo", allowed_models=None, now=time.time()
        )
        cache = KeyCache(store, hasher, required=True, refresh_seconds=60, clock=time.monotonic)
        await cache.reload()
        hasher.hashed.clear()
        for _ in range(3):
            assert (await cache.authenticate(secret)).key_id == record.id
        assert hasher.hashed == [secret]  # hashed the first time only
        for _ in range(2):
            with pytest.raises(AuthenticationFailed):
                await cache.authenticate("sk-a-guess")
        assert hasher.hashed == [secret, "sk-a-guess", "sk-a-guess"]  # never remembered
        assert await store.revoke_key(record.id, time.time())  # as DELETE /admin/keys/{id}
        cache.forget(record.id)  # the remembered digest no longer opens anything
        with pytest.raises(AuthenticationFailed):
            await cache.authenticate(secret)
    finally:
        await store.aclose()
