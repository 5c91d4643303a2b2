"""An API key as stored: only its HMAC hash, never the secret."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: str
    name: str
    key_hash: str
    prefix: str  # the first characters of the secret, to recognise it in lists
    allowed_models: tuple[str, ...] | None  # None: every model
    created_at: float
    revoked_at: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None
