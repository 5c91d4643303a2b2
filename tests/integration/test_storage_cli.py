"""The storage commands as a user runs them: ``db upgrade`` (SQLite and PostgreSQL),
``keys create/get/update`` with limits and budgets, ``logs export`` (CSV and JSONL, a
time range), and ``migrate_on_serve: false`` refusing an out-of-date database."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from hybridinference.cli import main
from hybridinference.config import parse_config
from hybridinference.errors import ConfigError
from hybridinference.storage import open_store
from hybridinference.storage.migrations import LATEST
from hybridinference.storage.runtime import prepare_store
from tests.conftest import KEY_SECRET
from tests.fakes.postgres import postgres_schema, schema_url
from tests.integration.test_storage import T0, record


def write_config(tmp_path: Path, **storage: Any) -> Path:
    path = tmp_path / "gateway.yaml"
    config = {
        "storage": {"url": f"sqlite:///{tmp_path}/gw.db", **storage},
        "providers": {"demo": {"kind": "demo"}},
        "models": [{"name": "demo", "routes": [{"provider": "demo", "model": "demo-1"}]}],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def cli(*args: str) -> Any:
    result = CliRunner().invoke(
        main, list(args), env={"HYBRIDINFERENCE_KEY_SECRET": KEY_SECRET}, catch_exceptions=False
    )
    return result


def test_db_upgrade_is_idempotent_on_both_backends(tmp_path: Path) -> None:
    sqlite_config = write_config(tmp_path)
    first = cli("db", "upgrade", "--config", str(sqlite_config))
    assert first.exit_code == 0 and "applied: 1, 2, 3" in first.output
    again = cli("db", "upgrade", "--config", str(sqlite_config))
    assert "none (already current)" in again.output
    with postgres_schema() as schema:
        pg_config = write_config(tmp_path, url=schema_url(schema))
        assert f"schema version {LATEST}" in cli("db", "upgrade", "--config", str(pg_config)).output
        assert "already current" in cli("db", "upgrade", "--config", str(pg_config)).output


def test_keys_with_limits_from_the_command_line(tmp_path: Path) -> None:
    config = str(write_config(tmp_path))
    created = cli(
        "keys", "create", "--config", config, "--name", "batch", "--owner", "data-team",
        "--rpm", "120", "--daily-budget", "2.5", "--model", "demo",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    key = json.loads(created.stdout)
    assert (key["owner"], key["rpm_limit"], key["daily_budget"]) == ("data-team", 120, 2.5)
    assert key["key"].startswith("hi-")
    updated = cli(
        "keys", "update", key["id"], "--config", config, "--tpm", "5000", "--clear",
        "rpm_limit", "--all-models",
    )  # fmt: skip
    body = json.loads(updated.stdout)
    assert (body["rpm_limit"], body["tpm_limit"], body["allowed_models"]) == (None, 5000, None)
    shown = json.loads(cli("keys", "get", key["id"], "--config", config).stdout)
    assert shown["spend"]["month"] == {"cost": 0.0, "tokens": 0, "requests": 0}
    refused = cli("keys", "update", key["id"], "--config", config, "--clear", "key_hash")
    assert refused.exit_code == 2 and "not editable: key_hash" in refused.output
    assert cli("keys", "get", "key_nope", "--config", config).exit_code == 1


def test_logs_export_csv_and_jsonl_for_a_time_range(tmp_path: Path) -> None:
    config = str(write_config(tmp_path))

    async def seed() -> None:
        store = open_store(f"sqlite:///{tmp_path}/gw.db")
        await store.migrate()
        await store.write_requests([record(n) for n in range(6)])
        await store.aclose()

    asyncio.run(seed())
    since, until = str(T0 + 1), str(T0 + 4)
    out = tmp_path / "rows.jsonl"
    done = cli("logs", "export", "--config", config, "--since", since, "--until", until,
               "-o", str(out))  # fmt: skip
    assert done.exit_code == 0 and "exported 3 rows" in done.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["request_id"] for r in lines] == ["req-0001", "req-0002", "req-0003"]
    assert lines[0]["attempts"][0]["route"] == "fake/m1"
    as_csv = cli("logs", "export", "--config", config, "--format", "csv", "--since",
                 "1970-01-01T00:00:00Z", "--until", str(T0 + 2))  # fmt: skip
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["request_id"] for r in table] == ["req-0000", "req-0001"]
    assert table[1]["total_tokens"] == "7"
    bad = cli("logs", "export", "--config", config, "--since", "yesterday-ish")
    assert bad.exit_code == 2


def test_a_gateway_that_must_not_migrate_refuses_an_old_schema(tmp_path: Path) -> None:
    data = yaml.safe_load(write_config(tmp_path, migrate_on_serve=False).read_text())
    parsed = parse_config(data, {}, "test")
    with pytest.raises(ConfigError, match="db upgrade"):
        asyncio.run(prepare_store(parsed.storage))
    refused = cli("keys", "list", "--config", str(tmp_path / "gateway.yaml"))
    assert refused.exit_code == 2 and "run `hybridinference db upgrade`" in refused.output
    cli("db", "upgrade", "--config", str(tmp_path / "gateway.yaml"))

    async def current() -> int:
        store = await prepare_store(parsed.storage)
        try:
            return await store.schema_version()
        finally:
            await store.aclose()

    assert asyncio.run(current()) == LATEST
