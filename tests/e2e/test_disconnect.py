"""A client that goes away cancels the upstream request (the fake records it), and the
request's one log row says so (499, cancelled); the gateway keeps serving."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import gateway_config, route
from tests.e2e.helpers import HI, assert_serving, sdk, start_gateway
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.fakes.servers import RunningAiohttp, RunningGateway

MODELS = ("hang-midstream-dc", "hang-dc-stream", "hang-dc-plain")


@pytest.fixture(scope="module")
def gw(
    fake_openai: tuple[FakeOpenAIUpstream, RunningAiohttp], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    config = gateway_config(fake_openai[1].url + "/v1", tmp_path_factory.mktemp("dc"))
    config["models"] += [{"name": m, "routes": [route("fake", m)]} for m in MODELS]
    running = start_gateway(config)
    yield running
    running.stop()


def cancellations(upstream: FakeOpenAIUpstream, model: str) -> int:
    return sum(1 for m, _ in upstream.log.cancelled if m == model)


def wait_cancelled(upstream: FakeOpenAIUpstream, model: str, before: int) -> int:
    """How many cancellations of ``model`` the fake has recorded, waiting (up to a bound
    that is a failure, not a measurement) for one more than ``before``."""
    deadline = time.monotonic() + 5
    while True:
        count = cancellations(upstream, model)
        if count > before or time.monotonic() > deadline:
            return count
        time.sleep(0.01)


def cancelled_row(gw: RunningGateway, request_id: str) -> dict[str, object]:
    rows = gw.wait_rows(1, "request_id = ?", (request_id,))
    assert len(rows) == 1, rows
    row = rows[0]
    assert (row["status"], row["cancelled"], row["error_type"]) == (499, 1, "cancelled")
    return row


def test_disconnect_mid_stream_cancels_the_upstream(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    model = "hang-midstream-dc"
    before = cancellations(upstream, model)
    stream = sdk(gw).chat.completions.create(
        model=model, messages=HI, stream=True, extra_headers={"X-Request-ID": "dc-mid"}
    )
    received = ""
    for chunk in stream:
        received += chunk.choices[0].delta.content or ""
        if received == "Hello from":
            break  # the upstream now stalls; the client gives up
    stream.close()
    assert wait_cancelled(upstream, model, before) == before + 1
    row = cancelled_row(gw, "dc-mid")
    assert (row["stream"], row["route"]) == (1, "fake/hang-midstream-dc")
    assert row["ttft_ms"] is not None
    assert_serving(gw)


@pytest.mark.parametrize(("model", "stream"), [("hang-dc-stream", True), ("hang-dc-plain", False)])
def test_disconnect_before_the_first_byte_cancels_the_upstream(
    gw: RunningGateway, upstream: FakeOpenAIUpstream, model: str, stream: bool
) -> None:
    before = cancellations(upstream, model)
    request_id = f"dc-early-{stream}"
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            gw.url + "/v1/chat/completions",
            json={"model": model, "messages": HI, "stream": stream},
            headers={"X-Request-ID": request_id},
            timeout=httpx.Timeout(10, read=0.3),
        )
    assert wait_cancelled(upstream, model, before) == before + 1
    row = cancelled_row(gw, request_id)
    assert row["stream"] == int(stream)
    assert row["total_tokens"] == 0
    assert_serving(gw)


def test_disconnect_while_uploading_the_body_is_a_499_not_a_500(gw: RunningGateway) -> None:
    with socket.create_connection(("127.0.0.1", gw.port)) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n"
            b'X-Request-ID: dc-upload\r\n\r\n{"model": "ok", "mess'
        )
        rows = gw.wait_rows(1, "request_id = ?", ("dc-upload",), timeout=0.2)
        assert rows == []  # the gateway is still waiting for the rest of the body
    cancelled_row(gw, "dc-upload")
    assert_serving(gw)
