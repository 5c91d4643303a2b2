"""How records become rows and back, shared by both backends, the journal and export:
column lists, tuple codecs, the JSON form of a request record, and spend periods."""

from __future__ import annotations

import operator
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import fields
from typing import Any

import orjson

from hybridinference.schemas.keys import EDITABLE_KEY_FIELDS, ApiKeyRecord, KeySpend
from hybridinference.schemas.records import Attempt, RequestRecord

# Explicit (not derived from the dataclasses): a field added to a record is stored only
# once a migration adds its column.
REQUEST_FIELDS: tuple[str, ...] = (
    "request_id",
    "created_at",
    "endpoint",
    "key_id",
    "model",
    "route",
    "status",
    "error_type",
    "latency_ms",
    "ttft_ms",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost",
    "stream",
    "attempts",
    "cancelled",
    "client_ip",
    "content",
    "trace_id",
)
REQUEST_COLUMNS = ", ".join(REQUEST_FIELDS)
KEY_FIELDS: tuple[str, ...] = (
    "id",
    "name",
    "key_hash",
    "prefix",
    "allowed_models",
    "created_at",
    "revoked_at",
    "owner",
    "rpm_limit",
    "tpm_limit",
    "max_concurrency",
    "daily_budget",
    "monthly_budget",
    "updated_at",
)
_RECORD_FIELDS = frozenset(f.name for f in fields(RequestRecord))
KEY_COLUMNS = ", ".join(KEY_FIELDS)
_BOOL_FIELDS = frozenset({"stream", "cancelled"})


#: one C-level call reads every column's value; then the few fixes below
_request_values = operator.attrgetter(*REQUEST_FIELDS)
_ATTEMPTS_AT = REQUEST_FIELDS.index("attempts")
_BOOLS_AT = tuple(i for i, name in enumerate(REQUEST_FIELDS) if name in _BOOL_FIELDS)


def request_row(r: RequestRecord) -> tuple[Any, ...]:
    """Column values in ``REQUEST_FIELDS`` order; attempts as JSON text, booleans as ints
    (both backends store them the same way, so one query works on both). It runs for
    every row in the writer's thread, holding the GIL: kept to a few operations."""
    values = list(_request_values(r))
    values[_ATTEMPTS_AT] = orjson.dumps(values[_ATTEMPTS_AT]).decode()  # dataclasses too
    for i in _BOOLS_AT:
        values[i] = int(values[i])
    for i, value in enumerate(values):
        if type(value) is str and "\x00" in value:
            values[i] = value.replace("\x00", "")  # PostgreSQL text cannot hold NUL
    return tuple(values)


def request_from_row(row: Sequence[Any]) -> RequestRecord:
    data = dict(zip(REQUEST_FIELDS, row, strict=True))
    data["attempts"] = tuple(Attempt(**a) for a in orjson.loads(data["attempts"]))
    for name in _BOOL_FIELDS:
        data[name] = bool(data[name])
    return RequestRecord(**data)


def request_to_json(r: RequestRecord) -> bytes:
    """One JSON object (the journal line and the JSONL export line), without newline."""
    return orjson.dumps(r)


def request_from_json(line: bytes | str) -> RequestRecord:
    data = {k: v for k, v in orjson.loads(line).items() if k in _RECORD_FIELDS}
    data["attempts"] = tuple(Attempt(**a) for a in data.get("attempts", ()))
    return RequestRecord(**data)


def key_row(k: ApiKeyRecord) -> tuple[Any, ...]:
    return tuple(_key_value(name, getattr(k, name)) for name in KEY_FIELDS)


def _key_value(name: str, value: Any) -> Any:
    if name == "allowed_models":
        return orjson.dumps(list(value)).decode() if value else None
    return value


def key_values(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Column values for an update; only ``EDITABLE_KEY_FIELDS`` may be named."""
    unknown = set(changes) - EDITABLE_KEY_FIELDS
    if unknown:
        raise ValueError(f"not editable: {', '.join(sorted(unknown))}")
    return {name: _key_value(name, value) for name, value in changes.items()}


def key_from_row(row: Sequence[Any]) -> ApiKeyRecord:
    data = dict(zip(KEY_FIELDS, row, strict=True))
    allowed = data["allowed_models"]
    data["allowed_models"] = tuple(orjson.loads(allowed)) if allowed else None
    return ApiKeyRecord(**data)


def day_period(at: float) -> str:
    return "d" + time.strftime("%Y-%m-%d", time.gmtime(at))


def month_period(at: float) -> str:
    return "m" + time.strftime("%Y-%m", time.gmtime(at))


def spend_deltas(
    records: Iterable[RequestRecord],
) -> list[tuple[str, str, float, int, int]]:
    """(key_id, period, cost, tokens, requests) to add for newly inserted rows."""
    totals: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0, 0])
    periods: dict[int, tuple[str, str]] = {}  # a batch spans a second or two: few gmtime calls
    for r in records:
        if r.key_id is None:
            continue
        second = int(r.created_at)
        pair = periods.get(second)
        if pair is None:
            pair = periods[second] = (day_period(second), month_period(second))
        for period in pair:
            entry = totals[(r.key_id, period)]
            entry[0] += r.cost
            entry[1] += r.total_tokens
            entry[2] += 1
    return [
        (key_id, period, float(cost), int(tokens), int(count))
        for (key_id, period), (cost, tokens, count) in sorted(totals.items())
    ]


def spend_from_rows(rows: Iterable[Sequence[Any]], now: float) -> dict[str, KeySpend]:
    """Fold (key_id, period, cost, tokens, requests) rows of this day and month."""
    day, month = day_period(now), month_period(now)
    found: dict[str, dict[str, Any]] = defaultdict(dict)
    for key_id, period, cost, tokens, requests in rows:
        prefix = "day" if period == day else "month" if period == month else None
        if prefix is None:
            continue
        found[key_id].update(
            {
                f"{prefix}_cost": float(cost),
                f"{prefix}_tokens": int(tokens),
                f"{prefix}_requests": int(requests),
            }
        )
    return {key_id: KeySpend(key_id=key_id, **values) for key_id, values in found.items()}
