"""The routing parts of the configuration file: route capabilities and account limits,
per-model strategy options, SLO and hedging, and the gateway-wide ``health`` section.

Kept apart from ``config.schema`` (which imports them) so that the routing knobs live in
one place; the same rules apply: frozen, unknown fields rejected.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RouteCapabilities(_Strict):
    """What a route can serve; a request needing more is not sent there."""

    tools: bool = True
    images: bool = True
    context_length: int | None = Field(
        None, gt=0, description="Longest prompt plus output, in tokens (estimated)."
    )


class RouteLimits(_Strict):
    """Account limits: a prepaid daily quota (tokens and/or dollars) or a concurrency cap."""

    daily_tokens: int | None = Field(None, gt=0)
    daily_cost: float | None = Field(None, gt=0, description="US dollars at the route's prices.")
    max_concurrency: int | None = Field(None, gt=0)

    @property
    def has_quota(self) -> bool:
        return self.daily_tokens is not None or self.daily_cost is not None


class StrategyOptions(_Strict):
    """Knobs of the model's strategy; each strategy reads only the ones it needs."""

    exploration: float = Field(
        0.02, ge=0, le=1, description="Share of requests sent to a random route to measure it."
    )
    min_samples: int = Field(
        10, ge=1, description="Latency samples before a route counts as measured."
    )
    stats_refresh: float = Field(
        1.0, ge=0, description="Seconds the slo strategy reuses what it read from statistics."
    )
    latency_stat: Literal["ewma", "quantile"] = "ewma"
    latency_quantile: float = Field(0.5, gt=0, lt=1)
    local_max_in_flight: int = Field(
        8, ge=1, description="local_first without engine metrics: requests a local route holds."
    )
    local_max_waiting: int = Field(0, ge=0, description="Engine queue length that means full.")
    local_max_kv_usage: float = Field(0.9, gt=0, le=1)
    expected_output_tokens: int = Field(256, ge=1)
    quota_floor: float = Field(
        0.01,
        gt=0,
        le=1,
        description="An unused quota is priced at this fraction of the dearest on-demand route.",
    )


class SLOConfig(_Strict):
    """A tail-latency target: ``percentile`` of requests see their first token within ``ttft``."""

    ttft: float = Field(2.0, gt=0, description="Seconds.")
    percentile: float = Field(0.95, gt=0, lt=1)


class HedgingConfig(_Strict):
    """Start a backup on another route when the first token is late; first content wins."""

    enabled: bool = False
    quantile: float = Field(
        0.9, gt=0, lt=1, description="Hedge when the primary is past this TTFT quantile."
    )
    min_delay: float = Field(0.05, ge=0)
    max_delay: float = Field(5.0, gt=0, description="Also the delay while a route is unmeasured.")
    budget: float = Field(0.1, ge=0, le=1, description="Largest share of requests hedged.")


class HealthConfig(_Strict):
    """Active probes (no tokens spent) and the passive per-route circuit breaker."""

    probes: bool = True
    interval: float = Field(15.0, gt=0, description="Seconds between probes of a provider.")
    jitter: float = Field(0.2, ge=0, lt=1, description="Each interval varies by this fraction.")
    timeout: float = Field(5.0, gt=0)
    metrics_interval: float = Field(
        1.0, gt=0, description="Seconds between scrapes of a local engine's /metrics."
    )
    unhealthy_after: int = Field(2, ge=1, description="Failed probes in a row that mark it down.")
    failure_threshold: int = Field(5, ge=1, description="Failures in a row that open a circuit.")
    error_rate: float = Field(0.5, gt=0, le=1, description="Error share that opens a circuit.")
    window: int = Field(20, ge=1, description="Recent outcomes the error share is taken over.")
    min_samples: int = Field(10, ge=1, description="Outcomes needed before the error share.")
    cooldown: float = Field(30.0, gt=0, description="Seconds open before one half-open trial.")
    latency_window: float = Field(900.0, gt=0, description="Short latency window, seconds.")
    latency_long_window: float = Field(10800.0, gt=0, description="Long latency window.")
