"""The dashboard server over plain HTTP (no browser): sign-in and its cookie, CSRF and
origin checks, what each role may reach through /api, the request log endpoints it uses,
and serving it from the ``serve`` command (on, off, with several workers)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from hybridinference.config import parse_config
from hybridinference.dashboard.runner import gateway_url, start_dashboard
from hybridinference.dashboard.sessions import SignInThrottle
from hybridinference.schemas.records import RequestRecord
from tests.conftest import ADMIN_TOKEN, GatewayFactory
from tests.e2e.dashboard_harness import RunningDashboard, run_dashboard
from tests.e2e.helpers import HI, config_with, sdk
from tests.fakes.servers import RunningGateway

pytestmark = pytest.mark.timeout(90)
SERVE = (sys.executable, "-m", "hybridinference", "serve")


@pytest.fixture
def gateway(make_gateway: GatewayFactory, upstream_url: str, tmp_path: Path) -> RunningGateway:
    config = config_with(upstream_url, tmp_path, "status-500", auth={"required": True})
    return make_gateway(config)


@pytest.fixture
def dashboard(gateway: RunningGateway) -> Iterator[RunningDashboard]:
    running = run_dashboard(gateway.url)
    yield running
    running.stop()


def admin(gateway: RunningGateway) -> httpx.Client:
    return httpx.Client(
        base_url=gateway.url, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
    )


def new_key(gateway: RunningGateway, name: str) -> dict[str, Any]:
    response = admin(gateway).post("/admin/keys", json={"name": name})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def signed_in(dashboard: RunningDashboard, token: str) -> tuple[httpx.Client, dict[str, Any]]:
    """A client carrying the session cookie (sent by hand: httpx, unlike a browser, keeps
    Secure cookies to https even on loopback)."""
    response = httpx.post(dashboard.url + "/session", json={"token": token}, timeout=10)
    assert response.status_code == 200, response.text
    cookie = response.headers["set-cookie"].split(";", 1)[0]
    client = httpx.Client(base_url=dashboard.url, timeout=10, headers={"cookie": cookie})
    return client, response.json()


def test_operator_sign_in_sets_a_locked_down_cookie(dashboard: RunningDashboard) -> None:
    assert httpx.get(dashboard.url + "/session").json() == {"role": None}
    client, body = signed_in(dashboard, ADMIN_TOKEN)
    response = client.post("/session", json={"token": ADMIN_TOKEN})
    assert client.get("/session").json()["role"] == "operator"
    assert body["role"] == "operator" and len(body["csrf"]) >= 32
    assert "GET /admin/requests" in body["endpoints"]
    assert ADMIN_TOKEN not in response.text
    cookie = response.headers["set-cookie"].lower()
    for flag in ("httponly", "secure", "samesite=strict", "path=/"):
        assert flag in cookie, cookie
    assert ADMIN_TOKEN.lower() not in cookie
    page = client.get("/")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert client.get("/api/admin/keys").headers["cache-control"] == "no-store"


def test_wrong_token_is_refused_then_throttled(dashboard: RunningDashboard) -> None:
    client = httpx.Client(base_url=dashboard.url, timeout=10)
    response = client.post("/session", json={"token": "not-a-token"})
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert client.get("/api/admin/keys").status_code == 401
    for _ in range(9):
        assert client.post("/session", json={"token": "guess"}).status_code == 401
    refused = client.post("/session", json={"token": ADMIN_TOKEN})  # even the right one
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 61


def test_without_auth_only_the_admin_token_signs_in(make_gateway: GatewayFactory) -> None:
    open_gateway = make_gateway()  # auth.required: false — every request is anonymous
    running = run_dashboard(open_gateway.url)
    try:
        guess = httpx.post(running.url + "/session", json={"token": "anything"}, timeout=10)
        assert guess.status_code == 401  # not waved through as an anonymous "key holder"
        _, session = signed_in(running, ADMIN_TOKEN)
        assert session["role"] == "operator"
    finally:
        running.stop()


def test_throttle_forgets_failures_after_its_window() -> None:
    now = [1000.0]
    throttle = SignInThrottle(clock=lambda: now[0], limit=3, window=60)
    for _ in range(3):
        assert throttle.retry_after("a") is None
        throttle.failed("a")
    assert throttle.retry_after("a") == 60
    assert throttle.retry_after("b") is None  # per client
    now[0] += 59.5
    assert throttle.retry_after("a") == pytest.approx(0.5)
    now[0] += 1
    assert throttle.retry_after("a") is None


def test_changes_need_the_csrf_token_and_same_origin(dashboard: RunningDashboard) -> None:
    client, session = signed_in(dashboard, ADMIN_TOKEN)
    assert client.post("/api/admin/keys", json={"name": "x"}).status_code == 403
    wrong = client.post("/api/admin/keys", json={"name": "x"}, headers={"x-csrf-token": "nope"})
    assert wrong.status_code == 403
    cross = client.post(
        "/api/admin/keys",
        json={"name": "x"},
        headers={"x-csrf-token": session["csrf"], "origin": "https://evil.example"},
    )
    assert cross.status_code == 403
    ok = client.post(
        "/api/admin/keys", json={"name": "x"}, headers={"x-csrf-token": session["csrf"]}
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["key"].startswith("hi-")
    foreign_sign_in = httpx.post(
        dashboard.url + "/session",
        json={"token": ADMIN_TOKEN},
        headers={"origin": "https://evil.example"},
    )
    assert foreign_sign_in.status_code == 403
    behind_proxy = httpx.post(  # nginx passes Host without the port the browser used
        dashboard.url + "/session",
        json={"token": ADMIN_TOKEN},
        headers={"origin": "https://127.0.0.1:8443"},
    )
    assert behind_proxy.status_code == 200
    assert client.delete("/session").status_code == 403  # sign-out is a change too
    assert client.delete("/session", headers={"x-csrf-token": session["csrf"]}).status_code == 204
    assert client.get("/api/admin/keys").status_code == 401


def test_key_holder_reaches_only_their_own_data(
    gateway: RunningGateway, dashboard: RunningDashboard
) -> None:
    mine, theirs = new_key(gateway, "mine"), new_key(gateway, "theirs")
    sdk(gateway, mine["key"]).chat.completions.create(model="ok", messages=HI)
    for _ in range(2):
        sdk(gateway, theirs["key"]).chat.completions.create(model="demo", messages=HI)
    gateway.wait_rows(3)
    client, session = signed_in(dashboard, mine["key"])
    assert session["role"] == "key"
    assert not any(e.split(" ")[1].startswith("/admin") for e in session["endpoints"])
    for path in ("/api/admin/keys", "/api/admin/requests", "/api/admin/usage", "/api/health"):
        assert client.get(path).status_code == 403, path
    rows = client.get("/api/v1/usage/requests", params={"key_id": theirs["id"]}).json()
    assert [r["key_id"] for r in rows["data"]] == [mine["id"]]
    their_id = gateway.rows("key_id = ?", (theirs["id"],))[0]["request_id"]
    assert client.get(f"/api/v1/usage/requests/{their_id}").status_code == 404
    usage = client.get("/api/v1/usage", params={"key_id": theirs["id"], "bucket": "1d"}).json()
    assert sum(row["requests"] for row in usage["data"]) == 1
    headers = {"x-csrf-token": session["csrf"]}
    assert client.delete(f"/api/admin/keys/{theirs['id']}", headers=headers).status_code == 403
    assert admin(gateway).get("/admin/keys").json()["data"][1]["active"] is True


def test_revoked_key_ends_its_session(gateway: RunningGateway, dashboard: RunningDashboard) -> None:
    key = new_key(gateway, "short-lived")
    client, _ = signed_in(dashboard, key["key"])
    assert client.get("/api/v1/models").status_code == 200
    assert admin(gateway).delete(f"/admin/keys/{key['id']}").status_code == 200
    assert client.get("/api/v1/models").status_code == 401
    assert client.get("/session").json() == {"role": None}


def test_request_log_filters_and_pages(gateway: RunningGateway) -> None:
    key = new_key(gateway, "traffic")
    client = sdk(gateway, key["key"])
    for _ in range(3):
        client.chat.completions.create(model="ok", messages=HI)
    client.chat.completions.create(model="demo", messages=HI)
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model="status-500", messages=HI)
    rows = gateway.wait_rows(5)
    assert len(rows) == 5
    api = admin(gateway)
    everything = api.get("/admin/requests").json()
    assert everything["total"] == 5
    assert [r["request_id"] for r in everything["data"]] == [
        r["request_id"] for r in reversed(rows)
    ]
    assert api.get("/admin/requests", params={"model": "ok"}).json()["total"] == 3
    assert api.get("/admin/requests", params={"provider": "demo"}).json()["total"] == 1
    failed = api.get("/admin/requests", params={"status": "error"}).json()
    assert [r["model"] for r in failed["data"]] == ["status-500"]
    assert failed["data"][0]["attempts"][0]["route"] == "fake/status-500"
    page = api.get("/admin/requests", params={"limit": 2, "offset": 2}).json()
    assert page["has_more"] is True and len(page["data"]) == 2
    assert page["data"][0]["request_id"] == everything["data"][2]["request_id"]
    one = api.get(f"/admin/requests/{rows[0]['request_id']}").json()
    assert one["route"] == "fake/ok" and one["provider"] == "fake"
    assert api.get("/admin/requests", params={"status": "maybe"}).status_code == 400
    assert httpx.get(gateway.url + "/admin/requests").status_code == 401


def synthetic(index: int, created_at: float, model: str) -> RequestRecord:
    return RequestRecord(
        request_id=f"synthetic-{index:05d}",
        created_at=created_at,
        endpoint="chat.completions",
        key_id=None,
        model=model,
        route="demo/demo-1",
        status=200,
        error_type=None,
        latency_ms=5.0,
        ttft_ms=2.0,
        prompt_tokens=1,
        completion_tokens=1,
        total_tokens=2,
        cost=0.0,
        stream=False,
    )


def test_request_log_reads_past_the_first_scan(gateway: RunningGateway) -> None:
    """Over 500 rows: pages reach further back while the ``since`` window is not covered."""
    now = time.time()
    for i in range(1200):  # one row a minute, newest first; every third is "old-model"
        record = synthetic(i, now - 60 * i, "old-model" if i % 3 == 0 else "demo")
        gateway.state.writer.submit(record)
    gateway.wait_rows(1200)
    api = admin(gateway)
    day = api.get("/admin/requests", params={"since": now - 86_400, "model": "old-model"}).json()
    assert (day["total"], day["truncated"]) == (400, False)  # all 1200 rows read
    hour = api.get("/admin/requests", params={"since": now - 3600 + 1, "limit": 1000}).json()
    assert (hour["total"], hour["truncated"]) == (60, False)
    oldest = api.get("/admin/requests/synthetic-01199").json()
    assert oldest["model"] == "demo"


def test_serve_starts_and_stops_the_dashboard(gateway: RunningGateway, tmp_path: Path) -> None:
    base = {"storage": {"url": f"sqlite:///{tmp_path}/x.db"}}
    off = parse_config({**base, "dashboard": {"enabled": False}}, {}, "off")
    assert start_dashboard(off, {}) is None
    on = parse_config({**base, "dashboard": {"port": 0, "gateway_url": gateway.url}}, {}, "on")
    running = start_dashboard(on, {}, log_level="warning")
    assert running is not None
    try:
        page = httpx.get(f"http://127.0.0.1:{running.port}/", timeout=10)
        assert page.status_code == 200 and "HybridInference" in page.text
    finally:
        running.stop()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{running.port}/", timeout=2)
    wildcard = parse_config({**base, "server": {"host": "0.0.0.0", "port": 9000}}, {}, "w")
    assert gateway_url(wildcard) == "http://127.0.0.1:9000"
    assert gateway_url(wildcard, "::", 81) == "http://[::1]:81"


def free_ports(count: int) -> list[int]:
    """Distinct free ports (all held open while picking, so none is handed out twice)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def test_serve_with_workers_binds_the_dashboard_once(tmp_path: Path) -> None:
    gateway_port, dashboard_port = free_ports(2)
    config = {
        "server": {"port": gateway_port},
        "storage": {"url": f"sqlite:///{tmp_path}/gw.db"},
        "dashboard": {"port": dashboard_port},
        "providers": {"demo": {"kind": "demo"}},
        "models": [{"name": "demo", "routes": [{"provider": "demo", "model": "demo-1"}]}],
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "HYBRIDINFERENCE_ADMIN_TOKEN": ADMIN_TOKEN}
    process = subprocess.Popen(
        [*SERVE, "--config", str(path), "--workers", "2", "--log-level", "warning"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout and process.stdout.read()
            try:
                health = httpx.get(f"http://127.0.0.1:{gateway_port}/health", timeout=2)
                signed = httpx.post(
                    f"http://127.0.0.1:{dashboard_port}/session",
                    json={"token": ADMIN_TOKEN},
                    timeout=5,
                )
                if health.status_code == 200 and signed.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.2)
        assert signed.json()["role"] == "operator"
    finally:
        process.send_signal(signal.SIGINT)
        output = process.communicate(timeout=30)[0].decode()
    assert "could not listen" not in output, output
    assert "address already in use" not in output.lower(), output
