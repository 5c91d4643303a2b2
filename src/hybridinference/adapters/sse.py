"""Server-sent events: an incremental parser for upstream streams and the encoder for ours."""

from __future__ import annotations

from dataclasses import dataclass, field

import orjson

DONE = b"data: [DONE]\n\n"


def encode_event(data: object) -> bytes:
    return b"data: " + orjson.dumps(data) + b"\n\n"


def encode_named_event(event: str, data: object) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


@dataclass(slots=True)
class SSEEvent:
    event: str | None
    data: str


@dataclass(slots=True)
class SSEParser:
    """Feed it lines (with or without their line ending); it returns whole events.

    Follows the WHATWG rules that matter for LLM streams: ``data:`` lines of one event are
    joined with newlines, a blank line ends the event, ``:`` lines are comments, and one
    space after the colon is dropped.
    """

    _event: str | None = None
    _data: list[str] = field(default_factory=list)

    def feed_line(self, raw: bytes) -> SSEEvent | None:
        line = raw.rstrip(b"\r\n").decode("utf-8", errors="replace")
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None

    def finish(self) -> SSEEvent | None:
        """The stream ended: a last event without its blank line still counts."""
        return self._dispatch()

    def _dispatch(self) -> SSEEvent | None:
        if not self._data:
            self._event = None
            return None
        event = SSEEvent(self._event, "\n".join(self._data))
        self._event = None
        self._data = []
        return event
