"""Config → ``Limiter``: the backend named in ``limits.backend`` (a registry, not a
branch), wrapped in the failure policy."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from hybridinference.config.limits import LimitsConfig
from hybridinference.config.schema import GatewayConfig
from hybridinference.errors import ConfigError
from hybridinference.limits.base import LimitBackend
from hybridinference.limits.estimate import TokenEstimator
from hybridinference.limits.guard import FailurePolicy, Limiter
from hybridinference.limits.memory import MemoryBackend
from hybridinference.limits.redis_store import RedisBackend, connect
from hybridinference.limits.upstream import AccountLimits, UpstreamLimits


def redis_url(config: LimitsConfig, env: Mapping[str, str]) -> str:
    redis = config.redis
    return (env.get(redis.url_env) if redis.url_env else None) or redis.url


def _memory(config: LimitsConfig, env: Mapping[str, str]) -> LimitBackend:
    del env
    return MemoryBackend(time.monotonic, config.lease_seconds)


def _redis(config: LimitsConfig, env: Mapping[str, str]) -> LimitBackend:
    client = connect(redis_url(config, env), timeout=config.redis.timeout)
    return RedisBackend(client, prefix=config.redis.prefix, lease_seconds=config.lease_seconds)


BACKENDS: Mapping[str, Callable[[LimitsConfig, Mapping[str, str]], LimitBackend]] = {
    "memory": _memory,
    "redis": _redis,
}


def build_limiter(config: LimitsConfig, env: Mapping[str, str]) -> Limiter:
    modes = config.failure_policy
    policy = FailurePolicy(
        {
            "requests": modes.requests,
            "tokens": modes.tokens,
            "concurrency": modes.concurrency,
            "daily_budget": modes.daily_budget,
            "monthly_budget": modes.monthly_budget,
        }
    )
    timeout = config.redis.timeout if config.backend == "redis" else 1.0
    return Limiter(
        BACKENDS[config.backend](config, env),
        policy,
        clock=time.monotonic,
        timeout=timeout,
        retry_interval=config.redis.retry_interval,
        lease_seconds=config.lease_seconds,
    )


def build_upstream_limits(config: GatewayConfig) -> UpstreamLimits:
    """Account limits keyed by route name; a name no route has is a config error."""
    known = {f"{r.provider}/{r.model}" for model in config.models for r in model.routes}
    for name in config.limits.upstream:
        if name not in known:
            expected = ", ".join(sorted(known)) or "no routes defined"
            raise ConfigError(
                f"limits.upstream: unknown route {name!r} (expected provider/upstream-model, "
                f"one of: {expected})"
            )
    accounts = {
        name: AccountLimits(rpm=limits.rpm, tpm=limits.tpm)
        for name, limits in config.limits.upstream.items()
    }
    estimate = config.limits.estimate
    estimator = TokenEstimator(estimate.chars_per_token, estimate.default_output_tokens)
    return UpstreamLimits(accounts, time.monotonic, estimator)
