"""X-Request-ID: a well-formed one from the client is used and echoed, anything else is
replaced by a generated one; it is on every response and is the log row's key. The
route header names the provider endpoint that served."""

from __future__ import annotations

import re
import time

import httpx
import openai
import pytest

from tests.e2e.helpers import HI, sdk
from tests.fakes.servers import RunningGateway

GENERATED = re.compile(r"^[0-9a-f]{24}$")


def chat(gateway: RunningGateway, model: str = "ok", **headers: str) -> httpx.Response:
    return httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": model, "messages": HI},
        headers=headers,
        timeout=10,
    )


def test_generated_when_absent_and_it_keys_the_log_row(gateway: RunningGateway) -> None:
    first = chat(gateway).headers["x-request-id"]
    second = chat(gateway).headers["x-request-id"]
    assert GENERATED.match(first) and GENERATED.match(second)
    assert first != second
    # time order first (milliseconds), so the log's key index grows at its end
    assert int(first[:12], 16) <= int(second[:12], 16) <= time.time() * 1000
    rows = gateway.wait_rows(2)
    assert {r["request_id"] for r in rows} == {first, second}


@pytest.mark.parametrize(
    "request_id", ["abc-123", "trace:span.7_x", "0af7651916cd43dd8448eb211c80319c", "A" * 128]
)
def test_well_formed_id_is_echoed(gateway: RunningGateway, request_id: str) -> None:
    raw = sdk(gateway).chat.completions.with_raw_response.create(
        model="ok", messages=HI, extra_headers={"X-Request-ID": request_id}
    )
    assert raw.headers["x-request-id"] == request_id
    assert gateway.wait_rows(1, "request_id = ?", (request_id,))


@pytest.mark.parametrize(
    "request_id", ["has space", "A" * 129, "semi;colon", "new\\nline", "<script>", "ümlaut"]
)
def test_malformed_id_is_replaced(gateway: RunningGateway, request_id: str) -> None:
    response = httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "ok", "messages": HI},
        headers={"X-Request-ID": request_id.encode()},
        timeout=10,
    )
    echoed = response.headers["x-request-id"]
    assert GENERATED.match(echoed), echoed
    assert response.headers.get_list("x-request-id") == [echoed]


def test_echoed_on_errors_and_other_endpoints(gateway: RunningGateway) -> None:
    headers = {"X-Request-ID": "err-42"}
    with pytest.raises(openai.NotFoundError) as caught:
        sdk(gateway).chat.completions.create(model="nope", messages=HI, extra_headers=headers)
    assert caught.value.response.headers["x-request-id"] == "err-42"
    for path in ("/health", "/health/ready", "/v1/models", "/no/such/path"):
        response = httpx.get(gateway.url + path, headers={"X-Request-ID": "get-1"}, timeout=10)
        assert response.headers["x-request-id"] == "get-1", path
    malformed = httpx.post(gateway.url + "/v1/chat/completions", content=b"{", headers=headers)
    assert malformed.status_code == 400
    assert malformed.headers["x-request-id"] == "err-42"


def test_route_header_names_the_provider_endpoint(gateway: RunningGateway) -> None:
    assert chat(gateway).headers["x-hybridinference-route"] == "fake/ok"
    assert chat(gateway, "demo").headers["x-hybridinference-route"] == "demo/demo-1"
    with sdk(gateway).chat.completions.with_streaming_response.create(
        model="demo", messages=HI, stream=True
    ) as raw:
        assert raw.headers["x-hybridinference-route"] == "demo/demo-1"
    assert "x-hybridinference-route" not in chat(gateway, "nope").headers


def test_a_reused_client_id_still_gets_its_own_row(gateway: RunningGateway) -> None:
    client = sdk(gateway)
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(
            model="ok", messages=HI, extra_headers={"X-Request-ID": "same-id"}
        )
        assert raw.headers["x-request-id"] == "same-id"
    rows = gateway.wait_rows(3, "request_id LIKE ?", ("same-id%",))
    ids = sorted(r["request_id"] for r in rows)
    assert len(ids) == 3 and ids[0] == "same-id"
    assert all(i.startswith("same-id~") for i in ids[1:])
    assert sum(r["total_tokens"] for r in rows) == 3 * rows[0]["total_tokens"] > 0
