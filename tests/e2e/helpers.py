"""What the end-to-end tests share: an SDK client on a running gateway, configs with extra
fake-upstream models, and checks that every error is a clean OpenAI envelope."""

from __future__ import annotations

import random
import socket
from pathlib import Path
from typing import Any

import httpx
from openai import OpenAI

from hybridinference.app import create_app
from hybridinference.config import parse_config
from tests.conftest import ADMIN_TOKEN, KEY_SECRET, gateway_config, route
from tests.fakes.servers import RunningGateway, run_gateway

#: the upstream API key the gateway is given (conftest sets FAKE_KEY to it)
UPSTREAM_SECRET = "sk-upstream-secret"
ENVELOPE_KEYS = {"message", "type", "param", "code"}
HI = [{"role": "user", "content": "hi"}]


def sdk(gateway: RunningGateway, api_key: str = "unused", **options: Any) -> OpenAI:
    settings: dict[str, Any] = {
        "max_retries": 0,
        "timeout": 20,
        "_strict_response_validation": True,
        **options,
    }
    return OpenAI(base_url=gateway.url + "/v1", api_key=api_key, **settings)


def config_with(upstream_url: str, tmp_path: Path, *names: str, **overrides: Any) -> dict[str, Any]:
    """The default test config plus one public model per name, routed to the fake upstream
    under the same (script) name."""
    config = gateway_config(upstream_url, tmp_path, **overrides)
    config["models"] = [
        *config["models"],
        *({"name": name, "routes": [route("fake", name)]} for name in names),
    ]
    return config


def start_gateway(config: dict[str, Any], env: dict[str, str] | None = None) -> RunningGateway:
    """What conftest's ``make_gateway`` does, for module-scoped gateways (stop it yourself)."""
    environment = {
        "FAKE_KEY": UPSTREAM_SECRET,
        "HYBRIDINFERENCE_ADMIN_TOKEN": ADMIN_TOKEN,
        "HYBRIDINFERENCE_KEY_SECRET": KEY_SECRET,
        **(env or {}),
    }
    parsed = parse_config(config, environment, "test-config")
    app = create_app(parsed, environment, rng=random.Random(1234))
    return run_gateway(app, Path(parsed.storage.url.removeprefix("sqlite:///")))


def closed_port_url() -> str:
    """A loopback URL nothing listens on: connecting is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def assert_clean(response: httpx.Response) -> None:
    """No traceback and no upstream secret, in the body or any header."""
    text = response.text
    assert "Traceback" not in text
    assert UPSTREAM_SECRET not in text
    for name, value in response.headers.items():
        assert UPSTREAM_SECRET not in value, name


def assert_envelope(
    response: httpx.Response,
    status: int,
    error_type: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    """The response is the OpenAI error envelope with this status; returns ``error``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert_clean(response)
    body = response.json()
    assert set(body) == {"error"}
    error: dict[str, Any] = body["error"]
    assert set(error) == ENVELOPE_KEYS
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    if error_type is not None:
        assert error["type"] == error_type, error
    if param is not None:
        assert error["param"] == param, error
    assert response.headers.get("x-request-id")
    return error


def assert_serving(gateway: RunningGateway) -> None:
    """The gateway still answers a good request."""
    reply = sdk(gateway).chat.completions.create(model="ok", messages=HI)
    assert reply.choices[0].message.content == "Hello from the fake upstream."
