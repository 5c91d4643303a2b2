"""The CLI as a user runs it (``python -m hybridinference`` in a subprocess): version,
check-config, and the key lifecycle against a temporary SQLite database, with the keys
it makes accepted and then refused by a running gateway on the same database."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from hybridinference import __version__
from tests.conftest import KEY_SECRET
from tests.e2e.helpers import start_gateway
from tests.fakes.servers import RunningGateway

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "HYBRIDINFERENCE_KEY_SECRET": KEY_SECRET,
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "hybridinference", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def config_data(tmp_path: Path) -> dict[str, Any]:
    return {
        "auth": {"required": True, "refresh_seconds": 0.1},
        "storage": {"url": f"sqlite:///{tmp_path}/cli.db", "flush_interval": 0.05},
        "providers": {"demo": {"kind": "demo", "ttft_ms": 0, "tokens_per_second": 5000}},
        "models": [
            {"name": "demo", "routes": [{"provider": "demo", "model": "demo-1"}]},
            {"name": "other", "routes": [{"provider": "demo", "model": "demo-2"}]},
        ],
    }


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config_data(tmp_path)))
    return path


def test_version() -> None:
    result = run_cli("version")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == __version__


def test_check_config_accepts_the_quickstart() -> None:
    result = run_cli("check-config", "--config", "config/quickstart.yaml")
    assert result.returncode == 0, result.stderr
    assert "config/quickstart.yaml" in result.stdout
    assert "Traceback" not in result.stderr


def test_check_config_rejects_a_broken_file_naming_file_and_field(tmp_path: Path) -> None:
    data = config_data(tmp_path)
    data["timeouts"] = {"conect": 3}
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data))
    result = run_cli("check-config", "--config", str(path))
    assert result.returncode != 0
    assert str(path) in result.stderr
    assert "timeouts.conect" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_check_config_rejects_a_missing_file(tmp_path: Path) -> None:
    result = run_cli("check-config", "--config", str(tmp_path / "nope.yaml"))
    assert result.returncode != 0
    assert "nope.yaml" in result.stderr
    assert "Traceback" not in result.stderr


def test_config_path_from_the_environment(config_file: Path) -> None:
    result = run_cli("check-config", env={"HYBRIDINFERENCE_CONFIG": str(config_file)})
    assert result.returncode == 0, result.stderr
    assert str(config_file) in result.stdout


@pytest.fixture
def gateway_on_cli_db(config_file: Path, tmp_path: Path) -> Iterator[RunningGateway]:
    running = start_gateway(config_data(tmp_path))
    yield running
    running.stop()


def _status(gateway: RunningGateway, key: str, model: str = "demo") -> int:
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    return response.status_code


def test_keys_create_list_revoke(config_file: Path, gateway_on_cli_db: RunningGateway) -> None:
    created = run_cli(
        "keys", "create", "--config", str(config_file), "--name", "alice", "--model", "demo"
    )
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    secret = key["key"]
    assert secret.startswith(key["prefix"])
    assert key["name"] == "alice" and key["allowed_models"] == ["demo"] and key["active"]
    assert "cannot be shown again" in created.stderr

    listed = run_cli("keys", "list", "--config", str(config_file))
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert [(r["id"], r["name"], r["active"]) for r in rows] == [(key["id"], "alice", True)]
    assert secret not in listed.stdout  # shown once, never again
    stored = (config_file.parent / "cli.db").read_bytes()
    assert secret.encode() not in stored  # only the HMAC is kept

    # the running gateway accepts the new key at once, for its allowed model only
    assert _status(gateway_on_cli_db, secret) == 200
    assert _status(gateway_on_cli_db, secret, model="other") == 404

    revoked = run_cli("keys", "revoke", "--config", str(config_file), key["id"])
    assert revoked.returncode == 0, revoked.stderr
    assert key["id"] in revoked.stdout
    conn = sqlite3.connect(config_file.parent / "cli.db")
    try:
        (revoked_at,) = conn.execute(
            "SELECT revoked_at FROM api_keys WHERE id = ?", (key["id"],)
        ).fetchone()
    finally:
        conn.close()
    assert revoked_at is not None

    deadline = time.monotonic() + 10  # the gateway re-reads keys every refresh_seconds
    while _status(gateway_on_cli_db, secret) != 401 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _status(gateway_on_cli_db, secret) == 401

    again = run_cli("keys", "revoke", "--config", str(config_file), key["id"])
    assert again.returncode != 0
    assert key["id"] in again.stderr
