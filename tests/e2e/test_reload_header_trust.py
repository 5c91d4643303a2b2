"""Trusted edge headers, end to end: the client address in the request log comes from
X-Forwarded-For / CF-Connecting-IP / X-Real-IP only when the connection comes from a
``server.trusted_proxies`` range, else it is the socket's address — and the trusted
ranges change with a hot reload (they are read per request)."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
import uvloop

from hybridinference.app import create_app
from hybridinference.config import load_config
from tests.fakes.servers import RunningGateway, bind_socket
from tests.integration.test_reload import ENV, HI, base, reload, write


@pytest.fixture
def served(upstream_url: str, tmp_path: Path) -> Iterator[RunningGateway]:
    """As ``serve`` runs it: uvicorn's own proxy-header rewriting off, so only
    ``server.trusted_proxies`` decides (tests/fakes/servers.py keeps uvicorn's default,
    which believes X-Forwarded-For from any loopback peer)."""
    config = base(upstream_url, tmp_path)
    config["reload"] = {"watch": False}
    path = tmp_path / "gateway.yaml"
    write(path, config)
    parsed = load_config(path, ENV)
    app = create_app(parsed, ENV, rng=random.Random(3), config_path=path)
    sock = bind_socket()
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="on", log_level="warning", proxy_headers=False)
    )
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    thread = threading.Thread(target=lambda: uvloop.run(server.serve(sockets=[sock])))
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "gateway did not start"
        time.sleep(0.01)
    port = sock.getsockname()[1]
    db = Path(parsed.storage.url.removeprefix("sqlite:///"))
    yield RunningGateway(f"http://127.0.0.1:{port}", port, app, db, server, thread)
    server.should_exit = True
    thread.join(30)


FORGED = {
    "x-forwarded-for": "198.51.100.1",
    "cf-connecting-ip": "198.51.100.2",
    "x-real-ip": "198.51.100.3",
}


def client_ip(gateway: RunningGateway, headers: dict[str, str]) -> str:
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "ok", "messages": HI},
        headers=headers,
        timeout=10,
    )
    request_id = response.headers["x-request-id"]
    rows = gateway.wait_rows(1, "request_id = ?", (request_id,))
    assert rows, "no log row"
    return str(rows[0]["client_ip"])


def test_headers_believed_only_from_trusted_proxies(
    served: RunningGateway, upstream_url: str, tmp_path: Path
) -> None:
    gateway = served
    config = base(upstream_url, tmp_path)
    config["reload"] = {"watch": False}
    # not trusted: every forwarded header is ignored
    assert client_ip(gateway, FORGED) == "127.0.0.1"

    config["server"] = {"trusted_proxies": ["127.0.0.1/32", "173.245.48.0/20"]}
    write(tmp_path / "gateway.yaml", config)
    assert reload(gateway).status_code == 200
    # the loopback peer is now a trusted proxy
    assert client_ip(gateway, {"x-forwarded-for": "203.0.113.7"}) == "203.0.113.7"
    assert client_ip(gateway, {"cf-connecting-ip": "203.0.113.8"}) == "203.0.113.8"
    assert client_ip(gateway, {"x-real-ip": "203.0.113.9"}) == "203.0.113.9"
    # through the CDN (a trusted range): its CF-Connecting-IP names the client
    through_cdn = {"x-forwarded-for": "173.245.48.5", "cf-connecting-ip": "203.0.113.10"}
    assert client_ip(gateway, through_cdn) == "203.0.113.10"
    # an untrusted hop before the edge: that hop is the client, CF-Connecting-IP ignored
    bypass = {"x-forwarded-for": "203.0.113.11", "cf-connecting-ip": "198.51.100.99"}
    assert client_ip(gateway, bypass) == "203.0.113.11"
    # a client-supplied X-Forwarded-For prefix cannot push the real hop aside
    spoofed = {"x-forwarded-for": "198.51.100.50, 203.0.113.12"}
    assert client_ip(gateway, spoofed) == "203.0.113.12"
    assert client_ip(gateway, {"cf-connecting-ip": "not-an-address"}) == "127.0.0.1"
