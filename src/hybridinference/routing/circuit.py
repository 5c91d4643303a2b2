"""The passive circuit breaker of one route.

Closed: traffic flows; outcomes go into a small ring. It opens on ``failure_threshold``
failures in a row, or when the error share of the last ``window`` outcomes reaches
``error_rate`` (once ``min_samples`` are in). Open: no traffic for ``cooldown`` seconds.
Then half-open: exactly one trial request; its success closes the circuit, its failure
opens it again for another cooldown.

Admission is split in two, so that ordering candidates never claims anything:
``allows(now)`` is a pure predicate; ``begin(now)`` commits when an attempt really starts
(and claims the half-open trial). An attempt that ends without a verdict (cancelled, or a
client error that says nothing about the route) calls ``release()``.

Only errors with ``route_fault`` count (408/429/5xx/timeouts/refused connections); a
client's 4xx does not. The caller decides that; this class only counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hybridinference.config.routing import HealthConfig


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class CircuitSettings:
    failure_threshold: int = 5
    error_rate: float = 0.5
    window: int = 20
    min_samples: int = 10
    cooldown: float = 30.0

    @classmethod
    def from_config(cls, config: HealthConfig) -> CircuitSettings:
        return cls(
            failure_threshold=config.failure_threshold,
            error_rate=config.error_rate,
            window=config.window,
            min_samples=config.min_samples,
            cooldown=config.cooldown,
        )


class CircuitBreaker:
    __slots__ = (
        "_filled",
        "_index",
        "_outcomes",
        "_trial",
        "consecutive",
        "failures",
        "opened_at",
        "opens",
        "settings",
        "state",
    )

    def __init__(self, settings: CircuitSettings | None = None) -> None:
        self.settings = settings or CircuitSettings()
        self.state = CircuitState.CLOSED
        self.opened_at = 0.0
        self.consecutive = 0
        self.opens = 0  # how many times it has opened, for the admin view
        self._outcomes = [False] * self.settings.window  # True = failure
        self._index = 0
        self._filled = 0
        self.failures = 0  # failures among the ring's outcomes
        self._trial = False

    def allows(self, now: float) -> bool:
        if self.state is CircuitState.CLOSED:
            return True
        if self.state is CircuitState.OPEN:
            return now >= self.opened_at + self.settings.cooldown
        return not self._trial

    def retry_in(self, now: float) -> float:
        """Seconds until this circuit admits a request again (0 when it does now)."""
        if self.state is CircuitState.OPEN:
            return max(0.0, self.opened_at + self.settings.cooldown - now)
        return 0.0

    def begin(self, now: float) -> None:
        if self.state is CircuitState.OPEN and now >= self.opened_at + self.settings.cooldown:
            self.state = CircuitState.HALF_OPEN
        if self.state is CircuitState.HALF_OPEN:
            self._trial = True

    def release(self) -> None:
        self._trial = False

    def success(self, now: float) -> None:
        del now
        self._trial = False
        self.consecutive = 0
        if self.state is not CircuitState.CLOSED:
            self._close()
        self._push(False)

    def failure(self, now: float) -> None:
        self._trial = False
        self.consecutive += 1
        if self.state is CircuitState.HALF_OPEN:
            self._open(now)
            return
        if self.state is CircuitState.OPEN:
            return  # a straggler that started before the circuit opened
        self._push(True)
        settings = self.settings
        if self.consecutive >= settings.failure_threshold or (
            self._filled >= settings.min_samples
            and self.failures >= settings.error_rate * self._filled
        ):
            self._open(now)

    def _push(self, failed: bool) -> None:
        ring = self._outcomes
        index = self._index
        if self._filled == len(ring):
            self.failures -= ring[index]
        else:
            self._filled += 1
        ring[index] = failed
        self.failures += failed
        self._index = (index + 1) % len(ring)

    def _open(self, now: float) -> None:
        self.state = CircuitState.OPEN
        self.opened_at = now
        self.opens += 1

    def _close(self) -> None:
        self.state = CircuitState.CLOSED
        self._outcomes = [False] * self.settings.window
        self._index = 0
        self._filled = 0
        self.failures = 0

    def error_share(self) -> float:
        return self.failures / self._filled if self._filled else 0.0

    def describe(self, now: float) -> dict[str, object]:
        state = self.state
        if state is CircuitState.OPEN and self.allows(now):
            state = CircuitState.HALF_OPEN  # the next request will be the trial
        return {
            "state": state.value,
            "consecutive_failures": self.consecutive,
            "error_share": round(self.error_share(), 4),
            "opens": self.opens,
            "retry_in": round(self.retry_in(now), 3),
        }
