"""`hybridinference serve --workers 2` as a real process tree: /metrics answers for every
worker (counts equal to the request log whichever worker is scraped), and the JSON logs
of all processes carry request ids and never a secret — not the upstream key, the admin
token, nor an issued API key."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import orjson
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.processes import stop, wait_serving

UPSTREAM_KEY = "sk-upstream-secret-for-the-log-test-0123456789"
ADMIN = "admin-token-for-the-log-test-9876543210"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    url: str
    db: Path
    log: Path
    metrics_dir: Path

    def rows(self) -> int:
        import sqlite3

        conn = sqlite3.connect(self.db)
        try:
            return int(conn.execute("SELECT count(*) FROM requests").fetchone()[0])
        finally:
            conn.close()


@pytest.fixture
def served(tmp_path: Path, upstream_url: str) -> Iterator[Served]:
    config = {
        "server": {"host": "127.0.0.1"},
        "auth": {"required": True},
        "storage": {"url": f"sqlite:///{tmp_path}/gw.db", "flush_interval": 0.05},
        "dashboard": {"enabled": False},
        "observability": {"log_format": "json"},
        "providers": {
            "fake": {"kind": "openai", "base_url": upstream_url, "api_key_env": "FAKE_KEY"}
        },
        "models": [
            {"name": "ok", "routes": [{"provider": "fake", "model": "ok"}]},
            {"name": "broken", "routes": [{"provider": "fake", "model": "error-midstream"}]},
        ],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    log = tmp_path / "gateway.log"
    env = {
        "PATH": "/usr/bin:/bin",
        "FAKE_KEY": UPSTREAM_KEY,
        "HYBRIDINFERENCE_ADMIN_TOKEN": ADMIN,
        "HYBRIDINFERENCE_KEY_SECRET": "key-secret-for-the-log-test",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    command = [sys.executable, "-m", "hybridinference", "serve", "--config", str(path)]
    command += ["--port", str(port), "--workers", "2", "--log-level", "debug"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_serving(url, process, log)
    try:
        yield Served(url, tmp_path / "gw.db", log, metrics_dir)
    finally:
        stop(process)


def requests_total(url: str) -> float:
    text = httpx.get(url + "/metrics", timeout=10).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "hybridinference_requests_total"
    )


def test_two_workers_metrics_and_logs(served: Served) -> None:
    admin = {"Authorization": f"Bearer {ADMIN}"}
    key = httpx.post(served.url + "/admin/keys", json={"name": "w"}, headers=admin).json()["key"]
    auth = {"Authorization": f"Bearer {key}"}
    body = {"model": "ok", "messages": [{"role": "user", "content": "hi"}]}
    broken = {**body, "model": "broken", "stream": True}

    def one(i: int) -> int:
        with httpx.Client(timeout=20) as client:  # a new connection each: both workers serve
            if i % 10 == 9:
                return client.post(
                    served.url + "/v1/chat/completions", json=broken, headers=auth
                ).status_code
            if i % 10 == 8:
                wrong = {"Authorization": f"Bearer {UPSTREAM_KEY}"}  # a secret in the wrong place
                return client.post(
                    served.url + "/v1/chat/completions", json=body, headers=wrong
                ).status_code
            return client.post(
                served.url + "/v1/chat/completions", json=body, headers=auth
            ).status_code

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(one, range(40)))
    assert statuses.count(200) == 36 and statuses.count(401) == 4
    assert (
        httpx.get(served.url + "/admin/keys", headers={"Authorization": "Bearer nope"}).status_code
        == 401
    )

    deadline = time.monotonic() + 20
    while served.rows() < 40 and time.monotonic() < deadline:
        time.sleep(0.1)
    rows = served.rows()
    assert rows >= 40
    scraped = {requests_total(served.url) for _ in range(6)}  # several workers answer
    assert scraped == {float(rows)}
    pids = {p.stem.rsplit("_", 1)[1] for p in served.metrics_dir.glob("counter_*.db")}
    assert len(pids) >= 2  # both workers wrote their own series

    time.sleep(0.5)
    text = served.log.read_text()
    for secret in (UPSTREAM_KEY, ADMIN, key):
        assert secret not in text
    entries = [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert len(entries) >= 5
    assert all({"ts", "level", "logger", "msg"} <= set(e) for e in entries)
    assert any(e.get("request_id") and e["level"] == "warning" for e in entries)
