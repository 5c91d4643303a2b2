"""Shared fixtures: a fake OpenAI upstream on a real socket, and gateways built from
config dicts, served by uvicorn on a free port."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hybridinference.app import create_app
from hybridinference.config import parse_config
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.fakes.servers import RunningAiohttp, RunningGateway, run_aiohttp, run_gateway

ADMIN_TOKEN = "test-admin-token"
KEY_SECRET = "test-key-secret"


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[tuple[FakeOpenAIUpstream, RunningAiohttp]]:
    fake = FakeOpenAIUpstream()
    running = run_aiohttp(fake.app)
    yield fake, running
    running.stop()


@pytest.fixture
def upstream(fake_openai: tuple[FakeOpenAIUpstream, RunningAiohttp]) -> FakeOpenAIUpstream:
    return fake_openai[0]


@pytest.fixture
def upstream_url(fake_openai: tuple[FakeOpenAIUpstream, RunningAiohttp]) -> str:
    return fake_openai[1].url + "/v1"


def route(provider: str, model: str, **extra: Any) -> dict[str, Any]:
    return {"provider": provider, "model": model, **extra}


def gateway_config(upstream_url: str, tmp_path: Path, **overrides: Any) -> dict[str, Any]:
    """A config with a ``fake`` provider and a ``demo`` provider; public model names that
    start with a fake-upstream script name are routed to the fake under the same name."""
    config: dict[str, Any] = {
        "auth": {"required": False},
        "storage": {"url": f"sqlite:///{tmp_path}/gw.db", "flush_interval": 0.05},
        "timeouts": {"connect": 2, "first_byte": 5, "idle": 5, "total": 20},
        "providers": {
            "fake": {"kind": "openai", "base_url": upstream_url, "api_key_env": "FAKE_KEY"},
            "demo": {"kind": "demo", "ttft_ms": 1, "tokens_per_second": 2000, "max_tokens": 8},
        },
        "models": [
            {"name": "ok", "routes": [route("fake", "ok", pricing={"input": 1.0, "output": 2.0})]},
            {"name": "tools", "routes": [route("fake", "tools")]},
            {"name": "demo", "routes": [route("demo", "demo-1")]},
        ],
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


GatewayFactory = Callable[..., RunningGateway]


@pytest.fixture
def make_gateway(upstream_url: str, tmp_path: Path) -> Iterator[GatewayFactory]:
    started: list[RunningGateway] = []

    def factory(
        config: dict[str, Any] | None = None, env: dict[str, str] | None = None, **overrides: Any
    ) -> RunningGateway:
        data = config if config is not None else gateway_config(upstream_url, tmp_path, **overrides)
        environment = {
            "FAKE_KEY": "sk-upstream-secret",
            "HYBRIDINFERENCE_ADMIN_TOKEN": ADMIN_TOKEN,
            "HYBRIDINFERENCE_KEY_SECRET": KEY_SECRET,
            **(env or {}),
        }
        parsed = parse_config(data, environment, "test-config")
        app = create_app(parsed, environment, rng=random.Random(1234))
        db_path = Path(parsed.storage.url.removeprefix("sqlite:///"))
        running = run_gateway(app, db_path)
        started.append(running)
        return running

    yield factory
    for running in started:
        running.stop()


@pytest.fixture
def gateway(make_gateway: GatewayFactory) -> RunningGateway:
    return make_gateway()
