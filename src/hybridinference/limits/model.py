"""The limiter's vocabulary: what a key may do, what one request asks for, what the
limiter answered, and what is settled once the request is over.

Money is counted in integer nano-dollars (1e-9 USD) so that every backend adds exactly
the same numbers (Redis Lua numbers are doubles: exact up to about $9 million).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

NANOS_PER_USD = 1_000_000_000
WINDOW_SECONDS = 60.0  # requests and tokens per *minute*, as a sliding window

#: The dimensions a key can be limited on, as named in config and in refusals.
Dimension = Literal["requests", "tokens", "concurrency", "daily_budget", "monthly_budget"]
DIMENSIONS: tuple[Dimension, ...] = (
    "requests",
    "tokens",
    "concurrency",
    "daily_budget",
    "monthly_budget",
)
BUDGETS: frozenset[str] = frozenset({"daily_budget", "monthly_budget"})


def usd_to_nanos(usd: float) -> int:
    return round(usd * NANOS_PER_USD)


@dataclass(frozen=True, slots=True)
class KeyLimits:
    """None means unlimited on that dimension."""

    rpm: int | None = None
    tpm: int | None = None
    concurrency: int | None = None
    daily_budget: float | None = None  # US dollars per UTC day
    monthly_budget: float | None = None  # US dollars per UTC calendar month

    @property
    def empty(self) -> bool:
        return (
            self.rpm is None
            and self.tpm is None
            and self.concurrency is None
            and self.daily_budget is None
            and self.monthly_budget is None
        )

    def dimensions(self) -> tuple[Dimension, ...]:
        values = (self.rpm, self.tpm, self.concurrency, self.daily_budget, self.monthly_budget)
        return tuple(d for d, v in zip(DIMENSIONS, values, strict=True) if v is not None)

    def overlay(self, other: KeyLimits) -> KeyLimits:
        """``other``'s values where set, else ours (a key's own limits over the defaults)."""
        return KeyLimits(
            rpm=other.rpm if other.rpm is not None else self.rpm,
            tpm=other.tpm if other.tpm is not None else self.tpm,
            concurrency=other.concurrency if other.concurrency is not None else self.concurrency,
            daily_budget=(
                other.daily_budget if other.daily_budget is not None else self.daily_budget
            ),
            monthly_budget=(
                other.monthly_budget if other.monthly_budget is not None else self.monthly_budget
            ),
        )


@dataclass(frozen=True, slots=True)
class Calendar:
    """The UTC day and month a request is billed to, and seconds until each rolls over."""

    day: str  # "2026-11-29"
    month: str  # "2026-11"
    day_reset: float
    month_reset: float


@dataclass(frozen=True, slots=True)
class Admission:
    """One request asking to be let through: its reservation of tokens and money."""

    subject: str  # the key id ("anonymous" when auth is off)
    ticket: str  # unique per admission (never the client-supplied request id)
    limits: KeyLimits
    tokens: int  # estimated input + output tokens
    cost_nanos: int  # estimated cost at the dearest route's prices
    calendar: Calendar
    # Spend the request log has for this day/month (nanos): where a budget counter starts
    # when the limiter has none (a restarted process, a flushed or replaced Redis).
    logged_day: int = 0
    logged_month: int = 0


@dataclass(frozen=True, slots=True)
class Quota:
    """One dimension as the client sees it in ``X-RateLimit-*`` headers."""

    limit: int
    remaining: int
    reset: float  # seconds until the window has room again


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    refused_by: Dimension | Literal["unavailable"] | None = None
    retry_after: float = 0.0
    requests: Quota | None = None
    tokens: Quota | None = None
    degraded: bool = False  # decided by the failure policy: the backend was unreachable


ALLOW = Decision(allowed=True)


@dataclass(frozen=True, slots=True)
class Settlement:
    """A finished request: replace the reservation by what was really used, free its slot."""

    admission: Admission
    tokens: int
    cost_nanos: int
