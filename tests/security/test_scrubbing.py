"""Upstream error text is relayed to clients, so it is scrubbed of credential shapes
first: in a status error's body and in every adapter's mid-stream error event."""

from __future__ import annotations

import orjson
import pytest

from hybridinference.adapters.http import error_for_status, scrub_credentials
from hybridinference.adapters.ollama_response import OllamaStreamDecoder
from hybridinference.errors import UpstreamError

QUOTED = [
    "you sent Authorization: Bearer sk-live-0123456789abcdef",
    "invalid x-api-key: sk-ant-api03-abcdefghijklmnop",
    "key=AIzaSyA1234567890abcdefghij is not valid",
    'got {"api_key": "hi-abcdefghijklmnopqrstuvwxyz"}',
]
SECRETS = [
    "0123456789abcdef",
    "api03-abcdefghijklmnop",
    "A1234567890abcdefghij",
    "abcdefghijklmnopq",
]


@pytest.mark.parametrize(("text", "secret"), list(zip(QUOTED, SECRETS, strict=True)))
def test_credential_shapes_are_scrubbed(text: str, secret: str) -> None:
    scrubbed = scrub_credentials(text)
    assert secret not in scrubbed
    assert "[REDACTED]" in scrubbed


def test_ordinary_messages_are_left_alone() -> None:
    text = "max_tokens must be at most 4096 (got 5000); see the docs"
    assert scrub_credentials(text) == text


@pytest.mark.parametrize("text", QUOTED)
def test_status_errors_relay_the_message_without_the_credential(text: str) -> None:
    body = orjson.dumps({"error": {"message": text}})
    error = error_for_status(400, body, None, "route")
    assert "[REDACTED]" in error.message
    assert all(secret not in error.message for secret in SECRETS)


def test_mid_stream_errors_are_scrubbed_too() -> None:
    decoder = OllamaStreamDecoder("local", 0, lambda: "x")
    with pytest.raises(UpstreamError) as caught:
        decoder.feed({"error": QUOTED[0]})
    assert "0123456789abcdef" not in caught.value.message
