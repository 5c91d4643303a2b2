"""The storage protocol: what the gateway needs from a database, whatever the backend."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from hybridinference.schemas.keys import ApiKeyRecord
from hybridinference.schemas.records import RequestRecord


class Store(Protocol):
    async def write_requests(self, records: Sequence[RequestRecord]) -> None:
        """Insert the rows; a request id already present is skipped (idempotent)."""

    async def recent_requests(self, limit: int) -> list[RequestRecord]: ...

    async def create_key(self, key: ApiKeyRecord) -> None: ...

    async def list_keys(self) -> list[ApiKeyRecord]: ...

    async def revoke_key(self, key_id: str, at: float) -> bool:
        """True when an active key was revoked."""

    async def ping(self) -> None:
        """Raises when the database cannot be reached."""

    async def aclose(self) -> None: ...
