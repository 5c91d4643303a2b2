"""API keys end to end: the admin API makes them (admin token), clients present them as
Bearer or X-API-Key, per-key models hide the others (404, same answer as an unknown
model), revocation takes effect at once, and every refusal is a 401 envelope."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import ADMIN_TOKEN, gateway_config
from tests.e2e.helpers import HI, assert_clean, assert_envelope, sdk, start_gateway
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.fakes.servers import RunningAiohttp, RunningGateway


@pytest.fixture(scope="module")
def gw(
    fake_openai: tuple[FakeOpenAIUpstream, RunningAiohttp], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    config = gateway_config(fake_openai[1].url + "/v1", tmp_path_factory.mktemp("auth"))
    config["auth"] = {"required": True}
    running = start_gateway(config)
    yield running
    running.stop()


def admin(
    gw: RunningGateway, method: str, path: str, token: str | None = ADMIN_TOKEN, **kw: Any
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.request(method, gw.url + path, headers=headers, timeout=10, **kw)


def create_key(gw: RunningGateway, name: str, models: list[str] | None = None) -> dict[str, Any]:
    response = admin(gw, "POST", "/admin/keys", json={"name": name, "allowed_models": models})
    assert response.status_code == 201, response.text
    key: dict[str, Any] = response.json()
    assert key["key"] and key["id"] and key["active"] is True
    return key


def chat(gw: RunningGateway, model: str = "ok", **headers: str) -> httpx.Response:
    return httpx.post(
        gw.url + "/v1/chat/completions",
        json={"model": model, "messages": HI},
        headers=headers,
        timeout=10,
    )


@pytest.mark.parametrize("token", [None, "wrong-token", ADMIN_TOKEN + "x"])
def test_admin_api_needs_the_admin_token(gw: RunningGateway, token: str | None) -> None:
    for method, path in (("POST", "/admin/keys"), ("GET", "/admin/keys")):
        response = admin(gw, method, path, token=token, json={"name": "x"})
        assert_envelope(response, 401, "authentication_error")
        assert ADMIN_TOKEN not in response.text
    assert_envelope(admin(gw, "DELETE", "/admin/keys/key_x", token=token), 401)


def test_admin_create_validates_its_body(gw: RunningGateway) -> None:
    response = admin(gw, "POST", "/admin/keys", json={"name": ""})
    assert_envelope(response, 400, "invalid_request_error", "name")
    response = admin(gw, "POST", "/admin/keys", json={"name": "x", "colour": "red"})
    assert_envelope(response, 400, "invalid_request_error", "colour")


def test_missing_key_is_401(gw: RunningGateway) -> None:
    error = assert_envelope(chat(gw, **{"X-Request-ID": "no-key"}), 401, "authentication_error")
    assert error["code"] == "invalid_api_key"
    assert "Missing" in error["message"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer hi-not-a-real-key"},
        {"X-API-Key": "hi-not-a-real-key"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
    ],
)
def test_bad_key_is_401(gw: RunningGateway, headers: dict[str, str]) -> None:
    assert_envelope(chat(gw, **headers), 401, "authentication_error")


def test_bad_key_through_the_sdk(gw: RunningGateway) -> None:
    with pytest.raises(openai.AuthenticationError) as caught:
        sdk(gw, api_key="hi-wrong").chat.completions.create(model="ok", messages=HI)
    assert caught.value.code == "invalid_api_key"
    assert_envelope(caught.value.response, 401, "authentication_error")  # type: ignore[arg-type]


def test_key_works_as_bearer_and_as_x_api_key_and_is_logged(gw: RunningGateway) -> None:
    key = create_key(gw, "both-headers")
    reply = sdk(gw, api_key=key["key"]).chat.completions.create(
        model="ok", messages=HI, extra_headers={"X-Request-ID": "auth-bearer"}
    )
    assert reply.choices[0].message.content
    response = chat(gw, **{"X-API-Key": key["key"], "X-Request-ID": "auth-xapikey"})
    assert response.status_code == 200, response.text
    assert_clean(response)
    for request_id in ("auth-bearer", "auth-xapikey"):
        (row,) = gw.wait_rows(1, "request_id = ?", (request_id,))
        assert (row["key_id"], row["status"]) == (key["id"], 200)


def test_refusals_are_logged_without_a_key_id(gw: RunningGateway) -> None:
    chat(gw, **{"X-API-Key": "hi-nope", "X-Request-ID": "auth-refused"})
    (row,) = gw.wait_rows(1, "request_id = ?", ("auth-refused",))
    assert (row["status"], row["key_id"], row["error_type"]) == (401, None, "invalid_api_key")


def test_model_a_key_may_not_use_looks_exactly_like_an_unknown_model(gw: RunningGateway) -> None:
    key = create_key(gw, "ok-only", models=["ok"])
    client = sdk(gw, api_key=key["key"])
    assert client.chat.completions.create(model="ok", messages=HI).choices
    with pytest.raises(openai.NotFoundError) as forbidden:
        client.chat.completions.create(model="tools", messages=HI)
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="toolz", messages=HI)
    a = assert_envelope(forbidden.value.response, 404, "not_found_error", "model")  # type: ignore[arg-type]
    b = assert_envelope(unknown.value.response, 404, "not_found_error", "model")  # type: ignore[arg-type]
    assert a["message"].replace("tools", "X") == b["message"].replace("toolz", "X")
    assert {k: v for k, v in a.items() if k != "message"} == {
        k: v for k, v in b.items() if k != "message"
    }
    assert [m.id for m in client.models.list()] == ["ok"]
    assert client.models.retrieve("ok").id == "ok"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("tools")


def test_revoked_key_is_refused_at_once(gw: RunningGateway) -> None:
    key = create_key(gw, "short-lived")
    client = sdk(gw, api_key=key["key"])
    assert client.chat.completions.create(model="ok", messages=HI).choices
    listed = admin(gw, "GET", "/admin/keys").json()["data"]
    assert any(k["id"] == key["id"] and k["active"] for k in listed)
    assert key["key"] not in str(listed)  # the secret is shown once only
    response = admin(gw, "DELETE", f"/admin/keys/{key['id']}")
    assert response.status_code == 200, response.text
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="ok", messages=HI)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
    again = admin(gw, "DELETE", f"/admin/keys/{key['id']}")
    assert_envelope(again, 404, "not_found_error")


def test_models_list_needs_a_key_too(gw: RunningGateway) -> None:
    response = httpx.get(gw.url + "/v1/models", timeout=10)
    assert_envelope(response, 401, "authentication_error")


def test_health_needs_no_key(gw: RunningGateway) -> None:
    assert httpx.get(gw.url + "/health", timeout=10).status_code == 200
