"""Security boundaries end to end: keys stored only as HMACs, user keys kept out of the
admin API, no model enumeration, no request field or header that can aim the gateway at
another URL (SSRF), secrets absent from logs, errors, /metrics and request-log rows,
stored content redacted, no header or log-line injection, CORS off unless configured."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from hybridinference.config import parse_config
from hybridinference.observability.logging import JsonFormatter, Redactor, secret_values
from tests.conftest import ADMIN_TOKEN, KEY_SECRET, gateway_config, route
from tests.e2e.helpers import HI, UPSTREAM_SECRET, assert_envelope, start_gateway
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.fakes.servers import RunningAiohttp, RunningGateway, run_aiohttp
from tests.reliability.faults import FaultUpstream

ENV = {
    "FAKE_KEY": UPSTREAM_SECRET,
    "HYBRIDINFERENCE_ADMIN_TOKEN": ADMIN_TOKEN,
    "HYBRIDINFERENCE_KEY_SECRET": KEY_SECRET,
}


class Canary:
    """A server no request should ever reach: its address is planted in requests."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.hit)

    async def hit(self, request: web.Request) -> web.Response:
        self.hits.append(request.path)
        return web.json_response({"error": {"message": "canary"}}, status=418)


@pytest.fixture(scope="module")
def canary() -> Iterator[tuple[Canary, RunningAiohttp]]:
    server = Canary()
    running = run_aiohttp(server.app, "canary")
    yield server, running
    running.stop()


@pytest.fixture(scope="module")
def logs() -> Iterator[io.StringIO]:
    """What the gateway process would write: every record through the production JSON
    formatter and redactor (as ``serve`` configures them)."""
    stream = io.StringIO()
    config = parse_config({}, ENV, "x")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(Redactor(secret_values(config, ENV))))
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    saved = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield stream
    root.removeHandler(handler)
    root.setLevel(saved)


@pytest.fixture(scope="module")
def gw(
    fake_openai: tuple[FakeOpenAIUpstream, RunningAiohttp],
    canary: tuple[Canary, RunningAiohttp],
    logs: io.StringIO,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningGateway]:
    faults = run_aiohttp(FaultUpstream().app, "fault-upstream")
    config = gateway_config(fake_openai[1].url + "/v1", tmp_path_factory.mktemp("security"))
    config["auth"] = {"required": True}
    config["storage"]["store_content"] = True
    config["health"] = {"probes": False}
    config["providers"]["careless"] = {
        "kind": "openai",
        "base_url": faults.url + "/v1",
        "api_key_env": "FAKE_KEY",
    }
    config["models"] += [
        {"name": "echo", "routes": [route("careless", "echo")]},
        {"name": "vendor/model-1", "routes": [route("fake", "ok-slash")]},
    ]
    running = start_gateway(config)
    yield running
    running.stop()
    faults.stop()


def admin(gw: RunningGateway, method: str, path: str, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    return httpx.request(method, gw.url + path, headers=headers, timeout=10, **kw)


@pytest.fixture(scope="module")
def user(gw: RunningGateway) -> dict[str, Any]:
    response = admin(gw, "POST", "/admin/keys", json={"name": "user", "allowed_models": None})
    assert response.status_code == 201
    return dict(response.json())


@pytest.fixture(scope="module")
def restricted(gw: RunningGateway) -> dict[str, Any]:
    response = admin(gw, "POST", "/admin/keys", json={"name": "r", "allowed_models": ["ok"]})
    assert response.status_code == 201
    return dict(response.json())


def test_keys_are_stored_as_hmac_and_never_in_clear(
    gw: RunningGateway, user: dict[str, Any]
) -> None:
    with sqlite3.connect(gw.db_path) as db:
        (stored,) = db.execute(
            "SELECT key_hash FROM api_keys WHERE id = ?", (user["id"],)
        ).fetchone()
    expected = hmac.new(KEY_SECRET.encode(), user["key"].encode(), hashlib.sha256).hexdigest()
    assert stored == expected
    assert stored != hashlib.sha256(user["key"].encode()).hexdigest()  # keyed, not a bare hash
    for path in gw.db_path.parent.glob(gw.db_path.name + "*"):  # the database, WAL and journal
        assert user["key"].encode() not in path.read_bytes(), path
    assert user["key"] not in admin(gw, "GET", "/admin/keys").text
    assert user["key"] not in admin(gw, "GET", f"/admin/keys/{user['id']}").text


def admin_routes(gw: RunningGateway) -> list[tuple[str, str]]:
    spec = httpx.get(gw.url + "/openapi.json", timeout=10).json()
    return [
        (method.upper(), path.replace("{key_id}", "key_x").replace("{request_id}", "r"))
        for path, ops in spec["paths"].items()
        if path.startswith("/admin")
        for method in ops
    ]


def test_user_keys_cannot_reach_the_admin_api(gw: RunningGateway, user: dict[str, Any]) -> None:
    routes = admin_routes(gw)
    assert len(routes) >= 6
    for headers in ({"Authorization": f"Bearer {user['key']}"}, {"X-API-Key": user["key"]}):
        for method, path in routes:
            response = httpx.request(
                method, gw.url + path, headers=headers, json={"name": "x"}, timeout=10
            )
            assert_envelope(response, 401, "authentication_error")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"messages": HI}),
        ("/v1/completions", {"prompt": "hi"}),
        ("/v1/embeddings", {"input": "hi"}),
    ],
)
def test_a_forbidden_model_answers_exactly_like_an_unknown_one(
    gw: RunningGateway, restricted: dict[str, Any], path: str, body: dict[str, Any]
) -> None:
    headers = {"Authorization": f"Bearer {restricted['key']}", "X-Request-ID": "same"}

    def ask(model: str) -> httpx.Response:
        return httpx.post(gw.url + path, json={**body, "model": model}, headers=headers)

    forbidden, unknown = ask("tools"), ask("zzzzz")  # "tools" exists; the key may not use it
    assert forbidden.status_code == unknown.status_code == 404
    assert forbidden.text.replace("tools", "M") == unknown.text.replace("zzzzz", "M")
    volatile = {"content-length": "", "date": ""}  # the clock may tick between the two
    assert dict(forbidden.headers) | volatile == dict(unknown.headers) | volatile
    retrieve = httpx.get(gw.url + "/v1/models/tools", headers=headers)
    missing = httpx.get(gw.url + "/v1/models/zzzzz", headers=headers)
    assert retrieve.status_code == missing.status_code == 404
    assert retrieve.text.replace("tools", "M") == missing.text.replace("zzzzz", "M")


def test_no_field_or_header_can_aim_the_gateway_elsewhere(
    gw: RunningGateway,
    user: dict[str, Any],
    upstream: FakeOpenAIUpstream,
    fake_openai: tuple[FakeOpenAIUpstream, RunningAiohttp],
    canary: tuple[Canary, RunningAiohttp],
) -> None:
    target = canary[1].url
    host = target.removeprefix("http://")
    models = [
        target + "/v1",
        f"ok@{host}",
        f"{host}/v1/chat/completions",
        "../../admin/keys",
        "ok/../../../x",
        "ok#@" + host,
        "ok?base_url=" + target,
        "vendor/model-1/../../x",
    ]
    planted = {
        "base_url": target,
        "api_base": target,
        "url": target + "/v1",
        "endpoint": target,
        "provider": {"order": ["fake"], "base_url": target},
    }
    before = len(upstream.log.received)
    auth = {"Authorization": f"Bearer {user['key']}"}
    for model in [*models, "ok", "vendor/model-1"]:
        for headers in (
            {"X-Forwarded-Host": host, "X-Forwarded-Proto": "http", "Forwarded": f"host={host}"},
            {"Host": host, "X-Original-URL": target, "X-Rewrite-URL": "/x"},
        ):
            response = httpx.post(
                gw.url + "/v1/chat/completions",
                json={"model": model, "messages": HI, **planted},
                headers={**auth, **headers},
                timeout=10,
            )
            assert response.status_code in (200, 400, 404), (model, response.text)
    assert canary[0].hits == []
    received = upstream.log.received[before:]
    assert received, "the good models reached the configured upstream"
    assert {r.path for r in received} == {"/v1/chat/completions"}
    configured = fake_openai[1].url.removeprefix("http://")
    assert {r.headers["Host"] for r in received} == {configured}


def test_secrets_stay_out_of_errors_logs_metrics_and_rows(
    gw: RunningGateway, user: dict[str, Any], logs: io.StringIO
) -> None:
    auth = {"Authorization": f"Bearer {user['key']}", "X-Request-ID": "echo-secret"}
    response = httpx.post(
        gw.url + "/v1/chat/completions", json={"model": "echo", "messages": HI}, headers=auth
    )
    assert response.status_code == 400
    near_miss = httpx.get(gw.url + "/admin/keys", headers={"Authorization": "Bearer test-admin"})
    assert near_miss.status_code == 401
    metrics = httpx.get(gw.url + "/metrics", timeout=10).text
    (row,) = gw.wait_rows(1, "request_id = ?", ("echo-secret",))
    secrets = (UPSTREAM_SECRET, ADMIN_TOKEN, KEY_SECRET, user["key"])
    surfaces = {
        "error": response.text + json.dumps(dict(response.headers)),
        "near-miss": near_miss.text,
        "metrics": metrics,
        "row": json.dumps(row),
        "logs": logs.getvalue(),
    }
    for name, text in surfaces.items():
        for secret in secrets:
            assert secret not in text, (name, secret)
    assert "echo-secret" in logs.getvalue()  # the logs did see this request


def test_stored_content_is_redacted(gw: RunningGateway, user: dict[str, Any]) -> None:
    prompt = "my key is sk-proj-abcdefghijklmnopqrstuvwxyz012345 and mail me at ann@example.com"
    response = httpx.post(
        gw.url + "/v1/chat/completions",
        json={"model": "ok", "messages": [{"role": "user", "content": prompt}]},
        headers={"Authorization": f"Bearer {user['key']}", "X-Request-ID": "redact-me"},
    )
    assert response.status_code == 200
    (row,) = gw.wait_rows(1, "request_id = ?", ("redact-me",))
    stored = json.loads(row["content"])
    text = json.dumps(stored)
    assert "Hello from the fake upstream." in text  # content is stored...
    assert "sk-proj-abcdefghij" not in text and "ann@example.com" not in text  # ...redacted


def test_no_header_or_log_line_injection(
    gw: RunningGateway, user: dict[str, Any], logs: io.StringIO
) -> None:
    evil_ids = ["abc\tdef", "x" * 200, "<script>", "id;Set-Cookie=1", "a b"]
    for evil in evil_ids:
        response = httpx.get(gw.url + "/health", headers={"X-Request-ID": evil})
        echoed = response.headers["x-request-id"]
        assert echoed != evil and all(c.isalnum() for c in echoed)
    response = httpx.post(
        gw.url + "/v1/chat/completions",
        json={"model": "echo", "messages": HI},
        headers={"Authorization": f"Bearer {user['key']}"},
    )
    assert "set-cookie" not in response.headers  # CR/LF from the upstream stays in the body
    assert "Set-Cookie: evil=1" in response.json()["error"]["message"]
    for line in logs.getvalue().splitlines():
        entry = json.loads(line)  # every line is one whole JSON object
        assert entry.get("msg") != "forged" and entry.get("level") != "critical"


def test_cors_is_off_by_default(gw: RunningGateway) -> None:
    origin = {"Origin": "https://evil.example"}
    preflight = httpx.options(
        gw.url + "/v1/chat/completions",
        headers={**origin, "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    assert preflight.status_code >= 400
    simple = httpx.get(gw.url + "/v1/models", headers=origin)
    assert "access-control-allow-origin" not in simple.headers


def test_cors_when_configured_allows_only_the_listed_origins(
    make_gateway: Any, tmp_path: Path
) -> None:
    gateway = make_gateway(
        server={"cors": {"allow_origins": ["https://app.example"], "allow_methods": ["POST"]}}
    )
    good = httpx.options(
        gateway.url + "/v1/chat/completions",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert good.status_code == 200
    assert good.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in good.headers["access-control-allow-methods"]
    bad = httpx.options(
        gateway.url + "/v1/chat/completions",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert bad.status_code == 400
    assert "access-control-allow-origin" not in bad.headers
    reply = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "ok", "messages": HI},
        headers={"Origin": "https://app.example"},
    )
    assert reply.status_code == 200
    assert reply.headers["access-control-allow-origin"] == "https://app.example"
    assert "x-request-id" in reply.headers["access-control-expose-headers"].lower()
