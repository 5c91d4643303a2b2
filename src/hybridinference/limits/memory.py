"""The in-process backend: exact sliding windows in memory, for a single process.

Same semantics as the Redis backend (see ``limits.redis``); state for a key is dropped
once it holds nothing, so memory follows the active keys, not the requests served.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from hybridinference.limits.model import (
    WINDOW_SECONDS,
    Admission,
    Decision,
    Dimension,
    Quota,
    Settlement,
    usd_to_nanos,
)


@dataclass(slots=True)
class _Subject:
    requests: deque[float] = field(default_factory=deque)  # admission times
    tokens: dict[str, tuple[float, int]] = field(default_factory=dict)  # id → (time, tokens)
    token_total: int = 0
    leases: dict[str, float] = field(default_factory=dict)  # id → expiry
    spend: dict[str, int] = field(default_factory=dict)  # "d:2026-11-29" / "m:2026-11" → nanos

    def expire(self, now: float, window: float) -> None:
        cutoff = now - window
        while self.requests and self.requests[0] <= cutoff:
            self.requests.popleft()
        tokens = self.tokens
        while tokens:
            oldest = next(iter(tokens))  # insertion order is time order
            at, count = tokens[oldest]
            if at > cutoff:
                break
            del tokens[oldest]
            self.token_total -= count

    def held(self, now: float, limit: int) -> int:
        """Leases in force; expired ones are swept only when they could matter (at the
        limit), so a check stays O(1) however many requests are in flight."""
        if len(self.leases) >= limit:
            for ticket in [t for t, expiry in self.leases.items() if expiry <= now]:
                del self.leases[ticket]
        return len(self.leases)

    def idle(self) -> bool:
        return not (self.requests or self.tokens or self.leases or self.spend)


class MemoryBackend:
    name = "memory"

    def __init__(
        self, clock: Callable[[], float], lease_seconds: float, window: float = WINDOW_SECONDS
    ) -> None:
        self._clock = clock
        self._lease_seconds = lease_seconds
        self._window = window
        self._subjects: dict[str, _Subject] = {}

    async def admit(self, admission: Admission) -> Decision:
        now = self._clock()
        subject = self._subjects.setdefault(admission.subject, _Subject())
        subject.expire(now, self._window)
        self._forget_old_spend(subject, admission)
        limits = admission.limits
        requests = tokens = None
        refusal: tuple[Dimension, float] | None = None
        if limits.rpm is not None:
            count = len(subject.requests)
            reset = subject.requests[0] + self._window - now if subject.requests else 0.0
            if count + 1 > limits.rpm:
                refusal = refusal or ("requests", reset)
            requests = Quota(limits.rpm, max(0, limits.rpm - count - 1), reset)
        if limits.tpm is not None:
            total = subject.token_total
            reset = self._token_wait(subject, limits.tpm, admission.tokens, now, self._window)
            if total + admission.tokens > limits.tpm:
                refusal = refusal or ("tokens", reset)
            tokens = Quota(limits.tpm, max(0, limits.tpm - total - admission.tokens), reset)
        if (
            limits.concurrency is not None
            and subject.held(now, limits.concurrency) >= limits.concurrency
        ):
            refusal = refusal or ("concurrency", 1.0)
        refusal = refusal or self._budget_refusal(subject, admission)
        if refusal is not None:
            dimension, wait = refusal
            return Decision(False, dimension, max(wait, 0.001), requests, tokens)
        self._record(subject, admission, now)
        # Admitted: the windows reset when their oldest entry (maybe this one) leaves them.
        if requests is not None and len(subject.requests) == 1:
            requests = Quota(requests.limit, requests.remaining, self._window)
        if tokens is not None:
            oldest = next(iter(subject.tokens.values()))[0]
            tokens = Quota(tokens.limit, tokens.remaining, oldest + self._window - now)
        return Decision(True, None, 0.0, requests, tokens)

    def _budget_refusal(
        self, subject: _Subject, admission: Admission
    ) -> tuple[Dimension, float] | None:
        limits, calendar = admission.limits, admission.calendar
        checks: tuple[tuple[Dimension, float | None, str, float, int], ...] = (
            (
                "daily_budget",
                limits.daily_budget,
                "d:" + calendar.day,
                calendar.day_reset,
                admission.logged_day,
            ),
            (
                "monthly_budget",
                limits.monthly_budget,
                "m:" + calendar.month,
                calendar.month_reset,
                admission.logged_month,
            ),
        )
        for dimension, budget, period, wait, logged in checks:
            if budget is None:
                continue
            spent = subject.spend.setdefault(period, logged)
            if spent + admission.cost_nanos > usd_to_nanos(budget):
                return dimension, wait
        return None

    def _record(self, subject: _Subject, admission: Admission, now: float) -> None:
        limits = admission.limits
        if limits.rpm is not None:
            subject.requests.append(now)
        if limits.tpm is not None:
            subject.tokens[admission.ticket] = (now, admission.tokens)
            subject.token_total += admission.tokens
        if limits.concurrency is not None:
            subject.leases[admission.ticket] = now + self._lease_seconds
        for period in _budget_periods(admission):
            subject.spend[period] = subject.spend.get(period, 0) + admission.cost_nanos

    @staticmethod
    def _token_wait(subject: _Subject, tpm: int, wanted: int, now: float, window: float) -> float:
        """Seconds until enough reserved tokens leave the window for ``wanted`` to fit."""
        excess = subject.token_total + wanted - tpm
        for at, count in subject.tokens.values():
            if excess <= 0:
                break
            excess -= count
            if excess <= 0:
                return at + window - now
        return 0.0 if excess <= 0 else window

    @staticmethod
    def _forget_old_spend(subject: _Subject, admission: Admission) -> None:
        current = {"d:" + admission.calendar.day, "m:" + admission.calendar.month}
        for period in [p for p in subject.spend if p not in current]:
            del subject.spend[period]

    async def settle(self, settlements: Sequence[Settlement]) -> None:
        for settlement in settlements:
            admission = settlement.admission
            subject = self._subjects.get(admission.subject)
            if subject is None:
                continue
            held = subject.tokens.get(admission.ticket)
            if held is not None:
                subject.tokens[admission.ticket] = (held[0], settlement.tokens)
                subject.token_total += settlement.tokens - held[1]
            subject.leases.pop(admission.ticket, None)
            delta = settlement.cost_nanos - admission.cost_nanos
            for period in _budget_periods(admission):
                if period in subject.spend:
                    subject.spend[period] += delta
            subject.expire(self._clock(), self._window)
            if subject.idle():
                del self._subjects[admission.subject]

    async def renew(self, leases: Sequence[Admission]) -> None:
        expiry = self._clock() + self._lease_seconds
        for admission in leases:
            subject = self._subjects.get(admission.subject)
            if subject is not None and admission.ticket in subject.leases:
                subject.leases[admission.ticket] = expiry

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        self._subjects.clear()


def _budget_periods(admission: Admission) -> list[str]:
    periods = []
    if admission.limits.daily_budget is not None:
        periods.append("d:" + admission.calendar.day)
    if admission.limits.monthly_budget is not None:
        periods.append("m:" + admission.calendar.month)
    return periods
