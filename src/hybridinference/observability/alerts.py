"""Alertmanager webhook payloads (validated at the edge) and the alert rows they become.

Alertmanager posts a group of alerts per notification; each alert is identified by its
``fingerprint`` (a hash of its labels) and ``startsAt``. The same alert arrives again
while it fires (repeat interval) and once more when resolved: rows are keyed on
(fingerprint, starts_at) so repeats update one row instead of adding new ones.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field

MIN_REAL_YEAR = 1971  # Alertmanager sends 0001-01-01T00:00:00Z for "no end yet"


class WebhookAlert(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime  # Alertmanager spells its fields in camelCase
    endsAt: datetime | None = None
    generatorURL: str = ""
    fingerprint: str = ""


class AlertmanagerWebhook(BaseModel):
    """Alertmanager's webhook body, version 4."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    version: str = "4"
    groupKey: str = ""
    status: Literal["firing", "resolved"]
    receiver: str = ""
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[WebhookAlert] = Field(min_length=1, max_length=1000)


@dataclass(frozen=True, slots=True)
class StoredAlert:
    fingerprint: str
    starts_at: float  # unix seconds
    name: str
    status: str  # firing | resolved
    severity: str | None
    summary: str | None
    ends_at: float | None
    labels: dict[str, str]
    annotations: dict[str, str]
    generator_url: str
    receiver: str
    received_at: float  # first notification
    updated_at: float  # latest notification

    def to_json(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "name": self.name,
            "status": self.status,
            "severity": self.severity,
            "summary": self.summary,
            "starts_at": self.starts_at,
            "ends_at": self.ends_at,
            "labels": self.labels,
            "annotations": self.annotations,
            "generator_url": self.generator_url,
            "receiver": self.receiver,
            "received_at": self.received_at,
            "updated_at": self.updated_at,
        }


def fingerprint(labels: dict[str, str]) -> str:
    return hashlib.sha256(orjson.dumps(labels, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def _unix(value: datetime | None) -> float | None:
    if value is None or value.year < MIN_REAL_YEAR:
        return None
    return value.timestamp()


def stored_alerts(payload: AlertmanagerWebhook, now: float) -> list[StoredAlert]:
    out = []
    for alert in payload.alerts:
        starts_at = _unix(alert.startsAt) or now
        out.append(
            StoredAlert(
                fingerprint=alert.fingerprint or fingerprint(alert.labels),
                starts_at=starts_at,
                name=alert.labels.get("alertname", "unnamed"),
                status=alert.status,
                severity=alert.labels.get("severity"),
                summary=alert.annotations.get("summary"),
                ends_at=_unix(alert.endsAt) if alert.status == "resolved" else None,
                labels=dict(alert.labels),
                annotations=dict(alert.annotations),
                generator_url=alert.generatorURL,
                receiver=payload.receiver,
                received_at=now,
                updated_at=now,
            )
        )
    return out
