"""Usage analytics: the query (time range, bucket size, grouping, filters), the result
row, and the reference aggregation in Python that the SQLite backend uses.

PostgreSQL computes the same thing in SQL (``percentile_cont``); this module's
``percentile`` is the same linear interpolation, so both backends answer identically.
An error is a row with status >= 400, except 499 (the client went away).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

#: Dimension name → column. A registry, so the API and both backends agree on names.
DIMENSIONS: dict[str, str] = {
    "key": "key_id",
    "model": "model",
    "route": "route",
    "endpoint": "endpoint",
}
QUANTILES: tuple[float, ...] = (0.5, 0.95, 0.99)
CLIENT_CLOSED = 499


@dataclass(frozen=True, slots=True)
class UsageQuery:
    start: float  # unix seconds, inclusive
    end: float  # unix seconds, exclusive
    bucket_seconds: int = 3600
    group_by: tuple[str, ...] = ()  # names from DIMENSIONS
    key_id: str | None = None
    model: str | None = None
    route: str | None = None

    def __post_init__(self) -> None:
        unknown = [d for d in self.group_by if d not in DIMENSIONS]
        if unknown:
            raise ValueError(f"unknown usage dimension(s): {', '.join(unknown)}")
        if self.bucket_seconds <= 0 or self.end <= self.start:
            raise ValueError("expected bucket_seconds > 0 and end > start")

    @property
    def filters(self) -> tuple[tuple[str, str], ...]:
        """(column, value) equality filters that are set."""
        pairs = (("key_id", self.key_id), ("model", self.model), ("route", self.route))
        return tuple((column, value) for column, value in pairs if value is not None)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(DIMENSIONS[d] for d in self.group_by)


@dataclass(frozen=True, slots=True)
class UsageRow:
    bucket: float  # unix seconds, start of the bucket
    group: dict[str, str | None]  # dimension name → value
    requests: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost: float
    latency_ms: tuple[float | None, ...]  # p50, p95, p99
    ttft_ms: tuple[float | None, ...]

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "bucket": self.bucket,
            **self.group,
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cost": self.cost,
            **_quantiles("latency_ms", self.latency_ms),
            **_quantiles("ttft_ms", self.ttft_ms),
        }


def _quantiles(name: str, values: Sequence[float | None]) -> dict[str, float | None]:
    return {f"{name}_p{round(q * 100)}": v for q, v in zip(QUANTILES, values, strict=True)}


def is_error(status: int) -> bool:
    return status >= 400 and status != CLIENT_CLOSED


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """PostgreSQL's ``percentile_cont``: linear interpolation between closest ranks."""
    if not sorted_values:
        return None
    position = q * (len(sorted_values) - 1)
    low = math.floor(position)
    high = math.ceil(position)
    fraction = position - low
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * fraction


@dataclass(slots=True)
class _Accumulator:
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost: float = 0.0
    latencies: list[float] = field(default_factory=list)
    ttfts: list[float] = field(default_factory=list)


#: What ``aggregate`` reads per row, after the group columns.
FACT_COLUMNS = (
    "created_at, status, prompt_tokens, completion_tokens, total_tokens, cost, latency_ms, ttft_ms"
)


def aggregate(query: UsageQuery, rows: Iterable[Sequence[Any]]) -> list[UsageRow]:
    """Rows are ``(*group columns, *FACT_COLUMNS)``, already filtered by time and value."""
    width = len(query.group_by)
    groups: dict[tuple[float, tuple[object, ...]], _Accumulator] = defaultdict(_Accumulator)
    for row in rows:
        dims = tuple(row[:width])
        created, status, prompt, completion, total, cost, latency, ttft = row[width:]
        bucket = math.floor(float(created) / query.bucket_seconds) * query.bucket_seconds
        acc = groups[(float(bucket), dims)]
        acc.requests += 1
        acc.errors += is_error(int(status))
        acc.prompt_tokens += int(prompt)
        acc.completion_tokens += int(completion)
        acc.total_tokens += int(total)
        acc.cost += float(cost)
        acc.latencies.append(float(latency))
        if ttft is not None:
            acc.ttfts.append(float(ttft))
    return sort_rows([_finish(query, bucket, dims, acc) for (bucket, dims), acc in groups.items()])


def sort_rows(rows: Iterable[UsageRow]) -> list[UsageRow]:
    """By bucket, then group values (missing values last): the same order on any backend."""
    return sorted(rows, key=lambda r: (r.bucket, *((v is None, v or "") for v in r.group.values())))


def _finish(
    query: UsageQuery, bucket: float, dims: tuple[object, ...], acc: _Accumulator
) -> UsageRow:
    latencies, ttfts = sorted(acc.latencies), sorted(acc.ttfts)
    return UsageRow(
        bucket=bucket,
        group={
            d: (None if v is None else str(v)) for d, v in zip(query.group_by, dims, strict=True)
        },
        requests=acc.requests,
        errors=acc.errors,
        prompt_tokens=acc.prompt_tokens,
        completion_tokens=acc.completion_tokens,
        total_tokens=acc.total_tokens,
        cost=acc.cost,
        latency_ms=tuple(percentile(latencies, q) for q in QUANTILES),
        ttft_ms=tuple(percentile(ttfts, q) for q in QUANTILES),
    )
