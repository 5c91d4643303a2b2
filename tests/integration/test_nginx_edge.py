"""The shipped nginx edge config, rendered as the nginx image would render it, run by the
real nginx (TLS with a self-signed certificate) in front of a real gateway and a stand-in
dashboard: path routing, /metrics restriction, chunk-by-chunk streaming, 413, WebSocket
upgrade, and the client IP that reaches the request log."""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import httpx
import orjson
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import ADMIN_TOKEN, GatewayFactory, route
from tests.fakes.openai_upstream import WORDS, FakeOpenAIUpstream
from tests.fakes.servers import LoopThread, RunningAiohttp, RunningGateway, run_aiohttp

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "nginx"
STREAM_MODEL = "drip-150-edge"
CLIENT = "127.0.0.3"  # an ordinary client
CDN = "127.0.0.4"  # a proxy nginx trusts to say who the client is


def nginx_binary() -> str:
    path = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("nginx is not installed (scripts/system-packages.txt lists it)")
        pytest.skip("nginx is not installed")
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def self_signed(root: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = root / "edge.crt", root / "edge.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def render(template: str, values: dict[str, str]) -> str:
    """What the nginx image's envsubst does with the variables it is given."""
    out = re.sub(r"\$\{([A-Z_]+)\}", lambda m: values.get(m.group(1), m.group(0)), template)
    assert "${" not in out, "a template variable was left unrendered"
    return out


def dashboard_app() -> web.Application:
    async def index(request: web.Request) -> web.Response:
        return web.Response(text="dashboard home")

    async def socket_echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            await ws.send_str("echo:" + message.data)
        return ws

    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/ws", socket_echo)
    return app


@dataclass
class Edge:
    url: str
    cert: Path
    gateway: RunningGateway

    def client(self, source: str = CLIENT) -> httpx.Client:
        context = ssl.create_default_context(cafile=str(self.cert))
        transport = httpx.HTTPTransport(local_address=source, verify=context)
        return httpx.Client(base_url=self.url, transport=transport, timeout=30)


@pytest.fixture
def edge(make_gateway: GatewayFactory, tmp_path: Path) -> Iterator[Edge]:
    nginx = nginx_binary()
    gateway = make_gateway(
        server={"trusted_proxies": ["127.0.0.1/32"]},
        models=[
            {"name": "ok", "routes": [route("fake", "ok")]},
            {"name": STREAM_MODEL, "routes": [route("fake", STREAM_MODEL)]},
        ],
    )
    dashboard: RunningAiohttp = run_aiohttp(dashboard_app(), name="fake-dashboard")
    cert, key = self_signed(tmp_path)
    (tmp_path / "real-ip.conf").write_text(
        f"set_real_ip_from {CDN}/32;\nreal_ip_header X-Forwarded-For;\nreal_ip_recursive on;\n"
    )
    (tmp_path / "metrics-allow.conf").write_text("allow 127.0.0.1;\ndeny all;\n")
    https_port = free_port()
    server = render(
        (DEPLOY / "templates" / "hybridinference.conf.template").read_text(),
        {
            "GATEWAY_UPSTREAM": f"127.0.0.1:{gateway.port}",
            "DASHBOARD_UPSTREAM": f"127.0.0.1:{dashboard.port}",
            "HTTP_PORT": f"127.0.0.1:{free_port()}",
            "HTTPS_PORT": f"127.0.0.1:{https_port}",
            "SERVER_NAME": "localhost",
            "TLS_CERT": str(cert),
            "TLS_KEY": str(key),
            "REAL_IP_CONF": str(tmp_path / "real-ip.conf"),
            "METRICS_ALLOW_CONF": str(tmp_path / "metrics-allow.conf"),
            "MAX_BODY_SIZE": "1m",
        },
    )
    (tmp_path / "server.conf").write_text(server)
    temp = {name: tmp_path / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    main = (
        f"daemon off;\nmaster_process off;\npid {tmp_path}/nginx.pid;\n"
        f"error_log {tmp_path}/error.log warn;\nevents {{ worker_connections 256; }}\n"
        f"http {{\n  access_log off;\n"
        + "".join(
            f"  {name}_temp_path {path};\n"
            for name, path in (
                ("client_body", temp["body"]),
                ("proxy", temp["proxy"]),
                ("fastcgi", temp["fastcgi"]),
                ("uwsgi", temp["uwsgi"]),
                ("scgi", temp["scgi"]),
            )
        )
        + f"  include {tmp_path}/server.conf;\n}}\n"
    )
    (tmp_path / "nginx.conf").write_text(main)
    check = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    process = subprocess.Popen(
        [nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
            break
        except OSError:
            assert process.poll() is None, (tmp_path / "error.log").read_text()
            assert time.monotonic() < deadline, "nginx did not start listening"
            time.sleep(0.05)
    try:
        yield Edge(f"https://127.0.0.1:{https_port}", cert, gateway)
    finally:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        dashboard.stop()


def test_paths_route_to_gateway_and_dashboard(edge: Edge) -> None:
    with edge.client() as client:
        home = client.get("/")
        assert home.status_code == 200 and home.text == "dashboard home"
        models = client.get("/v1/models")
        assert models.status_code == 200
        assert {m["id"] for m in models.json()["data"]} >= {"ok", STREAM_MODEL}
        admin = client.get("/admin/keys", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        assert admin.status_code == 200 and admin.json()["object"] == "list"
        assert client.get("/health").json() == {"status": "ok"}
        assert client.get("/metrics").status_code == 403  # not from an allowed network
        assert home.headers["strict-transport-security"].startswith("max-age=")
    with edge.client("127.0.0.1") as monitor:
        scraped = monitor.get("/metrics")
        assert scraped.status_code == 200
        assert "hybridinference_requests_total" in scraped.text


def test_stream_arrives_chunk_by_chunk_through_nginx(
    edge: Edge, upstream: FakeOpenAIUpstream
) -> None:
    body = {"model": STREAM_MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    seen: list[tuple[str, int]] = []  # (content, chunks the upstream had sent by then)
    with edge.client() as client, client.stream("POST", "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: {"):
                delta = orjson.loads(line[6:])["choices"][0]["delta"].get("content") or ""
                seen.append((delta, upstream.log.progress.get(STREAM_MODEL, 0)))
    words = [content for content, _ in seen if content]
    assert words == list(WORDS)
    first = next(sent for content, sent in seen if content)
    assert first < len(WORDS)  # the first word came through before the upstream's last


def test_oversized_body_is_refused_at_the_edge(edge: Edge, upstream: FakeOpenAIUpstream) -> None:
    before = len(upstream.log.received)
    big = {"model": "ok", "messages": [{"role": "user", "content": "x" * (2 * 1024 * 1024)}]}
    with edge.client() as client:
        response = client.post("/v1/chat/completions", json=big)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert len(upstream.log.received) == before


def test_websocket_upgrade_reaches_the_dashboard(edge: Edge) -> None:
    async def talk() -> str:
        context = ssl.create_default_context(cafile=str(edge.cert))
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(edge.url + "/ws", ssl=context) as ws,
        ):
            await ws.send_str("ping")
            message = await ws.receive(timeout=10)
            return str(message.data)

    thread = LoopThread("ws-client")
    try:
        assert thread.call(talk()) == "echo:ping"
    finally:
        thread.stop()


def test_client_ip_in_the_request_log(edge: Edge) -> None:
    body = {"model": "ok", "messages": [{"role": "user", "content": "hi"}]}
    cases = {
        # spoofed header from an ordinary client: nginx ignores it, the gateway logs the peer
        "via-edge-spoofed": (edge, CLIENT, {"X-Forwarded-For": "203.0.113.9"}, CLIENT),
        # a trusted CDN says who the client is
        "via-cdn": (edge, CDN, {"X-Forwarded-For": "198.51.100.7"}, "198.51.100.7"),
    }
    for request_id, (_, source, headers, _) in cases.items():
        with edge.client(source) as client:
            response = client.post(
                "/v1/chat/completions", json=body, headers={**headers, "X-Request-ID": request_id}
            )
            assert response.status_code == 200
    # straight to the gateway (not through a trusted proxy): the header is ignored
    direct = httpx.HTTPTransport(local_address=CLIENT)
    with httpx.Client(transport=direct, timeout=30) as client:
        response = client.post(
            edge.gateway.url + "/v1/chat/completions",
            json=body,
            headers={"X-Forwarded-For": "192.0.2.1", "X-Request-ID": "direct"},
        )
        assert response.status_code == 200
    rows = edge.gateway.wait_rows(3)
    logged = {r["request_id"]: r["client_ip"] for r in rows}
    assert logged["via-edge-spoofed"] == CLIENT
    assert logged["via-cdn"] == "198.51.100.7"
    assert logged["direct"] == CLIENT


def test_shipped_main_config_passes_nginx_t(tmp_path: Path) -> None:
    """deploy/nginx/nginx.conf (the container's main file) with the rendered server blocks,
    paths moved into tmp_path: `nginx -t` accepts it."""
    nginx = nginx_binary()
    cert, key = self_signed(tmp_path)
    server = render(
        (DEPLOY / "templates" / "hybridinference.conf.template").read_text(),
        {
            "GATEWAY_UPSTREAM": "127.0.0.1:8080",
            "DASHBOARD_UPSTREAM": "127.0.0.1:3001",
            "HTTP_PORT": f"127.0.0.1:{free_port()}",
            "HTTPS_PORT": f"127.0.0.1:{free_port()}",
            "SERVER_NAME": "_",
            "TLS_CERT": str(cert),
            "TLS_KEY": str(key),
            "REAL_IP_CONF": str(DEPLOY / "trusted-proxies.conf"),
            "METRICS_ALLOW_CONF": str(DEPLOY / "metrics-allow.conf"),
            "MAX_BODY_SIZE": "10m",
        },
    )
    (tmp_path / "server.conf").write_text(server)
    main = (DEPLOY / "nginx.conf").read_text()
    for old, new in (
        ("user nginx;\n", ""),
        ("/var/run/nginx.pid", str(tmp_path / "nginx.pid")),
        ("/etc/nginx/conf.d/*.conf", str(tmp_path / "server.conf")),
    ):
        assert old in main
        main = main.replace(old, new)
    (tmp_path / "nginx.conf").write_text(main)
    check = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stderr
    assert "syntax is ok" in check.stderr
