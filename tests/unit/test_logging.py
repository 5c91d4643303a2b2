"""Structured logs: JSON lines with request id (from the request's context), extra
fields and exceptions; secrets scrubbed whether known by value or by shape."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import orjson
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from hybridinference.config import parse_config
from hybridinference.observability.logging import (
    REDACTED,
    REQUEST_ID,
    Redactor,
    configure_logging,
    secret_values,
)


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging("json", "debug", ["upstream-key-abcdef123456", "admin-token-xyz987"], stream)
    try:
        yield logging.getLogger("hybridinference.test"), stream
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


def test_json_line_with_request_id_and_extras(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    log, stream = captured
    token = REQUEST_ID.set("req-123")
    try:
        log.warning("upstream %s failed", "fake/ok", extra={"route": "fake/ok", "attempt": 2})
    finally:
        REQUEST_ID.reset(token)
    log.info("outside a request")
    first, second = lines(stream)
    assert first["level"] == "warning"
    assert first["logger"] == "hybridinference.test"
    assert first["msg"] == "upstream fake/ok failed"
    assert first["request_id"] == "req-123"
    assert first["route"] == "fake/ok" and first["attempt"] == 2
    assert str(first["ts"]).endswith("Z")
    assert "request_id" not in second


def test_known_secrets_and_credential_shapes_are_scrubbed(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    log, stream = captured
    log.error("calling with key upstream-key-abcdef123456 and admin-token-xyz987")
    log.error("header Authorization: Bearer abcdefghijklmnopqrstuvwxyz0123")
    log.error("a client key hi-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA leaked")
    log.error("config api_key=sk-live-should-not-appear-anywhere")
    try:
        raise ValueError("boom upstream-key-abcdef123456")
    except ValueError:
        log.exception("failed")
    text = stream.getvalue()
    for secret in (
        "upstream-key-abcdef123456",
        "admin-token-xyz987",
        "abcdefghijklmnopqrstuvwxyz0123",
        "hi-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "sk-live-should-not-appear-anywhere",
    ):
        assert secret not in text
    entries = lines(stream)
    assert entries[0]["msg"] == f"calling with key {REDACTED} and {REDACTED}"
    assert "Bearer [REDACTED]" in str(entries[1]["msg"])
    assert "ValueError" in str(entries[-1]["exc"])
    assert len(entries) == 5


def test_ordinary_text_is_left_alone() -> None:
    redact = Redactor(["short", "x"])  # too short to scrub safely
    text = "max_tokens=100 prompt_tokens: 7 a short hi-there note"
    assert redact(text) == text


def test_secret_values_come_from_the_config_and_secret_named_env() -> None:
    env = {
        "FAKE_KEY": "value-of-fake-key",
        "HYBRIDINFERENCE_ADMIN_TOKEN": "value-of-admin",
        "SOME_DB_PASSWORD": "value-of-password",
        "HOME": "/root",
    }
    config = parse_config(
        {
            "providers": {
                "fake": {"kind": "openai", "base_url": "http://x/v1", "api_key_env": "FAKE_KEY"}
            }
        },
        env,
        "test",
    )
    values = set(secret_values(config, env))
    assert values == {"value-of-fake-key", "value-of-admin", "value-of-password"}


def test_text_format_also_scrubs() -> None:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging("text", "info", ["topsecretvalue"], stream)
    try:
        logging.getLogger("t").info("value topsecretvalue here")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert "topsecretvalue" not in stream.getvalue()
    assert REDACTED in stream.getvalue()


def test_trace_id_of_the_current_span(captured: tuple[logging.Logger, io.StringIO]) -> None:
    log, stream = captured
    tracer = TracerProvider().get_tracer("test")  # never installed process-wide
    span = tracer.start_span("request")
    with trace.use_span(span, end_on_exit=True):
        log.info("inside a traced request")
    log.info("after it")
    inside, after = lines(stream)
    assert inside["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert len(str(inside["trace_id"])) == 32
    assert "trace_id" not in after
