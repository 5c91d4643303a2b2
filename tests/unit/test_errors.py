"""Error mapping: upstream statuses and transport failures become gateway errors in one
place (``adapters.http``), and the error tree carries status, type and retryability."""

from __future__ import annotations

import asyncio
import socket

import orjson
import pytest

from hybridinference.adapters import h1
from hybridinference.adapters.http import error_for_status, map_transport_errors
from hybridinference.errors import (
    AllRoutesFailed,
    FailedAttempt,
    GatewayError,
    InvalidRequest,
    ModelNotFound,
    UpstreamError,
    UpstreamProtocolError,
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamServerError,
    UpstreamTimeout,
    UpstreamUnavailable,
)

ROUTE = "acme/model-x"


def openai_error(message: str) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": "x", "param": None, "code": None}})


@pytest.mark.parametrize(
    ("status", "cls", "gateway_status", "retryable"),
    [
        (429, UpstreamRateLimited, 429, True),
        (408, UpstreamTimeout, 504, True),
        (504, UpstreamTimeout, 504, True),
        (500, UpstreamServerError, 502, True),
        (502, UpstreamServerError, 502, True),
        (503, UpstreamServerError, 502, True),
        (529, UpstreamServerError, 502, True),  # Anthropic's "overloaded"
        (404, UpstreamServerError, 502, True),  # our config names a model it does not serve
        (401, UpstreamUnavailable, 502, True),  # the gateway's credentials, not the client's
        (403, UpstreamUnavailable, 502, True),
        (402, UpstreamUnavailable, 502, True),  # our account is out of credit
        (302, UpstreamServerError, 502, True),
        (400, UpstreamRejected, 400, False),  # the request itself: no other route will take it
        (413, UpstreamRejected, 413, False),
        (422, UpstreamRejected, 422, False),
    ],
)
def test_error_for_status(
    status: int, cls: type[UpstreamError], gateway_status: int, retryable: bool
) -> None:
    error = error_for_status(status, openai_error("details here"), None, ROUTE)
    assert type(error) is cls
    assert error.status_code == gateway_status
    assert error.retryable is retryable
    assert ROUTE in error.message


def test_rate_limit_keeps_retry_after_seconds() -> None:
    error = error_for_status(429, openai_error("slow down"), "7", ROUTE)
    assert error.retry_after == 7.0
    assert error.headers() == {"Retry-After": "7"}
    assert error.error_type == "rate_limit_error"
    assert "slow down" in error.message


@pytest.mark.parametrize(
    ("value", "header"),
    [(None, None), ("soon", None), ("-3", "1"), ("0.2", "1"), ("2.6", "3")],
)
def test_retry_after_parsing(value: str | None, header: str | None) -> None:
    error = error_for_status(429, b"", value, ROUTE)
    assert error.headers().get("Retry-After") == header


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (openai_error("model overloaded"), "model overloaded"),
        (b'{"error": "plain string error"}', "plain string error"),
        (b'{"message": "top-level message"}', "top-level message"),
        (b'{"detail": "fastapi style"}', "fastapi style"),
        (b"<html>502 Bad Gateway</html>", None),
        (b"", None),
        (b'["not", "an", "object"]', None),
        (b'{"error": {"message": 42}}', None),
    ],
)
def test_upstream_message_is_carried_when_there_is_one(body: bytes, detail: str | None) -> None:
    error = error_for_status(500, body, None, ROUTE)
    if detail is None:
        assert error.message == f"{ROUTE} failed (HTTP 500)"
    else:
        assert error.message.endswith(f": {detail}")
    assert "<html>" not in error.message


def test_upstream_message_is_truncated() -> None:
    error = error_for_status(400, openai_error("x" * 10_000), None, ROUTE)
    assert len(error.message) < 700


@pytest.mark.parametrize("status", [401, 403])
def test_refused_credentials_never_echo_the_upstream_body(status: int) -> None:
    body = openai_error("Incorrect API key provided: sk-upstr*****cret")
    error = error_for_status(status, body, None, ROUTE)
    assert "sk-" not in error.message and "Incorrect" not in error.message


def _raise(exc: BaseException) -> None:
    with map_transport_errors(ROUTE):
        raise exc


@pytest.mark.parametrize(
    ("raised", "cls"),
    [
        (TimeoutError(), UpstreamTimeout),
        (h1.ConnectionClosed("closed"), UpstreamUnavailable),
        (h1.ConnectFailed("connection refused"), UpstreamUnavailable),
        (h1.ProtocolError("malformed response"), UpstreamProtocolError),
        (h1.BodyTooLarge("line over the limit"), UpstreamProtocolError),
        (ConnectionResetError(), UpstreamUnavailable),
        (OSError("network unreachable"), UpstreamUnavailable),
        (orjson.JSONDecodeError("bad", "{", 0), UpstreamProtocolError),
    ],
)
def test_transport_errors_are_mapped_with_their_cause(
    raised: BaseException, cls: type[UpstreamError]
) -> None:
    with pytest.raises(cls) as caught:
        _raise(raised)
    assert caught.value.__cause__ is raised
    assert ROUTE in caught.value.message
    assert caught.value.retryable


def test_gateway_errors_pass_through_unchanged() -> None:
    original = UpstreamRejected("no", status_code=400)
    with pytest.raises(UpstreamRejected) as caught:
        _raise(original)
    assert caught.value is original


@pytest.mark.parametrize("raised", [asyncio.CancelledError(), KeyboardInterrupt(), ValueError()])
def test_cancellation_and_bugs_are_not_disguised_as_upstream_errors(
    raised: BaseException,
) -> None:
    with pytest.raises(type(raised)):
        _raise(raised)


async def test_connection_refused_is_named_without_the_url() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    pool = h1.ConnectionPool(f"http://user:secret@127.0.0.1:{port}/v1", connect_timeout=2.0)
    with pytest.raises(UpstreamUnavailable) as caught, map_transport_errors(ROUTE):
        await pool.request(b"GET", "/models", b"", b"", 2.0)
    message = caught.value.message
    assert message == f"{ROUTE} is unreachable (connection refused)"
    assert isinstance(caught.value.__cause__, h1.ConnectFailed)


def test_dns_failure_is_named() -> None:
    with pytest.raises(UpstreamUnavailable) as caught:
        _raise(h1.ConnectFailed("DNS lookup failed"))
    assert caught.value.message == f"{ROUTE} is unreachable (DNS lookup failed)"


def test_all_routes_failed_takes_status_and_type_from_the_last_attempt() -> None:
    limited = UpstreamRateLimited("b is rate limited", retry_after=7)
    error = AllRoutesFailed(
        [FailedAttempt("a/x", UpstreamServerError("a failed")), FailedAttempt("b/x", limited)]
    )
    assert (error.status_code, error.error_type, error.code) == (
        429,
        "rate_limit_error",
        "all_routes_failed",
    )
    assert error.headers() == {"Retry-After": "7"}
    assert "a/x: a failed" in error.message and "b/x: b is rate limited" in error.message
    timed_out = AllRoutesFailed([FailedAttempt("a/x", UpstreamTimeout("a timed out"))])
    assert (timed_out.status_code, timed_out.error_type) == (504, "timeout_error")
    down = AllRoutesFailed([FailedAttempt("a/x", UpstreamUnavailable("a is unreachable"))])
    assert (down.status_code, down.error_type) == (502, "upstream_error")


def test_client_errors_are_not_retryable_and_carry_their_field() -> None:
    error = InvalidRequest("bad", param="temperature")
    assert (error.status_code, error.error_type, error.param, error.retryable) == (
        400,
        "invalid_request_error",
        "temperature",
        False,
    )
    assert ModelNotFound("x").status_code == 404
    assert isinstance(ModelNotFound("x"), GatewayError)
