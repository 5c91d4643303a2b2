"""Runtime overrides as stored: the active ones and the audit trail of every change.

``value`` (and an audit entry's ``old``/``new``) is JSON text: a boolean, a number or a
string, whatever the field takes (``routing.overrides`` checks them).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class OverrideRecord:
    model: str
    route: str  # "" for a model-level field
    field: str
    value: str  # JSON
    actor: str
    reason: str | None
    updated_at: float


@dataclass(frozen=True, slots=True)
class OverrideAudit:
    id: int
    at: float
    actor: str
    action: str  # "set" or "clear"
    model: str
    route: str
    field: str
    old: str | None  # JSON; None when there was no override
    new: str | None  # JSON; None when cleared
    reason: str | None
