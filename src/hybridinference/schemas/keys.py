"""An API key as stored (only its HMAC hash, never the secret), its limits and budgets,
the editable fields, and its spend for the current day and month."""

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
    owner: str | None = None
    rpm_limit: int | None = None  # requests per minute; None: unlimited
    tpm_limit: int | None = None  # tokens per minute
    max_concurrency: int | None = None  # requests in flight
    daily_budget: float | None = None  # US dollars per UTC day
    monthly_budget: float | None = None  # US dollars per UTC calendar month
    updated_at: float | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


#: The fields ``Store.update_key`` may change (everything but identity and the hash).
EDITABLE_KEY_FIELDS: frozenset[str] = frozenset(
    {
        "name",
        "owner",
        "allowed_models",
        "rpm_limit",
        "tpm_limit",
        "max_concurrency",
        "daily_budget",
        "monthly_budget",
    }
)


@dataclass(frozen=True, slots=True)
class KeySpend:
    """What a key has spent in the current UTC day and month (logged rows only)."""

    key_id: str
    day_cost: float = 0.0
    day_tokens: int = 0
    day_requests: int = 0
    month_cost: float = 0.0
    month_tokens: int = 0
    month_requests: int = 0
