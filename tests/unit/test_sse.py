"""The SSE parser (upstream streams) and encoders (our streams)."""

from __future__ import annotations

import orjson
import pytest

from hybridinference.adapters.sse import (
    DONE,
    SSEEvent,
    SSEParser,
    encode_event,
    encode_named_event,
)


def parse(raw: bytes) -> list[SSEEvent]:
    """Feed ``raw`` line by line, as ``StreamReader.readline`` hands it over."""
    parser = SSEParser()
    events = []
    for line in raw.splitlines(keepends=True):
        event = parser.feed_line(line)
        if event is not None:
            events.append(event)
    last = parser.finish()
    if last is not None:
        events.append(last)
    return events


def test_one_event_per_blank_line() -> None:
    events = parse(b'data: {"a": 1}\n\ndata: {"b": 2}\n\ndata: [DONE]\n\n')
    assert [e.data for e in events] == ['{"a": 1}', '{"b": 2}', "[DONE]"]
    assert all(e.event is None for e in events)


def test_crlf_line_endings() -> None:
    assert [e.data for e in parse(b"data: x\r\n\r\ndata: y\r\n\r\n")] == ["x", "y"]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert [e.data for e in parse(b"data: first\ndata: second\n\n")] == ["first\nsecond"]


def test_comments_and_unknown_fields_are_ignored() -> None:
    raw = b": keep-alive\n\nid: 7\nretry: 100\ndata: x\n\n: OPENROUTER PROCESSING\n\n"
    assert [e.data for e in parse(raw)] == ["x"]


def test_only_one_space_after_the_colon_is_dropped() -> None:
    events = parse(b"data:no-space\n\ndata:  two-spaces\n\n")
    assert [e.data for e in events] == ["no-space", " two-spaces"]


def test_named_events_and_the_name_does_not_leak_into_the_next() -> None:
    raw = b"event: message_start\ndata: {}\n\ndata: plain\n\n"
    assert parse(raw) == [SSEEvent("message_start", "{}"), SSEEvent(None, "plain")]


def test_event_without_data_is_not_dispatched_and_its_name_is_forgotten() -> None:
    assert parse(b"event: ping\n\ndata: x\n\n") == [SSEEvent(None, "x")]


def test_blank_lines_alone_dispatch_nothing() -> None:
    assert parse(b"\n\n\r\n") == []


def test_empty_data_line_is_an_event_with_empty_data() -> None:
    assert parse(b"data:\n\n") == [SSEEvent(None, "")]


def test_last_event_without_its_blank_line_still_counts() -> None:
    assert [e.data for e in parse(b"data: a\n\ndata: tail")] == ["a", "tail"]


def test_finish_on_an_empty_parser_is_nothing() -> None:
    assert SSEParser().finish() is None


def test_parser_is_incremental_across_calls() -> None:
    parser = SSEParser()
    assert parser.feed_line(b"data: one\n") is None
    assert parser.feed_line(b"data: two\n") is None
    assert parser.feed_line(b"\n") == SSEEvent(None, "one\ntwo")
    assert parser.feed_line(b"\n") is None


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert parse(b"data: \xff\xfe\n\n") == [SSEEvent(None, "\ufffd\ufffd")]


def test_utf8_text_survives() -> None:
    payload = {"choices": [{"delta": {"content": "héllo 世界 🚀"}}]}
    (event,) = parse(encode_event(payload))
    assert orjson.loads(event.data) == payload


@pytest.mark.parametrize(
    "payload", [{"a": 1}, {"text": "line one\nline two"}, {"nested": {"x": [1, 2]}}]
)
def test_encode_event_round_trips_and_is_one_data_line(payload: dict[str, object]) -> None:
    encoded = encode_event(payload)
    assert encoded.startswith(b"data: ") and encoded.endswith(b"\n\n")
    assert encoded.count(b"\n") == 2  # JSON escapes newlines: one line per event
    (event,) = parse(encoded)
    assert orjson.loads(event.data) == payload


def test_encode_named_event() -> None:
    encoded = encode_named_event("content_block_delta", {"x": 1})
    assert encoded == b'event: content_block_delta\ndata: {"x":1}\n\n'
    assert parse(encoded) == [SSEEvent("content_block_delta", '{"x":1}')]


def test_done_marker() -> None:
    assert parse(DONE) == [SSEEvent(None, "[DONE]")]
