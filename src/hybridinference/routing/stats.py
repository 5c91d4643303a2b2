"""Per-route latency statistics: a mixed-window empirical TTFT distribution, an EWMA,
an error share and an output-token throughput.

The distribution blends a short window (reacts to drift) with a long one (steady when
traffic is thin), as in the HybridInference paper's latency layer. A failure counts as an
infinitely late first token, so a route that errors looks slow to every strategy.

Cheap to read on the hot path: samples live in bounded deques; the sorted copy used for
quantiles and CDF values is rebuilt lazily, at most once per ~1/16th of the window's
samples changing, so a decision costs a bisect, not a sort. Time is always passed in
(``now``, monotonic seconds) — nothing here reads a clock.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections import deque
from dataclasses import dataclass

INF = math.inf


class Window:
    """Samples of the last ``horizon`` seconds, at most ``capacity`` of them."""

    __slots__ = ("_changes", "_sorted", "_times", "_values", "capacity", "horizon")

    def __init__(self, capacity: int, horizon: float) -> None:
        self.capacity = capacity
        self.horizon = horizon
        self._times: deque[float] = deque(maxlen=capacity)
        self._values: deque[float] = deque(maxlen=capacity)
        self._sorted: list[float] = []
        self._changes = 0

    def add(self, now: float, value: float) -> None:
        self._times.append(now)
        self._values.append(value)
        self._changes += 1

    def _expire(self, now: float) -> None:
        times = self._times
        cutoff = now - self.horizon
        while times and times[0] < cutoff:
            times.popleft()
            self._values.popleft()
            self._changes += 1

    def _fresh(self, now: float) -> list[float]:
        self._expire(now)
        if self._changes and self._changes * 16 >= len(self._sorted) + 16:
            self._sorted = sorted(self._values)
            self._changes = 0
        return self._sorted

    def count(self, now: float) -> int:
        self._expire(now)
        return len(self._times)

    def cdf(self, now: float, x: float) -> float | None:
        values = self._fresh(now)
        if not values:
            return None
        return bisect_right(values, x) / len(values)

    def quantile(self, now: float, q: float) -> float | None:
        values = self._fresh(now)
        if not values:
            return None
        return values[min(len(values) - 1, int(q * len(values)))]

    def served_cdf(self, now: float, x: float) -> float | None:
        """P(value ≤ x) among the finite samples (failures left out); None without any."""
        values = self._fresh(now)
        served = bisect_left(values, INF)
        return bisect_right(values, x, 0, served) / served if served else None


@dataclass(frozen=True, slots=True)
class StatsSnapshot:
    samples: int
    p50: float | None
    p95: float | None
    p99: float | None
    ewma: float | None
    error_rate: float
    tokens_per_second: float | None


class LatencyStats:
    """What one route's recent requests say about it."""

    __slots__ = ("_long", "_short", "alpha", "blend", "error_rate", "ewma", "throughput")

    def __init__(
        self,
        *,
        short_horizon: float = 900.0,
        long_horizon: float = 10800.0,
        short_capacity: int = 512,
        long_capacity: int = 2048,
        alpha: float = 0.1,
        blend: int = 20,
    ) -> None:
        self._short = Window(short_capacity, short_horizon)
        self._long = Window(long_capacity, long_horizon)
        self.alpha = alpha
        self.blend = blend  # short-window samples at which it gets half the weight
        self.ewma: float | None = None
        self.error_rate = 0.0
        self.throughput: float | None = None

    def record(self, now: float, ttft: float) -> None:
        self._short.add(now, ttft)
        self._long.add(now, ttft)
        self.ewma = ttft if self.ewma is None else self.ewma + self.alpha * (ttft - self.ewma)
        self.error_rate -= self.alpha * self.error_rate

    def record_failure(self, now: float) -> None:
        self._short.add(now, INF)
        self._long.add(now, INF)
        self.error_rate += self.alpha * (1.0 - self.error_rate)

    def record_throughput(self, tokens_per_second: float) -> None:
        old = self.throughput
        self.throughput = (
            tokens_per_second if old is None else old + self.alpha * (tokens_per_second - old)
        )

    def samples(self, now: float) -> int:
        return self._long.count(now)

    def cdf(self, now: float, x: float) -> float | None:
        """P(TTFT ≤ x), blending the windows by how much the short one has seen."""
        long = self._long.cdf(now, x)
        if long is None:
            return None
        short = self._short.cdf(now, x)
        if short is None:
            return long
        n = self._short.count(now)
        beta = n / (n + self.blend)
        return beta * short + (1.0 - beta) * long

    def served_cdf(self, now: float, x: float) -> float | None:
        """P(TTFT ≤ x) of the requests that got an answer, failures left out (blended
        like ``cdf``): the latency of the route, apart from whether it is failing now."""
        long = self._long.served_cdf(now, x)
        if long is None:
            return None
        short = self._short.served_cdf(now, x)
        if short is None:
            return long
        n = self._short.count(now)
        beta = n / (n + self.blend)
        return beta * short + (1.0 - beta) * long

    def quantile(self, now: float, q: float) -> float | None:
        """The short window's quantile once it has enough samples, else the long one's."""
        if self._short.count(now) >= self.blend:
            return self._short.quantile(now, q)
        return self._long.quantile(now, q)

    def snapshot(self, now: float) -> StatsSnapshot:
        def finite(value: float | None) -> float | None:
            return None if value is None or math.isinf(value) else round(value, 6)

        return StatsSnapshot(
            samples=self.samples(now),
            p50=finite(self.quantile(now, 0.5)),
            p95=finite(self.quantile(now, 0.95)),
            p99=finite(self.quantile(now, 0.99)),
            ewma=finite(self.ewma),
            error_rate=round(self.error_rate, 6),
            tokens_per_second=finite(self.throughput),
        )
