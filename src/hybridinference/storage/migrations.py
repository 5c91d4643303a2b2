"""The schema, as numbered migrations per backend, and which ones are still to apply.

Each migration is a list of SQL statements for each dialect. A backend applies the
missing ones in order, each recorded in ``schema_migrations``, inside one transaction
that holds a lock, so several processes starting at once apply each migration exactly
once: ``pg_advisory_xact_lock`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite (both
dialects have transactional DDL, so a failed migration leaves nothing half-done).

Append new migrations; never edit one that has shipped. Version 1 is the schema the
embedded store created before migrations existed (``IF NOT EXISTS`` so such a file is
adopted as is).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from hybridinference.storage.overrides import tables as override_tables

VERSION_TABLE = "schema_migrations"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: Mapping[str, tuple[str, ...]]  # dialect → statements


def _requests_table(real: str, text: str) -> str:
    return f"""CREATE TABLE IF NOT EXISTS requests (
    request_id {text} PRIMARY KEY,
    created_at {real} NOT NULL,
    endpoint {text} NOT NULL,
    key_id {text},
    model {text},
    route {text},
    status INTEGER NOT NULL,
    error_type {text},
    latency_ms {real} NOT NULL,
    ttft_ms {real},
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    total_tokens INTEGER NOT NULL,
    cost {real} NOT NULL,
    stream INTEGER NOT NULL,
    attempts {text} NOT NULL,
    cancelled INTEGER NOT NULL,
    client_ip {text},
    content {text}
)"""


def _keys_table(real: str, text: str) -> str:
    return f"""CREATE TABLE IF NOT EXISTS api_keys (
    id {text} PRIMARY KEY,
    name {text} NOT NULL,
    key_hash {text} NOT NULL UNIQUE,
    prefix {text} NOT NULL,
    allowed_models {text},
    created_at {real} NOT NULL,
    revoked_at {real}
)"""


def _baseline(real: str, text: str) -> tuple[str, ...]:
    return (
        _requests_table(real, text),
        "CREATE INDEX IF NOT EXISTS requests_created_at ON requests (created_at)",
        "CREATE INDEX IF NOT EXISTS requests_key_created ON requests (key_id, created_at)",
        _keys_table(real, text),
    )


def _key_limits(real: str, text: str) -> tuple[str, ...]:
    columns = (
        ("owner", text),
        ("rpm_limit", "INTEGER"),
        ("tpm_limit", "INTEGER"),
        ("max_concurrency", "INTEGER"),
        ("daily_budget", real),
        ("monthly_budget", real),
        ("updated_at", real),
    )
    return (
        *(f"ALTER TABLE api_keys ADD COLUMN {name} {kind}" for name, kind in columns),
        f"""CREATE TABLE key_spend (
    key_id {text} NOT NULL,
    period {text} NOT NULL,
    cost {real} NOT NULL DEFAULT 0,
    tokens BIGINT NOT NULL DEFAULT 0,
    requests BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, period)
)""",
    )


PG = ("DOUBLE PRECISION", "TEXT")
LITE = ("REAL", "TEXT")

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "baseline", {"sqlite": _baseline(*LITE), "postgresql": _baseline(*PG)}),
    Migration(
        2, "key limits and spend", {"sqlite": _key_limits(*LITE), "postgresql": _key_limits(*PG)}
    ),
    Migration(
        3,
        "usage rollup index",
        {
            # The rollup reads these columns for a time range: an index-only scan on
            # PostgreSQL (see docs/storage.md for the 10M-row measurement).
            "sqlite": (),
            "postgresql": (
                "CREATE INDEX IF NOT EXISTS requests_usage ON requests (created_at) INCLUDE "
                "(key_id, model, route, endpoint, status, prompt_tokens, completion_tokens, "
                "total_tokens, cost, latency_ms, ttft_ms)",
                "DROP INDEX IF EXISTS requests_created_at",
            ),
        },
    ),
    Migration(
        4,
        "request trace id",
        {
            "sqlite": ("ALTER TABLE requests ADD COLUMN trace_id TEXT",),
            "postgresql": ("ALTER TABLE requests ADD COLUMN trace_id TEXT",),
        },
    ),
    Migration(
        5,
        "runtime config overrides and their audit",
        {
            "sqlite": override_tables("REAL", "INTEGER PRIMARY KEY AUTOINCREMENT"),
            "postgresql": override_tables("DOUBLE PRECISION", "BIGSERIAL PRIMARY KEY"),
        },
    ),
)

LATEST = MIGRATIONS[-1].version


def version_table_sql(real: str) -> str:
    return (
        f"CREATE TABLE IF NOT EXISTS {VERSION_TABLE} "
        f"(version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at {real} NOT NULL)"
    )


def pending(applied: Collection[int]) -> list[Migration]:
    return [m for m in MIGRATIONS if m.version not in applied]
