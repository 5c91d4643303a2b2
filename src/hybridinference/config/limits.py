"""The ``limits`` section of the configuration file: per-key rate limits and budgets, where
their counters live (in-process or Redis), and what happens when Redis is unreachable.

Kept apart from ``config.schema`` (which imports it); the same rules apply: frozen,
unknown fields rejected.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

FailureMode = Literal["open", "closed"]


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KeyLimitsConfig(_Strict):
    """Limits of one key; unset means unlimited."""

    rpm: int | None = Field(None, gt=0, description="Requests per minute (sliding window).")
    tpm: int | None = Field(None, gt=0, description="Tokens per minute, input plus output.")
    concurrency: int | None = Field(None, gt=0, description="Requests in flight at once.")
    daily_budget: float | None = Field(None, ge=0, description="US dollars per UTC day.")
    monthly_budget: float | None = Field(None, ge=0, description="US dollars per UTC month.")


class FailurePolicyConfig(_Strict):
    """Per limit, when the counters cannot be reached: ``open`` lets requests through
    unchecked, ``closed`` refuses them (503). Budgets fail closed so that an outage never
    spends money past a budget; rate limits fail open so that an outage never stops
    traffic."""

    requests: FailureMode = "open"
    tokens: FailureMode = "open"
    concurrency: FailureMode = "open"
    daily_budget: FailureMode = "closed"
    monthly_budget: FailureMode = "closed"


class RedisLimitsConfig(_Strict):
    url: str = "redis://127.0.0.1:6379/0"
    url_env: str | None = Field(
        None, description="Env var holding the URL (use it when the URL has a password)."
    )
    prefix: str = Field("hi", min_length=1, description="Key prefix: one per deployment.")
    timeout: float = Field(
        1.0, gt=0, description="Seconds one limit check may take (event-loop delays included)."
    )
    retry_interval: float = Field(
        1.0, gt=0, description="Seconds to apply the failure policy before probing again."
    )

    @field_validator("url")
    @classmethod
    def _redis_url(cls, value: str) -> str:
        if not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected a redis://, rediss:// or unix:// URL")
        return value


class EstimateConfig(_Strict):
    chars_per_token: float = Field(3.0, gt=0, description="Text characters per token.")
    default_output_tokens: int = Field(
        256, ge=0, description="Output tokens reserved when the request sets no max_tokens."
    )


class UpstreamAccountConfig(_Strict):
    """A provider account's limits for one route (its own key's RPM/TPM)."""

    rpm: int | None = Field(None, gt=0)
    tpm: int | None = Field(None, gt=0)


class LimitsConfig(_Strict):
    backend: Literal["memory", "redis"] = Field(
        "memory", description="memory: one process; redis: shared by every process/replica."
    )
    redis: RedisLimitsConfig = RedisLimitsConfig()
    failure_policy: FailurePolicyConfig = FailurePolicyConfig()
    default_key: KeyLimitsConfig = Field(
        KeyLimitsConfig(), description="Limits of every key that does not set its own."
    )
    lease_seconds: float = Field(
        30.0, gt=0, description="A concurrency slot of a dead process is freed after this."
    )
    estimate: EstimateConfig = EstimateConfig()
    shared_routing: bool = Field(
        True, description="With the redis backend: share circuit and latency knowledge."
    )
    shared_routing_interval: float = Field(
        1.0, gt=0, description="Seconds between two exchanges of routing knowledge."
    )
    upstream: dict[str, UpstreamAccountConfig] = Field(
        default_factory=dict,
        description="Route name (provider/upstream-model) → its provider account's limits, "
        "per process. Routes answering 429 back off (AIMD) whether listed or not.",
    )
