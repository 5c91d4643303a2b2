"""Runtime overrides and their audit trail in the database (both backends).

The backends delegate here: SQLite calls run on its connection thread, PostgreSQL ones
on a pooled connection. A change and its audit entry are one transaction, so the audit
never misses a change nor records one that did not happen.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import asyncpg

from hybridinference.schemas.overrides import OverrideAudit, OverrideRecord

COLUMNS = "model, route, field, value, actor, reason, updated_at"
AUDIT_COLUMNS = "id, at, actor, action, model, route, field, old_value, new_value, reason"


def tables(real: str, serial: str) -> tuple[str, ...]:
    """Migration statements (``serial``: the dialect's auto-increment primary key)."""
    return (
        f"""CREATE TABLE config_overrides (
    model TEXT NOT NULL,
    route TEXT NOT NULL,
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT,
    updated_at {real} NOT NULL,
    PRIMARY KEY (model, route, field)
)""",
        f"""CREATE TABLE config_override_audit (
    id {serial},
    at {real} NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    model TEXT NOT NULL,
    route TEXT NOT NULL,
    field TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT,
    reason TEXT
)""",
    )


def record(row: Sequence[Any]) -> OverrideRecord:
    return OverrideRecord(
        model=row[0],
        route=row[1],
        field=row[2],
        value=row[3],
        actor=row[4],
        reason=row[5],
        updated_at=float(row[6]),
    )


def audit(row: Sequence[Any]) -> OverrideAudit:
    return OverrideAudit(
        id=int(row[0]),
        at=float(row[1]),
        actor=row[2],
        action=row[3],
        model=row[4],
        route=row[5],
        field=row[6],
        old=row[7],
        new=row[8],
        reason=row[9],
    )


def _audit_values(
    action: str, new: OverrideRecord, old: OverrideRecord | None, value: str | None
) -> tuple[Any, ...]:
    return (
        new.updated_at,
        new.actor,
        action,
        new.model,
        new.route,
        new.field,
        old.value if old else None,
        value,
        new.reason,
    )


# -- SQLite (called on the store's connection thread) ------------------------------------

_LITE_SELECT = f"SELECT {COLUMNS} FROM config_overrides WHERE model = ? AND route = ? AND field = ?"
_LITE_AUDIT = (
    "INSERT INTO config_override_audit (at, actor, action, model, route, field, "
    "old_value, new_value, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def lite_list(conn: sqlite3.Connection) -> list[OverrideRecord]:
    rows = conn.execute(f"SELECT {COLUMNS} FROM config_overrides ORDER BY model, route, field")
    return [record(row) for row in rows.fetchall()]


def lite_change(
    conn: sqlite3.Connection, new: OverrideRecord, clear: bool
) -> OverrideRecord | None:
    """Set (or with ``clear`` delete) one override and audit it; returns the previous."""
    key = (new.model, new.route, new.field)
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute(_LITE_SELECT, key).fetchone()
        old = record(row) if row else None
        if clear:
            if old is not None:
                conn.execute(
                    "DELETE FROM config_overrides WHERE model = ? AND route = ? AND field = ?",
                    key,
                )
                conn.execute(_LITE_AUDIT, _audit_values("clear", new, old, None))
        else:
            conn.execute(
                f"INSERT INTO config_overrides ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (model, route, field) DO UPDATE SET value = excluded.value, "
                "actor = excluded.actor, reason = excluded.reason, "
                "updated_at = excluded.updated_at",
                (*key, new.value, new.actor, new.reason, new.updated_at),
            )
            conn.execute(_LITE_AUDIT, _audit_values("set", new, old, new.value))
        conn.execute("COMMIT")
        return old
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def lite_audit(conn: sqlite3.Connection, limit: int) -> list[OverrideAudit]:
    rows = conn.execute(
        f"SELECT {AUDIT_COLUMNS} FROM config_override_audit ORDER BY id DESC LIMIT ?", (limit,)
    )
    return [audit(row) for row in rows.fetchall()]


# -- PostgreSQL ---------------------------------------------------------------------------


async def pg_list(pool: asyncpg.Pool) -> list[OverrideRecord]:
    rows = await pool.fetch(f"SELECT {COLUMNS} FROM config_overrides ORDER BY model, route, field")
    return [record(tuple(row)) for row in rows]


async def pg_change(pool: asyncpg.Pool, new: OverrideRecord, clear: bool) -> OverrideRecord | None:
    key = (new.model, new.route, new.field)
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"SELECT {COLUMNS} FROM config_overrides WHERE model = $1 AND route = $2 "
            "AND field = $3 FOR UPDATE",
            *key,
        )
        old = record(tuple(row)) if row else None
        if clear and old is None:
            return None
        if clear:
            await conn.execute(
                "DELETE FROM config_overrides WHERE model = $1 AND route = $2 AND field = $3",
                *key,
            )
        else:
            await conn.execute(
                f"INSERT INTO config_overrides ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) "
                "ON CONFLICT (model, route, field) DO UPDATE SET value = excluded.value, "
                "actor = excluded.actor, reason = excluded.reason, "
                "updated_at = excluded.updated_at",
                *key,
                new.value,
                new.actor,
                new.reason,
                new.updated_at,
            )
        await conn.execute(
            "INSERT INTO config_override_audit (at, actor, action, model, route, field, "
            "old_value, new_value, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            *_audit_values("clear" if clear else "set", new, old, None if clear else new.value),
        )
        return old


async def pg_audit(pool: asyncpg.Pool, limit: int) -> list[OverrideAudit]:
    rows = await pool.fetch(
        f"SELECT {AUDIT_COLUMNS} FROM config_override_audit ORDER BY id DESC LIMIT $1", limit
    )
    return [audit(tuple(row)) for row in rows]
