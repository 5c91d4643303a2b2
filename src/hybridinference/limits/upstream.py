"""Provider account limits per route, with adaptive back-off (AIMD).

A provider key comes with limits of its own — requests and tokens per minute. Routing
asks ``UpstreamLimits.ready(route)`` before trying a route and the opener wrapper
(``AccountedOpener``) records each attempt and its outcome:

- a configured ``rpm``/``tpm`` is enforced over a sliding minute, in this process;
- an upstream 429 halves the route's effective limits (multiplicative decrease; from the
  rate it was actually serving when it had none configured) and parks the route until
  its ``Retry-After`` (or one second) has passed;
- every success raises the effective request limit by one and the token limit by the
  request's tokens (additive increase) until it is back at the configured value — or,
  with none configured, until it is twice the observed rate, when the cap is lifted.

Counters are per process: with N replicas, give each route's account 1/N of the provider
limit, or let the back-off find it. Nothing here does I/O.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from hybridinference.errors import UpstreamRateLimited
from hybridinference.limits.estimate import TokenEstimator
from hybridinference.limits.model import WINDOW_SECONDS

R = TypeVar("R")
MIN_RPM = 1.0
DEFAULT_PAUSE = 1.0


@dataclass(frozen=True, slots=True)
class AccountLimits:
    rpm: int | None = None
    tpm: int | None = None


#: starts within this many seconds of a slice's first share the slice: the window's
#: memory is bounded by WINDOW_SECONDS / SLICE_SECONDS, not by the request rate (one
#: entry per start held ~150,000 tuples at 2,500 requests/s); a slice leaves the window
#: with its first start, so a later start in it is forgotten up to this much early
SLICE_SECONDS = 0.1


@dataclass(slots=True)
class _Slice:
    first: float
    count: int
    tokens: int


@dataclass(slots=True)
class AccountLimiter:
    limits: AccountLimits
    rpm: float | None = None  # effective caps (AIMD moves them)
    tpm: float | None = None
    paused_until: float = -math.inf
    throttles: int = 0
    _starts: deque[_Slice] = field(default_factory=deque)
    _count: int = 0
    _tokens: int = 0

    def __post_init__(self) -> None:
        self.rpm = float(self.limits.rpm) if self.limits.rpm is not None else None
        self.tpm = float(self.limits.tpm) if self.limits.tpm is not None else None

    def _expire(self, now: float) -> None:
        while self._starts and self._starts[0].first <= now - WINDOW_SECONDS:
            gone = self._starts.popleft()
            self._count -= gone.count
            self._tokens -= gone.tokens

    def ready(self, now: float, tokens: int = 0) -> bool:
        if now < self.paused_until:
            return False
        self._expire(now)
        if self.rpm is not None and self._count + 1 > self.rpm:
            return False
        return self.tpm is None or self._tokens == 0 or self._tokens + tokens <= self.tpm

    def retry_in(self, now: float) -> float:
        if now < self.paused_until:
            return self.paused_until - now
        return self._starts[0].first + WINDOW_SECONDS - now if self._starts else 0.0

    def started(self, now: float, tokens: int) -> None:
        self._expire(now)
        self._count_start(now, tokens)

    def admit(self, now: float, tokens: int) -> bool:
        """``ready`` and, when it is, ``started`` — the window expired once, not twice."""
        if not self.ready(now, tokens):
            return False
        self._count_start(now, tokens)
        return True

    def _count_start(self, now: float, tokens: int) -> None:
        last = self._starts[-1] if self._starts else None
        if last is not None and now - last.first < SLICE_SECONDS:
            last.count += 1
            last.tokens += tokens
        else:
            self._starts.append(_Slice(now, 1, tokens))
        self._count += 1
        self._tokens += tokens

    def succeeded(self, tokens: int) -> None:
        """Additive increase, back to the configured limits (or uncapped)."""
        observed = self._count
        if self.rpm is not None:
            self.rpm += 1
            if self.limits.rpm is not None:
                self.rpm = min(self.rpm, float(self.limits.rpm))
            elif self.rpm > 2 * observed:
                self.rpm = None
        if self.tpm is not None:
            self.tpm += tokens
            if self.limits.tpm is not None:
                self.tpm = min(self.tpm, float(self.limits.tpm))
            elif self.tpm > 2 * self._tokens:
                self.tpm = None

    def throttled(self, now: float, retry_after: float | None) -> None:
        """Multiplicative decrease, and a pause the provider asked for."""
        self.throttles += 1
        self.rpm = max(MIN_RPM, (self.rpm if self.rpm is not None else self._count) / 2)
        current_tpm = self.tpm if self.tpm is not None else float(self._tokens)
        self.tpm = max(1.0, current_tpm / 2) if current_tpm > 0 else None
        self.paused_until = now + (retry_after if retry_after else DEFAULT_PAUSE)

    def describe(self, now: float) -> dict[str, Any]:
        self._expire(now)
        return {
            "rpm": self.limits.rpm,
            "tpm": self.limits.tpm,
            "effective_rpm": None if self.rpm is None else round(self.rpm, 1),
            "effective_tpm": None if self.tpm is None else round(self.tpm),
            "last_minute": {"requests": self._count, "tokens": self._tokens},
            "paused_for": round(max(0.0, self.paused_until - now), 3),
            "throttles": self.throttles,
        }


class UpstreamLimits:
    """Route name → its account limiter. Every route gets one: a route with no configured
    limits still backs off when its provider answers 429."""

    def __init__(
        self,
        configured: Mapping[str, AccountLimits],
        clock: Callable[[], float],
        estimator: TokenEstimator,
    ) -> None:
        self._configured = dict(configured)
        self._accounts: dict[str, AccountLimiter] = {}
        self._clock = clock
        self.estimator = estimator

    def account(self, route: str) -> AccountLimiter:
        account = self._accounts.get(route)
        if account is None:
            account = AccountLimiter(self._configured.get(route, AccountLimits()))
            self._accounts[route] = account
        return account

    def ready(self, route: str, tokens: int = 0) -> bool:
        return self.account(route).ready(self._clock(), tokens)

    def retry_in(self, route: str) -> float:
        return self.account(route).retry_in(self._clock())

    def paused_for(self, route: str) -> float:
        """Seconds this route stays parked after a provider 429 (0 when it is not)."""
        return max(0.0, self.account(route).paused_until - self._clock())

    def pause(self, route: str, seconds: float) -> None:
        """Park the route (another replica's provider said 429), never shortening a pause."""
        account = self.account(route)
        account.paused_until = max(account.paused_until, self._clock() + seconds)

    def admit(self, route: str, tokens: int) -> bool:
        """Check and, when there is room, count the attempt."""
        return self.account(route).admit(self._clock(), tokens)

    def release(self, route: str, error: BaseException | None, tokens: int) -> None:
        if error is None:
            self.account(route).succeeded(tokens)
        elif isinstance(error, UpstreamRateLimited):
            self.account(route).throttled(self._clock(), error.retry_after)

    def describe(self) -> dict[str, dict[str, Any]]:
        now = self._clock()
        return {name: account.describe(now) for name, account in self._accounts.items()}

    def wrap(self, opener: Opener[R]) -> AccountedOpener[R]:
        return AccountedOpener(opener, self)


class Opener(Protocol[R]):
    async def open(self, route: Any, call: Any) -> R: ...

    async def discard(self, result: R) -> None: ...


class AccountedOpener(Generic[R]):
    """Wraps the routing manager's opener: counts each attempt against its route's
    account and feeds the outcome (success or upstream 429) back to it."""

    def __init__(self, inner: Opener[R], limits: UpstreamLimits) -> None:
        self._inner = inner
        self._limits = limits

    async def open(self, route: Any, call: Any) -> R:
        name: str = route.name
        body = call.body
        estimator = self._limits.estimator
        tokens = estimator.input_tokens(body, 0) + estimator.output_tokens(body, False)
        self._limits.admit(name, tokens)  # routing checked ``ready`` when it chose the route
        try:
            result = await self._inner.open(route, call)
        except BaseException as exc:
            self._limits.release(name, exc, tokens)
            raise
        self._limits.release(name, None, tokens)
        return result

    async def discard(self, result: R) -> None:
        await self._inner.discard(result)
