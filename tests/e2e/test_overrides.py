"""Runtime overrides through the admin API: each one applied (routing decisions change),
visible where the dashboard's provider view reads (``/admin/routing``), audited (who,
when, old → new) and cleared; bad overrides refused; an override written to the
database by another process is picked up, and one naming a route the file no longer has
is reported as stale instead of being applied."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_TOKEN, GatewayFactory, gateway_config, route
from tests.e2e.helpers import HI, sdk
from tests.fakes.servers import RunningGateway

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
A, B = "fake/ok-a", "fake/ok-b"


@pytest.fixture
def gateway(make_gateway: GatewayFactory, upstream_url: str, tmp_path: Path) -> RunningGateway:
    config = gateway_config(upstream_url, tmp_path, reload={"overrides_interval": 0.1})
    config["models"].append(
        {
            "name": "mix",
            "aliases": ["mix-alias"],
            "routes": [route("fake", "ok-a"), route("fake", "ok-b")],
        }
    )
    return make_gateway(config=config)


def served_by(gateway: RunningGateway, count: int = 12, model: str = "mix") -> Counter[str]:
    client = sdk(gateway)
    seen: Counter[str] = Counter()
    for _ in range(count):
        raw = client.chat.completions.with_raw_response.create(model=model, messages=HI)
        seen[raw.headers["x-hybridinference-route"]] += 1
    return seen


def put(gateway: RunningGateway, **body: Any) -> httpx.Response:
    return httpx.put(gateway.url + "/admin/overrides", json=body, headers=ADMIN, timeout=10)


def clear(gateway: RunningGateway, **params: str) -> httpx.Response:
    return httpx.delete(gateway.url + "/admin/overrides", params=params, headers=ADMIN, timeout=10)


def routing(gateway: RunningGateway) -> dict[str, Any]:
    body = httpx.get(gateway.url + "/admin/routing", headers=ADMIN, timeout=10).json()
    return next(m for m in body["models"] if m["model"] == "mix")


def audit(gateway: RunningGateway) -> list[dict[str, Any]]:
    response = httpx.get(gateway.url + "/admin/overrides/audit", headers=ADMIN, timeout=10)
    return list(response.json()["data"])


def enabled(gateway: RunningGateway) -> dict[str, bool]:
    return {r["name"]: r["enabled"] for r in routing(gateway)["routes"]}


def test_disable_a_route_then_clear_it(gateway: RunningGateway) -> None:
    assert set(served_by(gateway, 16)) == {A, B}
    response = put(
        gateway,
        model="mix",
        route=B,
        field="enabled",
        value=False,
        actor="alice",
        reason="maintenance",
    )
    assert response.status_code == 200, response.text
    assert response.json()["previous"] is None
    assert served_by(gateway) == Counter({A: 12})
    assert enabled(gateway) == {A: True, B: False}
    entry = audit(gateway)[0]
    assert (entry["actor"], entry["action"], entry["route"], entry["field"]) == (
        "alice",
        "set",
        B,
        "enabled",
    )
    assert entry["old"] is None and entry["new"] is False and entry["reason"] == "maintenance"
    assert entry["at"] > 0
    listed = httpx.get(gateway.url + "/admin/overrides", headers=ADMIN, timeout=10).json()
    assert [(o["route"], o["value"], o["stale"]) for o in listed["data"]] == [(B, False, None)]

    assert clear(gateway, model="mix", route=B, field="enabled").status_code == 200
    assert enabled(gateway) == {A: True, B: True}
    assert set(served_by(gateway, 16)) == {A, B}
    entry = audit(gateway)[0]
    assert (entry["action"], entry["old"], entry["new"]) == ("clear", False, None)
    assert entry["actor"].startswith("admin@127.0.0.1")
    assert clear(gateway, model="mix", route=B, field="enabled").status_code == 404


def test_weight_pin_and_strategy(gateway: RunningGateway) -> None:
    assert put(gateway, model="mix", route=A, field="weight", value=0).status_code == 200
    assert served_by(gateway) == Counter({B: 12})
    assert {r["name"]: r["weight"] for r in routing(gateway)["routes"]} == {A: 0.0, B: 1.0}
    again = put(gateway, model="mix", route=A, field="weight", value=0.5)
    assert again.json()["previous"] == 0.0
    assert [(e["old"], e["new"]) for e in audit(gateway)[:2]] == [(0.0, 0.5), (None, 0.0)]

    assert put(gateway, model="mix", field="pin", value=A).status_code == 200
    assert served_by(gateway) == Counter({A: 12})
    assert enabled(gateway) == {A: True, B: False}
    assert clear(gateway, model="mix", field="pin").status_code == 200

    assert put(gateway, model="mix", field="strategy", value="round_robin").status_code == 200
    assert routing(gateway)["strategy"] == "round_robin"
    assert served_by(gateway, 6) == Counter({A: 3, B: 3})  # rotates, whatever the weights
    models = sdk(gateway).models.with_raw_response.retrieve("mix").http_response.json()
    assert models["routing"]["strategy"] == "round_robin"

    assert clear(gateway, all="true").json()["cleared"]
    assert routing(gateway)["strategy"] == "weighted"
    assert {r["name"]: r["weight"] for r in routing(gateway)["routes"]} == {A: 1.0, B: 1.0}


def test_visibility(gateway: RunningGateway) -> None:
    client = sdk(gateway)
    assert "mix" in {m.id for m in client.models.list()}
    unlisted = put(gateway, model="mix-alias", field="visibility", value="unlisted")
    assert unlisted.status_code == 200 and unlisted.json()["model"] == "mix"  # by its name
    assert "mix" not in {m.id for m in client.models.list()}
    assert served_by(gateway, 2, model="mix-alias").total() == 2  # still served
    assert put(gateway, model="mix", field="visibility", value="hidden").status_code == 200
    response = httpx.post(
        gateway.url + "/v1/chat/completions", json={"model": "mix", "messages": HI}, timeout=10
    )
    assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"
    assert routing(gateway)["visibility"] == "hidden"
    assert clear(gateway, model="mix", field="visibility").status_code == 200
    assert "mix" in {m.id for m in client.models.list()}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "mix", "route": "fake/nope", "field": "enabled", "value": False}, "model"),
        ({"model": "nope", "field": "strategy", "value": "cost"}, "model"),
        ({"model": "mix", "field": "colour", "value": "red"}, "field"),
        ({"model": "mix", "route": A, "field": "weight", "value": -1}, "value"),
        ({"model": "mix", "field": "strategy", "value": "fastest"}, "value"),
        ({"model": "mix", "field": "weight", "value": 2}, "route"),
        ({"model": "mix", "field": "pin", "value": "fake/nope"}, "model"),
    ],
)
def test_bad_overrides_are_refused(
    gateway: RunningGateway, body: dict[str, Any], param: str
) -> None:
    response = put(gateway, **body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert audit(gateway) == []


def test_admin_token_required(gateway: RunningGateway) -> None:
    response = httpx.put(gateway.url + "/admin/overrides", json={}, timeout=10)
    assert response.status_code == 401
    assert httpx.get(gateway.url + "/admin/config", timeout=10).status_code == 401


def test_written_by_another_process_applied_and_stale_reported(gateway: RunningGateway) -> None:
    conn = sqlite3.connect(gateway.db_path)
    with conn:
        for route_name, value in ((B, "false"), ("fake/removed", "false")):
            conn.execute(
                "INSERT INTO config_overrides VALUES (?, ?, 'enabled', ?, 'cli:bob', NULL, ?)",
                ("mix", route_name, value, time.time()),
            )
    conn.close()
    deadline = time.monotonic() + 10
    while enabled(gateway).get(B) is not False:
        assert time.monotonic() < deadline, "the override was not picked up"
        time.sleep(0.05)
    assert served_by(gateway, 4) == Counter({A: 4})
    listed = httpx.get(gateway.url + "/admin/overrides", headers=ADMIN, timeout=10).json()
    stale = {o["route"]: o["stale"] for o in listed["data"]}
    assert stale[B] is None
    assert stale["fake/removed"] == "route 'fake/removed' is not a route of 'mix'"
    assert listed["stale"] == 1
    config = httpx.get(gateway.url + "/admin/config", headers=ADMIN, timeout=10).json()
    assert config["overrides"] == {"active": 1, "stale": 1}
    metrics = httpx.get(gateway.url + "/metrics", timeout=10).text
    assert "hybridinference_config_overrides_stale 1.0" in metrics
