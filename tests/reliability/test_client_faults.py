"""Client faults: a client that vanishes mid-stream (the upstream is cancelled within a
second, the request logged as cancelled), a client that stops reading (the gateway pushes
back on the upstream instead of buffering its stream), 5,000 idle connections at once,
oversized headers and bodies, and a request body trickled in (cut off at the configured
body timeout with a 408)."""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import gateway_config, route
from tests.e2e.helpers import HI, assert_envelope, assert_serving, start_gateway
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.fakes.servers import RunningAiohttp, RunningGateway, run_aiohttp
from tests.reliability.faults import FaultUpstream

BODY_TIMEOUT = 1.0
FLOOD_BYTES = 4096 * (65536 + 200)  # what the flood upstream sends if nothing pushes back


@pytest.fixture(scope="module")
def fault_server() -> Iterator[tuple[FaultUpstream, RunningAiohttp]]:
    upstream = FaultUpstream()
    running = run_aiohttp(upstream.app, "fault-upstream")
    yield upstream, running
    running.stop()


@pytest.fixture
def faults(fault_server: tuple[FaultUpstream, RunningAiohttp]) -> FaultUpstream:
    return fault_server[0]


@pytest.fixture(scope="module")
def gw(
    fake_openai: tuple[FakeOpenAIUpstream, RunningAiohttp],
    fault_server: tuple[FaultUpstream, RunningAiohttp],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningGateway]:
    config = gateway_config(fake_openai[1].url + "/v1", tmp_path_factory.mktemp("clients"))
    config["server"] = {"max_body_bytes": 64 * 1024, "body_timeout": BODY_TIMEOUT}
    faults_url = fault_server[1].url + "/v1"
    config["providers"]["faults"] = {"kind": "openai", "base_url": faults_url}
    config["models"] += [
        {"name": name, "routes": [route("faults", name)]} for name in ("endless-dc", "flood-slow")
    ]
    running = start_gateway(config)
    yield running
    running.stop()


def raw_request(port: int, body: bytes, extra: bytes = b"") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        + extra
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )
    return sock


def test_disconnect_mid_stream_cancels_the_upstream_within_a_second(
    gw: RunningGateway, faults: FaultUpstream
) -> None:
    body = (
        b'{"model": "endless-dc", "stream": true, "messages": [{"role": "user", "content": "hi"}]}'
    )
    sock = raw_request(gw.port, body, b"X-Request-ID: dc-endless\r\n")
    received = b""
    while received.count(b"tick") < 3:
        received += sock.recv(65536)
    sock.close()
    closed_at = time.monotonic()
    deadline = closed_at + 1.0  # the requirement: the upstream sees it within a second
    while "endless-dc" not in faults.closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "endless-dc" in faults.closed
    assert faults.closed["endless-dc"] - closed_at < 1.0
    (row,) = gw.wait_rows(1, "request_id = ?", ("dc-endless",))
    assert (row["status"], row["cancelled"], row["error_type"]) == (499, 1, "cancelled")


def test_a_client_that_stops_reading_pushes_back_on_the_upstream(
    gw: RunningGateway, faults: FaultUpstream
) -> None:
    body = (
        b'{"model": "flood-slow", "stream": true, "messages": [{"role": "user", "content": "hi"}]}'
    )
    sock = raw_request(gw.port, body, b"X-Request-ID: slow-reader\r\n")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    # now read nothing: the upstream must stall once the buffers between are full
    last, stable_since = -1, time.monotonic()
    while time.monotonic() - stable_since < 1.0:
        sent = faults.sent.get("flood-slow", 0)
        if sent != last:
            last, stable_since = sent, time.monotonic()
        time.sleep(0.1)
    assert 0 < last < FLOOD_BYTES // 4, last  # bounded by socket buffers, not the stream
    sock.close()
    (row,) = gw.wait_rows(1, "request_id = ?", ("slow-reader",))
    assert row["cancelled"] == 1
    assert_serving(gw)


@contextlib.contextmanager
def fd_limit(wanted: int) -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_five_thousand_idle_connections_and_still_serving(gw: RunningGateway) -> None:
    count = 5000
    # both ends live in this process: two descriptors per connection
    with fd_limit(2 * count + 1024):
        before = len(os.listdir("/proc/self/fd"))
        idle: list[socket.socket] = []
        try:
            for _ in range(count):
                idle.append(socket.create_connection(("127.0.0.1", gw.port)))
            assert_serving(gw)
            # the gateway accepted them all (its ends count as descriptors here too)
            deadline = time.monotonic() + 30  # generous: a busy 2-core CI machine
            while len(os.listdir("/proc/self/fd")) < before + 2 * count:
                assert time.monotonic() < deadline, len(os.listdir("/proc/self/fd")) - before
                time.sleep(0.05)
        finally:
            for sock in idle:
                sock.close()
        deadline = time.monotonic() + 10
        while len(os.listdir("/proc/self/fd")) > before + 16 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(os.listdir("/proc/self/fd")) <= before + 16
    assert_serving(gw)


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Big": "a" * 200_000},
        {f"X-H{n}": "v" for n in range(5000)},
    ],
    ids=["one-200k-header", "5000-headers"],
)
def test_oversized_headers_are_refused_without_a_5xx(
    gw: RunningGateway, headers: dict[str, str]
) -> None:
    response = httpx.post(
        gw.url + "/v1/chat/completions",
        json={"model": "ok", "messages": HI},
        headers={**headers, "X-Request-ID": "big-head"},
        timeout=10,
    )
    error = assert_envelope(response, 431, "invalid_request_error")
    assert error["code"] == "headers_too_large"
    assert response.headers["x-request-id"] == "big-head"
    assert_serving(gw)


def test_oversized_body_is_413(gw: RunningGateway) -> None:
    big = {"model": "ok", "messages": [{"role": "user", "content": "x" * 100_000}]}
    response = httpx.post(gw.url + "/v1/chat/completions", json=big, timeout=10)
    assert_envelope(response, 413, "invalid_request_error")


def test_a_trickled_body_is_cut_off_at_the_body_timeout(gw: RunningGateway) -> None:
    body = b'{"model": "ok", "messages": [{"role": "user", "content": "hi"}]}'
    sock = socket.create_connection(("127.0.0.1", gw.port))
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n"
        b"X-Request-ID: slow-body\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    sock.settimeout(0.1)
    started, answer = time.monotonic(), b""
    for byte in body:
        with contextlib.suppress(BlockingIOError, BrokenPipeError, ConnectionResetError):
            sock.sendall(bytes([byte]))
        try:
            answer += sock.recv(65536)
        except TimeoutError:
            continue
        if answer:
            break
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert time.monotonic() - started < BODY_TIMEOUT + 3
    (row,) = gw.wait_rows(1, "request_id = ?", ("slow-body",))
    assert (row["status"], row["error_type"]) == (408, "request_timeout")
    assert_serving(gw)
