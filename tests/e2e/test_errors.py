"""Every error a client can meet, through the SDK (and raw HTTP where the SDK cannot send
the mistake): the OpenAI envelope, the right status, no traceback, no upstream secret,
one log row each, and the gateway keeps serving after every one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import gateway_config, route
from tests.e2e.helpers import (
    HI,
    assert_clean,
    assert_envelope,
    assert_serving,
    closed_port_url,
    sdk,
    start_gateway,
)
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.fakes.servers import RunningAiohttp, RunningGateway

BODY_LIMIT = 4096
FIRST_BYTE = 0.3


@pytest.fixture(scope="module")
def gw(
    fake_openai: tuple[FakeOpenAIUpstream, RunningAiohttp], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    upstream_url = fake_openai[1].url + "/v1"
    config = gateway_config(upstream_url, tmp_path_factory.mktemp("errors"))
    config["server"] = {"max_body_bytes": BODY_LIMIT}
    # every scripted failure must reach the upstream: no probes marking a provider down, no
    # circuit opening after the failures this module provokes on purpose
    config["health"] = {"probes": False, "failure_threshold": 10_000, "min_samples": 10_000}
    config["providers"]["dead"] = {"kind": "openai", "base_url": closed_port_url()}
    config["providers"]["impatient"] = {
        "kind": "openai",
        "base_url": upstream_url,
        "timeouts": {"connect": 1, "first_byte": FIRST_BYTE, "idle": FIRST_BYTE, "total": 5},
    }
    config["providers"]["stalling"] = {  # a generous first byte, a short gap between chunks
        "kind": "openai",
        "base_url": upstream_url,
        "timeouts": {"connect": 1, "first_byte": 10, "idle": 1, "total": 20},
    }
    scripted = (
        "ratelimit-plain",
        "ratelimit-stream",
        "ratelimit-parked",
        "status-500",
        "status-503",
        "status-400",
        "status-401",
        "garbage",
        "error-midstream",
        "disconnect-midstream",
        "truncated",
    )
    config["models"] += [{"name": m, "routes": [route("fake", m)]} for m in scripted]
    config["models"] += [
        {"name": "refused", "routes": [route("dead", "ok")]},
        {"name": "timeout", "routes": [route("impatient", "hang")]},
        {"name": "stall", "routes": [route("stalling", "hang-midstream-stall")]},
        {
            "name": "failover",
            # weight 0 sorts last: the failing route is always tried first
            "routes": [route("fake", "status-503-fo", weight=1), route("fake", "ok", weight=0)],
        },
        {
            "name": "failover-refused",
            "routes": [route("dead", "ok", weight=1), route("fake", "ok", weight=0)],
        },
        {
            "name": "all-fail",
            "routes": [route("fake", "status-500-all", weight=1), route("dead", "ok", weight=0)],
        },
    ]
    running = start_gateway(config)
    yield running
    running.stop()


def post(gw: RunningGateway, body: bytes | str, **headers: str) -> httpx.Response:
    return httpx.post(
        gw.url + "/v1/chat/completions",
        content=body,
        headers={"content-type": "application/json", **headers},
        timeout=10,
    )


def one_row(gw: RunningGateway, request_id: str) -> dict[str, Any]:
    rows = gw.wait_rows(1, "request_id = ?", (request_id,))
    assert len(rows) == 1, rows
    return rows[0]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ('{"model": "ok", "messages": [', "not valid JSON"),
        ("", "empty"),
        ('["model", "ok"]', "JSON object"),
        ("\xff\xfe", "not valid JSON"),
    ],
)
def test_malformed_body_is_400(gw: RunningGateway, body: str, fragment: str) -> None:
    response = post(gw, body.encode("latin-1"), **{"X-Request-ID": f"bad-{hash(body)}"})
    error = assert_envelope(response, 400, "invalid_request_error")
    assert fragment in error["message"]
    row = one_row(gw, f"bad-{hash(body)}")
    assert (row["status"], row["error_type"]) == (400, "invalid_request")
    assert_serving(gw)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"temperature": "hot"}, "temperature"),
        ({"max_tokens": "many"}, "max_tokens"),
        ({"max_tokens": -1}, "max_tokens"),
        ({"messages": "hi"}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages.0.role"),
        ({"stream": "false"}, "stream"),
        ({"stream_options": {"include_usage": "maybe"}}, "stream_options.include_usage"),
        ({"tools": "all of them"}, "tools"),
        ({"model": 42}, "model"),
        # fields that take several types: named without pydantic's union member
        ({"stop": 5}, "stop"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content"),
        ({"tool_choice": 1}, "tool_choice"),
    ],
)
def test_wrong_types_are_400_naming_the_field(
    gw: RunningGateway, fields: dict[str, Any], param: str
) -> None:
    body = {"model": "ok", "messages": HI, **fields}
    with pytest.raises(openai.BadRequestError) as caught:
        sdk(gw).chat.completions.create(**body)
    assert caught.value.param == param
    assert caught.value.code in ("invalid_value", "invalid_type")
    error = assert_envelope(caught.value.response, 400, "invalid_request_error", param)  # type: ignore[arg-type]
    assert param in error["message"]
    assert_serving(gw)


def test_a_field_of_several_types_lists_them(gw: RunningGateway) -> None:
    response = post(gw, json.dumps({"model": "ok", "messages": HI, "stop": 5}))
    error = assert_envelope(response, 400, "invalid_request_error", "stop")
    assert error["message"] == "Invalid type for 'stop': expected a string or an array."
    assert error["code"] == "invalid_type"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": HI}, "model"),
        ({"model": "ok"}, "messages"),
        ({"model": "ok", "messages": [{"content": "no role"}]}, "messages.0.role"),
    ],
)
def test_missing_required_field_is_400(
    gw: RunningGateway, body: dict[str, Any], param: str
) -> None:
    error = assert_envelope(post(gw, json.dumps(body)), 400, "invalid_request_error", param)
    assert error["code"] == "missing_required_parameter"
    assert_serving(gw)


def test_body_over_the_limit_is_413(gw: RunningGateway) -> None:
    big = [{"role": "user", "content": "x" * BODY_LIMIT}]
    with pytest.raises(openai.APIStatusError) as caught:
        sdk(gw).chat.completions.create(
            model="ok", messages=big, extra_headers={"X-Request-ID": "too-big"}
        )
    assert caught.value.status_code == 413
    assert_envelope(caught.value.response, 413, "invalid_request_error")  # type: ignore[arg-type]
    assert one_row(gw, "too-big")["status"] == 413
    assert_serving(gw)


def test_chunked_body_over_the_limit_is_413(gw: RunningGateway) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "ok", "messages": [{"role": "user", "content": "'
        for _ in range(BODY_LIMIT // 512 + 1):
            yield b"y" * 512
        yield b'"}]}'

    response = httpx.post(
        gw.url + "/v1/chat/completions",
        content=chunks(),
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert "content-length" not in response.request.headers
    assert_envelope(response, 413, "invalid_request_error")
    assert_serving(gw)


def test_unknown_model_is_404(gw: RunningGateway) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        sdk(gw).chat.completions.create(
            model="no-such-model", messages=HI, extra_headers={"X-Request-ID": "unknown"}
        )
    error = assert_envelope(caught.value.response, 404, "not_found_error", "model")  # type: ignore[arg-type]
    assert error["code"] == "model_not_found"
    row = one_row(gw, "unknown")
    assert (row["status"], row["model"], row["route"]) == (404, "no-such-model", None)
    assert_serving(gw)


def test_unknown_path_and_method_are_enveloped(gw: RunningGateway) -> None:
    assert_envelope(httpx.get(gw.url + "/v1/nothing-here"), 404, "not_found_error")
    assert_envelope(httpx.get(gw.url + "/v1/chat/completions"), 405, "invalid_request_error")


# (model, status, OpenAI error type, the SDK's exception)
UPSTREAM_FAILURES = [
    ("status-500", 502, "upstream_error", openai.InternalServerError),
    ("status-503", 502, "upstream_error", openai.InternalServerError),
    ("refused", 502, "upstream_error", openai.InternalServerError),
    ("timeout", 504, "timeout_error", openai.InternalServerError),
    ("ratelimit", 429, "rate_limit_error", openai.RateLimitError),  # -plain / -stream
    ("status-401", 502, "upstream_error", openai.InternalServerError),
    ("status-400", 400, "invalid_request_error", openai.BadRequestError),
    ("all-fail", 502, "upstream_error", openai.InternalServerError),
]


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("model", "status", "error_type", "exc"), UPSTREAM_FAILURES)
def test_upstream_failures_map_to_gateway_errors(
    gw: RunningGateway,
    model: str,
    status: int,
    error_type: str,
    exc: type[openai.APIStatusError],
    stream: bool,
) -> None:
    request_id = f"up-{model}-{stream}"
    if model == "ratelimit":  # a 429 parks the route: one model per case
        model += "-stream" if stream else "-plain"
    with pytest.raises(exc) as caught:
        created = sdk(gw).chat.completions.create(
            model=model, messages=HI, stream=stream, extra_headers={"X-Request-ID": request_id}
        )
        list(created)  # type: ignore[call-overload]
    assert caught.value.status_code == status
    assert_envelope(caught.value.response, status, error_type)  # type: ignore[arg-type]
    if model.startswith("ratelimit"):
        assert caught.value.response.headers["retry-after"] == "7"
    row = one_row(gw, request_id)
    assert row["status"] == status
    assert row["error_type"]
    assert row["stream"] == int(stream)
    assert row["total_tokens"] == 0
    assert_serving(gw)


def test_rate_limited_route_is_parked_and_clients_are_told_when_to_retry(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    client = sdk(gw)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="ratelimit-parked", messages=HI)
    sent = len(upstream.log.bodies("ratelimit-parked"))
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model="ratelimit-parked", messages=HI)
    assert caught.value.status_code in (429, 503)
    assert 1 <= int(caught.value.response.headers["retry-after"]) <= 7
    assert_envelope(caught.value.response, caught.value.status_code)  # type: ignore[arg-type]
    assert len(upstream.log.bodies("ratelimit-parked")) == sent  # not sent upstream again
    assert_serving(gw)


def test_garbage_body_is_502(gw: RunningGateway) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        sdk(gw).chat.completions.create(model="garbage", messages=HI)
    error = assert_envelope(caught.value.response, 502, "upstream_error")  # type: ignore[arg-type]
    assert "<html>" not in error["message"]
    assert_serving(gw)


def test_upstream_rejection_is_not_retried_on_another_route(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    before = len(upstream.log.bodies("status-400"))
    with pytest.raises(openai.BadRequestError):
        sdk(gw).chat.completions.create(model="status-400", messages=HI)
    assert len(upstream.log.bodies("status-400")) == before + 1


@pytest.mark.parametrize("model", ["failover", "failover-refused"])
@pytest.mark.parametrize("stream", [False, True])
def test_retryable_failure_before_first_byte_fails_over(
    gw: RunningGateway, model: str, stream: bool
) -> None:
    request_id = f"fo-{model}-{stream}"
    with sdk(gw).chat.completions.with_streaming_response.create(
        model=model, messages=HI, stream=stream, extra_headers={"X-Request-ID": request_id}
    ) as raw:
        assert raw.headers["x-hybridinference-route"] == "fake/ok"
        parsed = raw.parse()
        if stream:
            text = "".join(c.choices[0].delta.content or "" for c in parsed if c.choices)  # type: ignore[union-attr]
        else:
            text = parsed.choices[0].message.content  # type: ignore[union-attr]
    assert text == "Hello from the fake upstream."
    row = one_row(gw, request_id)
    assert (row["status"], row["route"], row["total_tokens"]) == (200, "fake/ok", 13)
    attempts = json.loads(row["attempts"])
    assert len(attempts) == 2
    assert attempts[0]["outcome"] != "ok" and attempts[0]["route"] != "fake/ok"
    assert attempts[1]["route"] == "fake/ok" and attempts[1]["outcome"] == "ok"


def test_all_routes_failing_names_routes_but_no_url(gw: RunningGateway) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        sdk(gw).chat.completions.create(model="all-fail", messages=HI)
    message = caught.value.response.json()["error"]["message"]
    assert "fake/status-500-all" in message and "dead/ok" in message
    assert "127.0.0.1" not in message and "http" not in message


@pytest.mark.parametrize(
    "model", ["error-midstream", "disconnect-midstream", "truncated", "stall", "garbage"]
)
def test_failure_mid_stream_becomes_an_in_band_error_event(gw: RunningGateway, model: str) -> None:
    request_id = f"mid-{model}"
    received: list[str] = []
    with (
        sdk(gw).chat.completions.with_streaming_response.create(
            model=model, messages=HI, stream=True, extra_headers={"X-Request-ID": request_id}
        ) as raw,
    ):
        assert raw.status_code == 200
        with pytest.raises(openai.APIError) as caught:
            for chunk in raw.parse():
                received.append(chunk.choices[0].delta.content or "" if chunk.choices else "")
    # what came before the failure was relayed (a dropped connection may lose its tail)
    assert "Hello from".startswith("".join(received))
    if model != "disconnect-midstream":
        assert "".join(received) == "Hello from"
    body = caught.value.body
    assert isinstance(body, dict) and set(body) == {"message", "type", "param", "code"}
    assert "sk-upstream-secret" not in json.dumps(body)
    row = one_row(gw, request_id)
    assert row["status"] in (502, 504)
    assert row["error_type"]
    assert row["stream"] == 1
    assert row["route"] is not None
    assert_serving(gw)


def test_error_responses_never_leak_the_upstream_key(gw: RunningGateway) -> None:
    for model in ("status-401", "refused", "garbage"):
        response = post(gw, json.dumps({"model": model, "messages": HI}))
        assert response.status_code >= 400
        assert_clean(response)
