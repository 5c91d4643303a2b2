"""The alert logger: an Alertmanager-shaped webhook (firing, then resolved) is stored in
the database — SQLite and PostgreSQL — and listed back; bad bodies and tokens refused."""

from __future__ import annotations

import asyncio
import datetime
import os
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import yaml

from hybridinference.observability.alert_logger import create_alert_logger
from hybridinference.observability.alert_store import open_alert_store
from tests.fakes.servers import RunningGateway, run_gateway

PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
PG_SCHEMA_URL = PG_URL + "?schema=alert_logger_test"  # as storage.url may name a schema
TOKEN = "alert-token-for-tests"


def webhook(status: str, fingerprint: str, ends_at: str = "0001-01-01T00:00:00Z") -> dict[str, Any]:
    """What Alertmanager 0.25 posts (webhook version 4)."""
    return {
        "receiver": "alert-logger",
        "status": status,
        "alerts": [
            {
                "status": status,
                "labels": {
                    "alertname": "HybridInferenceHighErrorRate",
                    "model": "gpt-x",
                    "severity": "critical",
                },
                "annotations": {
                    "summary": "More than 5% of gpt-x requests fail with a 5xx",
                    "runbook_url": "docs/operations.md#high-error-rate",
                },
                "startsAt": "2026-11-29T10:00:00.000Z",
                "endsAt": ends_at,
                "generatorURL": "http://prometheus:9090/graph?g0.expr=x",
                "fingerprint": fingerprint,
            }
        ],
        "groupLabels": {"alertname": "HybridInferenceHighErrorRate"},
        "commonLabels": {"alertname": "HybridInferenceHighErrorRate", "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "version": "4",
        "groupKey": '{}:{alertname="HybridInferenceHighErrorRate"}',
        "truncatedAlerts": 0,
    }


def postgres_available() -> bool:
    async def ping() -> None:
        conn = await asyncpg.connect(PG_URL, timeout=3)
        await conn.close()

    try:
        asyncio.run(ping())
    except Exception:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL at 127.0.0.1:5432 is required in CI")
        return False
    return True


@pytest.fixture(params=["sqlite", "postgresql", "postgresql-schema"])
def logger_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/alerts.db"
        return
    if not postgres_available():
        pytest.skip("PostgreSQL is not reachable")
    yield PG_SCHEMA_URL if request.param.endswith("schema") else PG_URL


@pytest.fixture
def alert_logger(logger_url: str, tmp_path: Path) -> Iterator[RunningGateway]:
    app = create_alert_logger(lambda: open_alert_store(logger_url), token=TOKEN)
    running = run_gateway(app, tmp_path / "unused.db")
    yield running
    running.stop()


AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_webhook_is_stored_then_resolved(alert_logger: RunningGateway) -> None:
    fingerprint = uuid.uuid4().hex[:16]  # PostgreSQL's table outlives the test
    stored = httpx.post(
        alert_logger.url + "/webhook", json=webhook("firing", fingerprint), headers=AUTH
    )
    assert stored.status_code == 200 and stored.json() == {"stored": 1}
    firing = httpx.get(alert_logger.url + "/alerts?status=firing&limit=500", headers=AUTH).json()
    mine = [a for a in firing["data"] if a["fingerprint"] == fingerprint]
    assert len(mine) == 1
    alert = mine[0]
    assert alert["name"] == "HybridInferenceHighErrorRate"
    assert alert["severity"] == "critical"
    assert alert["labels"]["model"] == "gpt-x"
    assert alert["summary"].startswith("More than 5%")
    assert alert["ends_at"] is None
    # a repeat notification and then the resolution update the same row
    httpx.post(alert_logger.url + "/webhook", json=webhook("firing", fingerprint), headers=AUTH)
    resolved = webhook("resolved", fingerprint, ends_at="2026-11-29T10:20:00.000Z")
    assert httpx.post(alert_logger.url + "/webhook", json=resolved, headers=AUTH).status_code == 200
    every = httpx.get(alert_logger.url + "/alerts?limit=1000", headers=AUTH).json()["data"]
    rows = [a for a in every if a["fingerprint"] == fingerprint]
    assert len(rows) == 1
    assert rows[0]["status"] == "resolved"
    ended = datetime.datetime(2026, 11, 29, 10, 20, tzinfo=datetime.UTC).timestamp()
    assert rows[0]["ends_at"] == pytest.approx(ended)
    still_firing = httpx.get(alert_logger.url + "/alerts?status=firing&limit=1000", headers=AUTH)
    assert fingerprint not in {a["fingerprint"] for a in still_firing.json()["data"]}


def test_refuses_bad_token_and_bad_body(alert_logger: RunningGateway) -> None:
    body = webhook("firing", "f" * 16)
    assert httpx.post(alert_logger.url + "/webhook", json=body).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert httpx.post(alert_logger.url + "/webhook", json=body, headers=wrong).status_code == 401
    bad = httpx.post(alert_logger.url + "/webhook", json={"alerts": "no"}, headers=AUTH)
    assert bad.status_code == 400
    assert bad.json()["error"]["type"] == "invalid_request_error"
    assert httpx.get(alert_logger.url + "/alerts?status=weird", headers=AUTH).status_code == 400
    assert httpx.get(alert_logger.url + "/health").json() == {"status": "ok"}


def test_cli_alert_logger_process(tmp_path: Path) -> None:
    """`hybridinference alert-logger` as Compose runs it: token from the environment."""

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"storage": {"url": f"sqlite:///{tmp_path}/gw.db"}}))
    command = [sys.executable, "-m", "hybridinference", "alert-logger", "--config", str(config)]
    command += ["--port", str(port)]
    env = {"PATH": "/usr/bin:/bin", "HYBRIDINFERENCE_ALERT_TOKEN": TOKEN}
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                assert process.poll() is None
                assert time.monotonic() < deadline, "alert logger did not start"
                time.sleep(0.1)
        assert httpx.post(url + "/webhook", json=webhook("firing", "c" * 16)).status_code == 401
        stored = httpx.post(url + "/webhook", json=webhook("firing", "c" * 16), headers=AUTH)
        assert stored.json() == {"stored": 1}
    finally:
        process.terminate()
        process.wait(10)
    conn = sqlite3.connect(tmp_path / "gw.db")  # the gateway's own database file
    try:
        names = conn.execute("SELECT name, status FROM alerts").fetchall()
    finally:
        conn.close()
    assert names == [("HybridInferenceHighErrorRate", "firing")]
