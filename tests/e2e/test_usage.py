"""Keys with owner, limits and budgets through the admin API, usage analytics at
``/admin/usage`` and ``/v1/usage``, and key changes reaching a second gateway process
that shares the database — on SQLite and on PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from hybridinference.errors import InvalidRequest
from hybridinference.gateway.usage import parse_bucket, parse_query
from tests.conftest import ADMIN_TOKEN
from tests.e2e.helpers import HI, config_with, sdk, start_gateway
from tests.fakes.postgres import postgres_schema, schema_url
from tests.fakes.servers import RunningGateway

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
OK_COST = (7 * 1.0 + 6 * 2.0) / 1_000_000  # the fake's usage at the "ok" model's prices


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    if request.param == "sqlite":
        yield {"url": f"sqlite:///{tmp_path}/gw.db", "flush_interval": 0.02}
        return
    with postgres_schema() as schema:
        yield {
            "url": schema_url(schema),
            "flush_interval": 0.02,
            "data_dir": str(tmp_path / "data"),
        }


@pytest.fixture
def gateways(
    upstream_url: str, tmp_path: Path, storage: dict[str, Any]
) -> Iterator[tuple[RunningGateway, RunningGateway]]:
    config = config_with(
        upstream_url,
        tmp_path,
        "status-500-usage",
        auth={"required": True, "refresh_seconds": 0.2},
        storage=storage,
    )
    first = start_gateway(config)
    second = start_gateway(config)
    yield first, second
    first.stop()
    second.stop()


def eventually(check: Callable[[], Any], limit: float = 10) -> Any:
    deadline = time.monotonic() + limit
    while True:
        try:
            return check()
        except (AssertionError, openai.AuthenticationError, pytest.fail.Exception):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def create_key(gateway: RunningGateway, **fields: Any) -> dict[str, Any]:
    reply = httpx.post(gateway.url + "/admin/keys", json=fields, headers=ADMIN)
    assert reply.status_code == 201, reply.text
    return reply.json()  # type: ignore[no-any-return]


def test_admin_key_lifecycle_with_limits_and_budgets(
    gateways: tuple[RunningGateway, RunningGateway],
) -> None:
    gateway, _ = gateways
    key = create_key(
        gateway, name="ci", owner="team-a", rpm_limit=1000, daily_budget=5, monthly_budget=50.5
    )
    assert (key["owner"], key["rpm_limit"], key["daily_budget"]) == ("team-a", 1000, 5)
    url = f"{gateway.url}/admin/keys/{key['id']}"
    got = httpx.get(url, headers=ADMIN).json()
    assert got["monthly_budget"] == 50.5 and "key" not in got
    assert got["spend"] == {
        "day": {"cost": 0.0, "tokens": 0, "requests": 0},
        "month": {"cost": 0.0, "tokens": 0, "requests": 0},
    }
    patched = httpx.patch(
        url, json={"rpm_limit": None, "tpm_limit": 9000, "allowed_models": ["ok"]}, headers=ADMIN
    )
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert (body["rpm_limit"], body["tpm_limit"], body["allowed_models"]) == (None, 9000, ["ok"])
    assert body["owner"] == "team-a" and body["updated_at"] is not None
    refused = httpx.patch(url, json={"key_hash": "x"}, headers=ADMIN)
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "key_hash"
    assert httpx.patch(url, json={"name": None}, headers=ADMIN).status_code == 400
    missing = httpx.get(f"{gateway.url}/admin/keys/key_nope", headers=ADMIN)
    assert missing.status_code == 404
    assert httpx.get(url).status_code == 401
    assert httpx.delete(url, headers=ADMIN).json() == {"id": key["id"], "revoked": True}
    assert httpx.get(url, headers=ADMIN).json()["active"] is False


def test_usage_per_key_and_model_for_admin_and_key_holder(
    gateways: tuple[RunningGateway, RunningGateway],
) -> None:
    gateway, _ = gateways
    mine, other = create_key(gateway, name="mine"), create_key(gateway, name="other")
    client = sdk(gateway, api_key=mine["key"])
    for _ in range(3):
        client.chat.completions.create(model="ok", messages=HI)  # type: ignore[arg-type]
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="status-500-usage", messages=HI)  # type: ignore[arg-type]
    sdk(gateway, api_key=other["key"]).chat.completions.create(model="ok", messages=HI)  # type: ignore[arg-type]

    def admin_view() -> dict[str, Any]:
        reply = httpx.get(
            gateway.url + "/admin/usage", params={"group_by": "key,model"}, headers=ADMIN
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["totals"]["requests"] == 5
        return reply.json()  # type: ignore[no-any-return]

    usage = eventually(admin_view)
    assert usage["bucket_seconds"] == 3600 and usage["group_by"] == ["key", "model"]
    by_group = {(r["key"], r["model"]): r for r in usage["data"]}
    ok = by_group[(mine["id"], "ok")]
    assert (ok["requests"], ok["errors"], ok["total_tokens"]) == (3, 0, 39)
    assert ok["cost"] == pytest.approx(3 * OK_COST)
    assert ok["latency_ms_p50"] > 0 and ok["ttft_ms_p99"] >= ok["ttft_ms_p50"] > 0
    failed = by_group[(mine["id"], "status-500-usage")]
    assert (failed["requests"], failed["errors"], failed["error_rate"]) == (1, 1, 1.0)
    assert by_group[(other["id"], "ok")]["requests"] == 1

    def own_view() -> dict[str, Any]:
        reply = httpx.get(
            gateway.url + "/v1/usage",
            params={"bucket": "1d"},
            headers={"Authorization": f"Bearer {mine['key']}"},
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["spend"]["day"]["requests"] == 4  # the key cache reloaded spend
        return reply.json()  # type: ignore[no-any-return]

    own = eventually(own_view)
    assert [r["requests"] for r in own["data"]] == [4]
    assert own["key"]["id"] == mine["id"] and "key_hash" not in own["key"]
    assert own["spend"]["day"]["cost"] == pytest.approx(3 * OK_COST)
    sneaky = httpx.get(
        gateway.url + "/v1/usage",
        params={"key_id": other["id"]},
        headers={"Authorization": f"Bearer {mine['key']}"},
    )
    assert sneaky.json()["totals"]["requests"] == 4  # always scoped to the caller's key
    assert httpx.get(gateway.url + "/admin/usage").status_code == 401
    assert httpx.get(gateway.url + "/v1/usage").status_code == 401
    bad = httpx.get(gateway.url + "/admin/usage", params={"group_by": "colour"}, headers=ADMIN)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "group_by"
    window = httpx.get(
        gateway.url + "/admin/usage",
        params={"start": "2020-01-01T00:00:00Z", "end": "2020-01-02T00:00:00Z"},
        headers=ADMIN,
    )
    assert window.json()["data"] == []


def test_key_changes_reach_another_gateway_process_within_seconds(
    gateways: tuple[RunningGateway, RunningGateway],
) -> None:
    first, second = gateways
    key = create_key(first, name="shared")
    remote = sdk(second, api_key=key["key"])
    eventually(lambda: remote.chat.completions.create(model="demo", messages=HI))  # type: ignore[arg-type]
    httpx.patch(
        f"{first.url}/admin/keys/{key['id']}", json={"allowed_models": ["ok"]}, headers=ADMIN
    )

    def demo_refused() -> None:
        with pytest.raises(openai.APIStatusError) as caught:
            remote.chat.completions.create(model="demo", messages=HI)  # type: ignore[arg-type]
        assert caught.value.status_code in (403, 404)

    eventually(demo_refused)
    httpx.delete(f"{first.url}/admin/keys/{key['id']}", headers=ADMIN)

    def revoked() -> None:
        with pytest.raises(openai.AuthenticationError):
            remote.chat.completions.create(model="ok", messages=HI)  # type: ignore[arg-type]

    eventually(revoked)


@pytest.mark.parametrize(
    ("raw", "seconds"), [(None, 3600), ("300", 300), ("5m", 300), ("2h", 7200), ("1d", 86_400)]
)
def test_bucket_sizes(raw: str | None, seconds: int) -> None:
    assert parse_bucket(raw) == seconds


@pytest.mark.parametrize("raw", ["0", "-5m", "h", "1w", "1.5h"])
def test_bad_bucket_sizes_are_refused(raw: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_bucket(raw)


def test_query_defaults_to_the_last_day_and_refuses_too_many_buckets() -> None:
    query = parse_query({"group_by": "route,endpoint"}, 1_000_000.0, forced_key="key_me")
    assert (query.start, query.end, query.bucket_seconds) == (913_600.0, 1_000_000.0, 3600)
    assert query.group_by == ("route", "endpoint") and query.key_id == "key_me"
    iso = parse_query({"start": "1970-01-02T00:00:00Z", "end": "172800"}, 0, None)
    assert (iso.start, iso.end) == (86_400.0, 172_800.0)
    with pytest.raises(InvalidRequest, match="Too many buckets"):
        parse_query({"start": "0", "end": "1000000", "bucket": "1s"}, 0, None)
    with pytest.raises(InvalidRequest, match="after"):
        parse_query({"start": "10", "end": "5"}, 0, None)
