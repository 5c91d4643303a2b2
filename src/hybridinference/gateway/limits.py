"""Per-key limits at the gateway: the check before dispatch and the settlement after.

``KeyLimiter.check`` builds the request's admission (the key's limits over the configured
defaults, an estimate of its tokens and of its cost at the dearest route's prices) and
asks the ``Limiter`` — one atomic round trip when the backend is Redis, none at all when
the key has no limit. A refusal is a 429 in the OpenAI envelope with ``Retry-After`` and
``X-RateLimit-{Limit,Remaining,Reset}-{Requests,Tokens}``; an exhausted budget adds
``x-should-retry: false``. ``KeyLimiter.reconcile`` (called once, when the request's log
row is emitted) replaces the reservation by the usage the upstream reported.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from hybridinference.config.limits import KeyLimitsConfig, LimitsConfig
from hybridinference.errors import RateLimited, ServiceUnavailable
from hybridinference.limits.estimate import TokenEstimator, billing_calendar
from hybridinference.limits.guard import Limiter
from hybridinference.limits.model import (
    Admission,
    Decision,
    KeyLimits,
    Settlement,
    usd_to_nanos,
)
from hybridinference.observability.metrics import Reading
from hybridinference.routing.trace import RequestTrace
from hybridinference.schemas.keys import ApiKeyRecord, KeySpend

if TYPE_CHECKING:
    from hybridinference.gateway.exchange import Exchange
    from hybridinference.routing.manager import RoutedModel

ANONYMOUS_SUBJECT = "anonymous"
MESSAGES: Mapping[str, str] = {
    "requests": "Rate limit reached for requests per minute (limit {rpm}) on this key.",
    "tokens": "Rate limit reached for tokens per minute (limit {tpm}; this request needs "
    "about {tokens}) on this key.",
    "concurrency": "Too many requests in flight on this key (limit {concurrency}).",
    "daily_budget": "This key's daily budget (${daily_budget}) is spent; it renews at 00:00 UTC.",
    "monthly_budget": "This key's monthly budget (${monthly_budget}) is spent; it renews "
    "on the 1st at 00:00 UTC.",
}


def format_reset(seconds: float) -> str:
    """OpenAI's duration style: ``850ms``, ``1.5s``, ``6m0s``."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    rest_text = f"{rest:.3f}".rstrip("0").rstrip(".")
    return f"{int(minutes)}m{rest_text}s" if minutes else f"{rest_text}s"


def quota_headers(decision: Decision) -> dict[str, str]:
    headers: dict[str, str] = {}
    for suffix, quota in (("requests", decision.requests), ("tokens", decision.tokens)):
        if quota is not None:
            headers[f"x-ratelimit-limit-{suffix}"] = str(quota.limit)
            headers[f"x-ratelimit-remaining-{suffix}"] = str(quota.remaining)
            headers[f"x-ratelimit-reset-{suffix}"] = format_reset(quota.reset)
    return headers


class LimitExceeded(RateLimited):
    """A key is over one of its limits (429); budgets also say "do not retry"."""

    def __init__(self, message: str, decision: Decision) -> None:
        budget = decision.refused_by in ("daily_budget", "monthly_budget")
        super().__init__(
            message,
            code="insufficient_quota" if budget else "rate_limit_exceeded",
            retry_after=decision.retry_after,
        )
        if budget:
            self.error_type = "insufficient_quota"
        self.decision = decision
        self.budget = budget

    def headers(self) -> dict[str, str]:
        seconds = max(1, int(-(-self.decision.retry_after // 1)))  # round up: never early
        headers = {"Retry-After": str(seconds), **quota_headers(self.decision)}
        if self.budget:
            headers["x-should-retry"] = "false"
        return headers


class LimiterUnavailable(ServiceUnavailable):
    code = "rate_limiter_unavailable"


def record_limits(record: ApiKeyRecord | None) -> KeyLimits:
    if record is None:
        return KeyLimits()
    return KeyLimits(
        rpm=record.rpm_limit,
        tpm=record.tpm_limit,
        concurrency=record.max_concurrency,
        daily_budget=record.daily_budget,
        monthly_budget=record.monthly_budget,
    )


def config_limits(config: KeyLimitsConfig) -> KeyLimits:
    return KeyLimits(**config.model_dump())


#: keys whose effective limits are remembered (then the memo starts afresh)
MAX_REMEMBERED_KEYS = 10_000


class KeyLimiter:
    def __init__(
        self,
        limiter: Limiter,
        config: LimitsConfig,
        wall_clock: Callable[[], float],
        logged_spend: Callable[[str], KeySpend] | None = None,
    ) -> None:
        self.limiter = limiter
        self._logged_spend = logged_spend
        self._defaults = config_limits(config.default_key)
        self._estimator = TokenEstimator(
            config.estimate.chars_per_token, config.estimate.default_output_tokens
        )
        self._wall_clock = wall_clock
        #: key id → (its record, its limits over the defaults): rebuilt when the key's
        #: record is replaced (an update reloads it), not on every request
        self._effective: dict[str | None, tuple[ApiKeyRecord | None, KeyLimits]] = {}

    def limits_for(self, key_id: str | None, record: ApiKeyRecord | None) -> KeyLimits:
        """The key's own limits over the configured defaults."""
        known = self._effective.get(key_id)
        if known is not None and known[0] is record:
            return known[1]
        limits = self._defaults.overlay(record_limits(record))
        if len(self._effective) >= MAX_REMEMBERED_KEYS:
            self._effective.clear()
        self._effective[key_id] = (record, limits)
        return limits

    async def check(
        self, exchange: Exchange, body: Mapping[str, Any], routed: RoutedModel, size: int
    ) -> None:
        """Admit the request or raise; on success the exchange holds the ticket to settle."""
        principal = exchange.principal
        record = principal.record if principal is not None else None
        key_id = principal.key_id if principal else None
        limits = self.limits_for(key_id, record)
        if limits.empty:
            return
        embeddings = exchange.endpoint.endswith("embeddings")
        tokens_in = self._estimator.input_tokens(body, size)
        tokens_out = self._estimator.output_tokens(body, embeddings)
        routes = routed.routes.routes
        price_in = max((r.pricing.input for r in routes), default=0.0)
        price_out = max((r.pricing.output for r in routes), default=0.0)
        logged = (
            self._logged_spend(key_id)
            if self._logged_spend is not None
            and key_id is not None
            and (limits.daily_budget is not None or limits.monthly_budget is not None)
            else None
        )
        admission = Admission(
            subject=key_id or ANONYMOUS_SUBJECT,
            ticket=secrets.token_hex(8),
            limits=limits,
            tokens=tokens_in + tokens_out,
            cost_nanos=_nanos(tokens_in, price_in) + _nanos(tokens_out, price_out),
            calendar=billing_calendar(self._wall_clock()),
            logged_day=usd_to_nanos(logged.day_cost) if logged else 0,
            logged_month=usd_to_nanos(logged.month_cost) if logged else 0,
        )
        decision = await self.limiter.admit(admission)
        if not decision.allowed:
            raise self._refusal(admission, decision)
        exchange.limit_headers = quota_headers(decision)
        if not decision.degraded:
            exchange.ticket = admission

    @staticmethod
    def _refusal(admission: Admission, decision: Decision) -> Exception:
        if decision.refused_by == "unavailable" or decision.refused_by is None:
            return LimiterUnavailable(
                "Rate limits cannot be checked right now; try again shortly.",
                retry_after=decision.retry_after,
            )
        limits = admission.limits
        message = MESSAGES[decision.refused_by].format(
            rpm=limits.rpm,
            tpm=limits.tpm,
            tokens=admission.tokens,
            concurrency=limits.concurrency,
            daily_budget=limits.daily_budget,
            monthly_budget=limits.monthly_budget,
        )
        return LimitExceeded(message, decision)

    def reconcile(self, ticket: Admission, trace: RequestTrace) -> None:
        """The request is over: real tokens and cost replace the estimate."""
        usage, route = trace.usage, trace.route
        if usage is not None and route is not None:  # priced as the log row is
            tokens, cost = usage.total_tokens, usd_to_nanos(trace.cost())
        elif route is not None:  # served but usage unknown (cut short): keep the estimate
            tokens, cost = ticket.tokens, ticket.cost_nanos
        else:  # no upstream served it: nothing was spent
            tokens, cost = 0, 0
        self.limiter.settle(Settlement(ticket, tokens, cost))

    def status(self) -> str:
        """For readiness: never a reason to take the process out of service (the failure
        policy decides what an unreachable backend means for each limit)."""
        name = self.limiter.backend.name
        if self.limiter.available:
            return f"ok ({name})"
        return f"{name} unreachable: failure policy applied"

    def start(self) -> None:
        self.limiter.start()

    async def aclose(self) -> None:
        await self.limiter.aclose()


def _nanos(tokens: int, price_per_million: float) -> int:
    """Nano-dollars for ``tokens`` at US dollars per million tokens."""
    return round(tokens * price_per_million * 1000)


LIMITER_COUNTERS: Mapping[str, str] = {
    "admitted": "limits_admitted",
    "refused": "limits_refused",
    "failed_open": "limits_failed_open",
    "failed_closed": "limits_failed_closed",
    "outages": "limits_outages",
    "backend_errors": "limits_backend_errors",
    "settle_dropped": "limits_settle_dropped",
}


def limits_readings(limits: KeyLimiter) -> Callable[[], Iterator[Reading]]:
    """The limiter's counters for ``/metrics`` (``hybridinference_limits_*``)."""

    def read() -> Iterator[Reading]:
        limiter = limits.limiter
        yield Reading("limits_backend_up", 1.0 if limiter.available else 0.0)
        for field, name in LIMITER_COUNTERS.items():
            yield Reading(name, float(getattr(limiter.stats, field)))

    return read
