"""Live configuration from the command line and the override store on both backends:
``overrides set/list/clear/audit`` against SQLite and PostgreSQL (each change and its
audit entry), refusals naming the problem, ``config reload`` against a running gateway,
and SIGHUP making a single-process ``serve`` reload its file."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner

from hybridinference.cli import main
from tests.conftest import ADMIN_TOKEN, KEY_SECRET
from tests.fakes.postgres import postgres_schema, schema_url
from tests.fakes.processes import stop, wait_serving
from tests.integration.test_metrics_workers import free_port

ENV = {"HYBRIDINFERENCE_KEY_SECRET": KEY_SECRET, "HYBRIDINFERENCE_ADMIN_TOKEN": ADMIN_TOKEN}


def write_config(path: Path, url: str, **extra: Any) -> Path:
    config = {
        "storage": {"url": url},
        "auth": {"required": False},
        "dashboard": {"enabled": False},
        "providers": {"demo": {"kind": "demo"}, "spare": {"kind": "demo"}},
        "models": [
            {
                "name": "chat",
                "routes": [
                    {"provider": "demo", "model": "demo-1"},
                    {"provider": "spare", "model": "demo-2"},
                ],
            }
        ],
        **extra,
    }
    path.write_text(yaml.safe_dump(config))
    return path


def cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), env=ENV, catch_exceptions=False)


def run_overrides(config: str) -> None:
    set_ = cli(
        "overrides",
        "set",
        "chat",
        "enabled",
        "false",
        "--route",
        "spare/demo-2",
        "--config",
        config,
        "--actor",
        "carol",
        "--reason",
        "drain",
    )
    assert set_.exit_code == 0, set_.output
    assert json.loads(set_.output)["previous"] is None
    weight = cli(
        "overrides", "set", "chat", "weight", "2.5", "--route", "demo/demo-1", "--config", config
    )
    assert weight.exit_code == 0 and json.loads(weight.output)["value"] == 2.5
    strategy = cli("overrides", "set", "chat", "strategy", "cost", "--config", config)
    assert json.loads(strategy.output)["value"] == "cost"
    listed = json.loads(cli("overrides", "list", "--config", config).output)
    assert {(o["field"], json.dumps(o["value"]), o["stale"]) for o in listed} == {
        ("enabled", "false", None),
        ("weight", "2.5", None),
        ("strategy", '"cost"', None),
    }
    bad = cli(
        "overrides",
        "set",
        "--route",
        "demo/demo-1",
        "--config",
        config,
        "--",
        "chat",
        "weight",
        "-1",
    )
    assert bad.exit_code == 2 and "weight: expected a number >= 0" in bad.output
    unknown = cli("overrides", "set", "chat", "pin", "nope/x", "--config", config)
    assert unknown.exit_code == 2 and "'nope/x' is not a route of 'chat'" in unknown.output
    one = cli(
        "overrides", "clear", "chat", "enabled", "--route", "spare/demo-2", "--config", config
    )
    assert one.exit_code == 0 and len(json.loads(one.output)) == 1
    assert (
        cli(
            "overrides", "clear", "chat", "enabled", "--route", "spare/demo-2", "--config", config
        ).exit_code
        == 1
    )
    assert len(json.loads(cli("overrides", "clear", "--all", "--config", config).output)) == 2
    assert json.loads(cli("overrides", "list", "--config", config).output) == []
    audit = json.loads(cli("overrides", "audit", "--config", config).output)
    assert [(e["action"], e["field"]) for e in audit][-3:] == [
        ("set", "strategy"),
        ("set", "weight"),
        ("set", "enabled"),
    ]
    assert audit[-1]["actor"] == "carol" and audit[-1]["reason"] == "drain"
    assert audit[-1]["old"] is None and audit[-1]["new"] is False
    clears = [e for e in audit if e["action"] == "clear"]
    assert len(clears) == 3 and all(e["new"] is None for e in clears)
    assert {e["actor"] for e in clears} == {clears[0]["actor"]}
    assert clears[0]["actor"].startswith("cli:")


def test_overrides_cli_on_sqlite(tmp_path: Path) -> None:
    run_overrides(str(write_config(tmp_path / "gw.yaml", f"sqlite:///{tmp_path}/gw.db")))


def test_overrides_cli_on_postgres(tmp_path: Path) -> None:
    with postgres_schema() as schema:
        run_overrides(str(write_config(tmp_path / "gw.yaml", schema_url(schema))))


@pytest.fixture
def single(tmp_path: Path) -> Any:
    path = write_config(
        tmp_path / "gw.yaml", f"sqlite:///{tmp_path}/gw.db", reload={"watch": False}
    )
    port = free_port()
    log = tmp_path / "serve.log"
    command = [
        sys.executable,
        "-m",
        "hybridinference",
        "serve",
        "--config",
        str(path),
        "--port",
        str(port),
    ]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env={"PATH": "/usr/bin:/bin", **ENV}, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    wait_serving(url, process, log, path="/health")
    yield process, path, url
    stop(process)


def version(url: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    return dict(httpx.get(url + "/admin/config", headers=headers, timeout=10).json())


def test_sighup_and_config_reload_command(single: Any, tmp_path: Path) -> None:
    process, path, url = single
    first = version(url)["version"]
    config = yaml.safe_load(path.read_text())
    config["models"][0]["routes"][1]["weight"] = 4.0
    path.write_text(yaml.safe_dump(config))
    process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while (state := version(url))["version"] == first:
        assert time.monotonic() < deadline, "SIGHUP did not reload"
        time.sleep(0.05)
    assert state["reloads"]["last_source"] == "signal" and process.poll() is None
    config["models"][0]["strategy"] = "nope"
    path.write_text(yaml.safe_dump(config))
    refused = cli("config", "reload", "--config", str(path), "--url", url)
    assert refused.exit_code == 1 and "unknown strategy 'nope'" in refused.output
    config["models"][0]["strategy"] = "cost"
    path.write_text(yaml.safe_dump(config))
    applied = cli("config", "reload", "--config", str(path), "--url", url)
    assert applied.exit_code == 0 and json.loads(applied.output)["status"] == "applied"
    assert version(url)["reloads"] == {**version(url)["reloads"], "applied": 2, "rejected": 1}
