"""Hot reload in one process: a gateway started from a file reloads it through the admin
endpoint and on a file change; an invalid file is refused with its message while the old
config keeps serving; pooled adapters, statistics and circuits of unchanged routes are
kept; a stream in flight on a removed provider finishes, then that adapter is closed."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from hybridinference.app import create_app
from hybridinference.config import load_config
from tests.conftest import ADMIN_TOKEN, KEY_SECRET, gateway_config, route
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.fakes.servers import RunningGateway, run_gateway

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
ENV = {
    "FAKE_KEY": "sk-upstream-secret",
    "HYBRIDINFERENCE_ADMIN_TOKEN": ADMIN_TOKEN,
    "HYBRIDINFERENCE_KEY_SECRET": KEY_SECRET,
}
HI = [{"role": "user", "content": "hi"}]


def write(path: Path, config: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config))
    tmp.replace(path)  # atomic, as editors and config-map updates do


@pytest.fixture
def served(upstream_url: str, tmp_path: Path) -> Iterator[Callable[..., RunningGateway]]:
    started: list[RunningGateway] = []

    def start(config: dict[str, Any]) -> RunningGateway:
        path = tmp_path / "gateway.yaml"
        write(path, config)
        parsed = load_config(path, ENV)
        app = create_app(parsed, ENV, rng=random.Random(5), config_path=path)
        running = run_gateway(app, Path(parsed.storage.url.removeprefix("sqlite:///")))
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def base(upstream_url: str, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    config = gateway_config(upstream_url, tmp_path, reload={"interval": 0.1}, **extra)
    config["providers"]["other"] = {
        "kind": "openai",
        "base_url": upstream_url,
        "api_key_env": "FAKE_KEY",
    }
    config["models"].append({"name": "gated", "routes": [route("other", "gated-reload")]})
    return config


def chat(gateway: RunningGateway, model: str = "ok") -> httpx.Response:
    body = {"model": model, "messages": HI}
    return httpx.post(gateway.url + "/v1/chat/completions", json=body, timeout=20)


def admin_config(gateway: RunningGateway) -> dict[str, Any]:
    response = httpx.get(gateway.url + "/admin/config", headers=ADMIN, timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def routes(gateway: RunningGateway) -> dict[str, dict[str, Any]]:
    body = httpx.get(gateway.url + "/admin/routing", headers=ADMIN, timeout=10).json()
    return {f"{m['model']}:{r['name']}": r for m in body["models"] for r in m["routes"]}


def reload(gateway: RunningGateway) -> httpx.Response:
    return httpx.post(gateway.url + "/admin/config/reload", headers=ADMIN, timeout=20)


def test_admin_reload_keeps_live_state_of_unchanged_routes(
    served: Callable[..., RunningGateway], upstream_url: str, tmp_path: Path
) -> None:
    config = base(upstream_url, tmp_path)
    config["reload"] = {"watch": False}
    gateway = served(config)
    for _ in range(3):
        assert chat(gateway).status_code == 200
    before = admin_config(gateway)
    samples = routes(gateway)["ok:fake/ok"]["latency"]
    adapter = gateway.state.routing.adapters["fake"]
    circuit = gateway.state.routing.manager.resolve("ok", None).routes.routes[0].circuit

    config["models"].append({"name": "added", "routes": [route("fake", "ok-added")]})
    write(tmp_path / "gateway.yaml", config)
    response = reload(gateway)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "applied"
    after = admin_config(gateway)
    assert after["version"] == response.json()["version"] != before["version"]
    assert after["reloads"]["applied"] == 1 and after["reloads"]["last_source"] == "admin"
    # the unchanged route kept its adapter (pooled connections), statistics and circuit
    assert gateway.state.routing.adapters["fake"] is adapter
    assert routes(gateway)["ok:fake/ok"]["latency"] == samples
    assert gateway.state.routing.manager.resolve("ok", None).routes.routes[0].circuit is circuit
    assert chat(gateway, "added").status_code == 200
    # the same content again is no change
    again = reload(gateway)
    assert again.json()["status"] == "unchanged"
    assert admin_config(gateway)["version"] == after["version"]


def test_invalid_file_is_refused_and_the_old_config_keeps_serving(
    served: Callable[..., RunningGateway], upstream_url: str, tmp_path: Path
) -> None:
    config = base(upstream_url, tmp_path)
    config["reload"] = {"watch": False}
    gateway = served(config)
    version = admin_config(gateway)["version"]
    broken = {**config, "models": [{**config["models"][0], "strategy": "fastest"}]}
    write(tmp_path / "gateway.yaml", broken)
    response = reload(gateway)
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "models[0].strategy: unknown strategy 'fastest'" in message
    write(tmp_path / "gateway.yaml", {**config, "modles": []})
    message = reload(gateway).json()["error"]["message"]
    assert "modles: unknown field" in message and "gateway.yaml" in message
    state = admin_config(gateway)
    assert state["version"] == version
    assert state["reloads"]["rejected"] == 2 and "modles" in state["reloads"]["last_error"]
    assert chat(gateway).status_code == 200
    metrics = httpx.get(gateway.url + "/metrics", timeout=10).text
    assert f'hybridinference_config_info{{version="{version}"}} 1.0' in metrics
    assert 'hybridinference_config_reloads_total{result="rejected"} 2.0' in metrics


def test_a_file_change_is_picked_up_by_the_watcher(
    served: Callable[..., RunningGateway], upstream_url: str, tmp_path: Path
) -> None:
    config = base(upstream_url, tmp_path)
    gateway = served(config)
    version = admin_config(gateway)["version"]
    config["models"][0]["routes"][0]["weight"] = 3.0
    write(tmp_path / "gateway.yaml", config)
    deadline = time.monotonic() + 10
    while admin_config(gateway)["version"] == version:
        assert time.monotonic() < deadline, "the watcher did not reload the file"
        time.sleep(0.05)
    assert routes(gateway)["ok:fake/ok"]["weight"] == 3.0
    assert admin_config(gateway)["reloads"]["last_source"] == "file"


def test_stream_on_a_removed_provider_finishes_then_its_adapter_closes(
    served: Callable[..., RunningGateway],
    upstream: FakeOpenAIUpstream,
    upstream_url: str,
    tmp_path: Path,
) -> None:
    config = base(upstream_url, tmp_path)
    config["reload"] = {"watch": False}
    gateway = served(config)
    old = gateway.state.routing.adapters["other"]
    chunks: list[str] = []
    done = threading.Event()

    def stream() -> None:
        body = {"model": "gated", "messages": HI, "stream": True}
        with httpx.stream(
            "POST", gateway.url + "/v1/chat/completions", json=body, timeout=20
        ) as response:
            assert response.status_code == 200
            chunks.extend(response.iter_lines())
        done.set()

    reader = threading.Thread(target=stream)
    reader.start()
    deadline = time.monotonic() + 10
    while not upstream.log.bodies("gated-reload"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(0.1)  # the first chunk is relayed: the route is in flight
    config["providers"].pop("other")
    config["models"] = [m for m in config["models"] if m["name"] != "gated"]
    write(tmp_path / "gateway.yaml", config)
    assert reload(gateway).status_code == 200
    assert "other" not in gateway.state.routing.adapters
    assert chat(gateway, "gated").status_code == 404  # new requests: the new config
    assert not done.is_set() and not _closed(old)  # in flight: the old adapter stays open
    upstream.log.released.add("gated-reload")
    reader.join(20)
    assert done.is_set() and any("[DONE]" in line for line in chunks)
    deadline = time.monotonic() + 10
    while not _closed(old):
        assert time.monotonic() < deadline, "the removed provider's adapter was not closed"
        time.sleep(0.05)


def _closed(adapter: Any) -> bool:
    pool = getattr(adapter, "_pool", None)
    return bool(getattr(pool, "closed", False))
