"""The circuit breaker, driven with explicit times (no clock, no sleeping)."""

from __future__ import annotations

from hybridinference.routing.circuit import CircuitBreaker, CircuitSettings, CircuitState


def breaker(**settings: float) -> CircuitBreaker:
    return CircuitBreaker(CircuitSettings(**settings))  # type: ignore[arg-type]


def test_opens_after_consecutive_failures_and_blocks_until_cooldown() -> None:
    cb = breaker(failure_threshold=3, cooldown=30.0, min_samples=100)
    for t in (1.0, 2.0):
        cb.begin(t)
        cb.failure(t)
    assert cb.state is CircuitState.CLOSED and cb.allows(2.0)
    cb.failure(3.0)
    assert cb.state is CircuitState.OPEN
    assert not cb.allows(3.0) and not cb.allows(32.9)
    assert cb.retry_in(13.0) == 20.0
    assert cb.allows(33.0)


def test_success_resets_the_consecutive_count() -> None:
    cb = breaker(failure_threshold=3, min_samples=100)
    for t in range(10):
        cb.failure(float(t))
        cb.failure(float(t))
        cb.success(float(t))
    assert cb.state is CircuitState.CLOSED


def test_opens_on_error_share_once_enough_samples() -> None:
    cb = breaker(failure_threshold=100, error_rate=0.5, window=10, min_samples=10)
    for t in range(9):  # alternate: 4 or 5 failures in 9 — too few samples
        (cb.failure if t % 2 == 0 else cb.success)(float(t))
    assert cb.state is CircuitState.CLOSED
    cb.success(9.0)  # 10 samples, 5 failures = 50 %
    assert cb.state is CircuitState.CLOSED  # a success never opens it
    cb.failure(10.0)  # ring now holds 5 failures of 10 → opens
    assert cb.state is CircuitState.OPEN


def test_half_open_admits_exactly_one_trial() -> None:
    cb = breaker(failure_threshold=1, cooldown=10.0)
    cb.failure(0.0)
    assert cb.allows(10.0)
    cb.begin(10.0)
    assert cb.state is CircuitState.HALF_OPEN
    assert not cb.allows(10.5)  # the trial is in flight
    cb.success(11.0)
    assert cb.state is CircuitState.CLOSED and cb.allows(11.0)
    assert cb.error_share() == 0.0


def test_failed_trial_reopens_for_another_cooldown() -> None:
    cb = breaker(failure_threshold=1, cooldown=10.0)
    cb.failure(0.0)
    cb.begin(12.0)
    cb.failure(12.5)
    assert cb.state is CircuitState.OPEN
    assert not cb.allows(20.0) and cb.allows(22.5)
    assert cb.opens == 2


def test_released_trial_lets_the_next_request_try() -> None:
    cb = breaker(failure_threshold=1, cooldown=10.0)
    cb.failure(0.0)
    cb.begin(10.0)
    cb.release()  # e.g. a client error: says nothing about the route
    assert cb.allows(10.1)


def test_describe_reports_half_open_once_cooled_down() -> None:
    cb = breaker(failure_threshold=1, cooldown=5.0)
    cb.failure(0.0)
    assert cb.describe(1.0)["state"] == "open"
    assert cb.describe(6.0)["state"] == "half_open"
