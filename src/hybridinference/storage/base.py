"""The storage protocol: what the gateway needs from a database, whatever the backend.

Both backends (``sqlite``, ``postgres``) implement it with identical behaviour; one test
suite runs against both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Protocol

from hybridinference.schemas.keys import ApiKeyRecord, KeySpend
from hybridinference.schemas.overrides import OverrideAudit, OverrideRecord
from hybridinference.schemas.records import RequestRecord
from hybridinference.storage.usage import UsageQuery, UsageRow


class Store(Protocol):
    async def migrate(self) -> list[int]:
        """Apply missing migrations (safe when several processes call it at once);
        returns the versions this call applied."""

    async def schema_version(self) -> int:
        """The highest applied migration (0 for an empty database)."""

    async def write_requests(self, records: Sequence[RequestRecord]) -> int:
        """Insert the rows in one transaction; a request id already present is skipped
        (idempotent), and only newly inserted rows add to their key's spend. Returns how
        many rows were new."""

    async def recent_requests(self, limit: int) -> list[RequestRecord]: ...

    def export_requests(
        self, start: float, end: float, batch_size: int = 5000
    ) -> AsyncIterator[RequestRecord]:
        """Rows with ``start <= created_at < end``, oldest first, read in batches."""

    async def usage(self, query: UsageQuery) -> list[UsageRow]: ...

    async def prune_requests(self, before: float, limit: int) -> int:
        """Delete at most ``limit`` rows older than ``before``; returns how many."""

    async def create_key(self, key: ApiKeyRecord) -> None: ...

    async def list_keys(self) -> list[ApiKeyRecord]: ...

    async def get_key(self, key_id: str) -> ApiKeyRecord | None: ...

    async def update_key(
        self, key_id: str, changes: Mapping[str, Any], at: float
    ) -> ApiKeyRecord | None:
        """Change fields named in ``schemas.keys.EDITABLE_KEY_FIELDS``; None if no such
        key."""

    async def revoke_key(self, key_id: str, at: float) -> bool:
        """True when an active key was revoked."""

    async def key_spend(self, now: float) -> dict[str, KeySpend]:
        """Spend of every key that has any in the UTC day and month containing ``now``."""

    async def list_overrides(self) -> list[OverrideRecord]:
        """Every active runtime override (``routing.overrides``)."""

    async def change_override(self, record: OverrideRecord, clear: bool) -> OverrideRecord | None:
        """Set ``record`` (or with ``clear`` delete the override it names) and append the
        audit entry, in one transaction; returns the previous override, if any (a clear
        of nothing changes and audits nothing)."""

    async def override_audit(self, limit: int) -> list[OverrideAudit]:
        """The latest audit entries, newest first."""

    async def ping(self) -> None:
        """Raises when the database cannot be reached."""

    async def aclose(self) -> None: ...
