"""Hypothesis fuzzing of the upstream stream parsers through the upstream client's real
response (``adapters.h1``: the connection's httptools parser feeding the response's line
reader), the way bytes reach them off a socket: an SSE stream (``SSEParser`` fed by
``readline``, as the OpenAI-compatible adapter does) and an Ollama NDJSON stream
(``adapters.upstream.lines`` → ``decode_json`` → ``OllamaStreamDecoder``), each cut into
random pieces at random byte offsets — including inside a multi-byte UTF-8 character and
between CR and LF. Whatever the split, the events (and the OpenAI chunks) are the same as
for the stream read whole; arbitrary bytes never raise anything but the documented
protocol error."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hybridinference.adapters import h1
from hybridinference.adapters.base import Endpoint, UpstreamCall
from hybridinference.adapters.ollama_response import OllamaStreamDecoder
from hybridinference.adapters.sse import SSEEvent, SSEParser
from hybridinference.adapters.upstream import decode_json, lines
from hybridinference.errors import UpstreamError, UpstreamProtocolError

MAX_LINE = 1 << 20
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True) if b > a]


def read_through_h1(pieces: list[bytes], consume: Callable[[h1.Response], Any]) -> Any:
    """Feed a response head and then ``pieces`` (its body) into a real ``h1.Connection``,
    as the socket would, and run ``consume(response)``."""

    async def run() -> Any:
        loop = asyncio.get_running_loop()
        conn = h1.Connection(h1.ConnectionPool("http://127.0.0.1:9", connect_timeout=1), loop)
        response = h1.Response(conn)
        conn.response = response
        length = sum(len(piece) for piece in pieces)
        conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % length)
        for piece in pieces:
            conn.data_received(piece)
        return await consume(response)

    return asyncio.run(run())


async def sse_events(response: h1.Response) -> list[SSEEvent]:
    parser, events = SSEParser(), []
    while True:
        line = await response.readline(MAX_LINE, 5)
        event = parser.feed_line(line) if line else parser.finish()
        if event is not None:
            events.append(event)
        if not line:
            return events


text = st.text(
    alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"), max_size=40
)
sse_event = st.tuples(
    st.one_of(st.none(), st.sampled_from(["message_start", "content_block_delta", "ping"])),
    st.lists(text, min_size=1, max_size=3),
    st.sampled_from([b"\n", b"\r\n"]),
    st.booleans(),  # a comment line before the event
)


def encode_sse(events: list[tuple[str | None, list[str], bytes, bool]]) -> bytes:
    out = b""
    for name, data, eol, comment in events:
        if comment:
            out += b": keep-alive" + eol
        if name is not None:
            out += b"event: " + name.encode() + eol
        for part in data:
            out += b"data: " + part.encode() + eol
        out += eol
    return out


@FUZZ
@given(st.lists(sse_event, max_size=12), st.lists(st.integers(min_value=0), max_size=40))
def test_sse_events_do_not_depend_on_how_the_bytes_were_split(
    events: list[tuple[str | None, list[str], bytes, bool]], cuts: list[int]
) -> None:
    raw = encode_sse(events)
    whole = read_through_h1([raw], sse_events)
    assert read_through_h1(split(raw, cuts), sse_events) == whole
    expected = [SSEEvent(name, "\n".join(data)) for name, data, _, _ in events]
    assert whole == expected


@FUZZ
@given(st.binary(max_size=2000), st.lists(st.integers(min_value=0), max_size=30))
def test_arbitrary_bytes_never_break_the_sse_parser(raw: bytes, cuts: list[int]) -> None:
    whole = read_through_h1([raw], sse_events)
    assert read_through_h1(split(raw, cuts), sse_events) == whole
    for event in whole:
        assert isinstance(event.data, str)


def ollama_chunks(route: str) -> Callable[[h1.Response], Any]:
    async def consume(response: h1.Response) -> list[Any]:
        loop_time = asyncio.get_running_loop().time
        call = UpstreamCall(Endpoint.CHAT, {}, "r", 5, 5, loop_time() + 30)
        ids = iter(range(1000))
        decoder = OllamaStreamDecoder(route, 0, lambda: str(next(ids)))
        out: list[Any] = []
        try:
            async for line in lines(response, call):
                if not line.strip():
                    continue
                data = decode_json(line, route)
                if not isinstance(data, dict):
                    raise UpstreamProtocolError("not an object")
                out.extend(decoder.feed(data))
                if decoder.finished:
                    break
        except UpstreamProtocolError as exc:
            out.append(("protocol-error", exc.message))
        return out

    return consume


ollama_piece = st.fixed_dictionaries(
    {"model": st.just("llama3"), "created_at": st.just("t"), "done": st.just(False)},
    optional={
        "message": st.fixed_dictionaries(
            {"role": st.just("assistant"), "content": text},
            optional={"thinking": text},
        )
    },
)


@FUZZ
@given(
    st.lists(ollama_piece, max_size=10),
    st.lists(st.integers(min_value=0), max_size=40),
    st.sampled_from([b"\n", b"\r\n"]),
)
def test_ndjson_chunks_do_not_depend_on_how_the_bytes_were_split(
    pieces: list[dict[str, Any]], cuts: list[int], eol: bytes
) -> None:
    final = {
        "model": "llama3",
        "done": True,
        "done_reason": "stop",
        "message": {"role": "assistant", "content": ""},
        "prompt_eval_count": 3,
        "eval_count": 4,
    }
    raw = b"".join(orjson.dumps(p) + eol for p in [*pieces, final])
    whole = read_through_h1([raw], ollama_chunks("local"))
    assert read_through_h1(split(raw, cuts), ollama_chunks("local")) == whole
    text_in = "".join(p.get("message", {}).get("content", "") for p in pieces)
    text_out = "".join(
        c["choices"][0]["delta"].get("content") or ""
        for c in whole
        if isinstance(c, dict) and c.get("choices")
    )
    assert text_out == text_in
    assert whole[-1]["usage"]["completion_tokens"] == 4 if whole[-1].get("usage") else True


@FUZZ
@given(st.binary(max_size=1500), st.lists(st.integers(min_value=0), max_size=20))
def test_arbitrary_bytes_give_chunks_or_the_protocol_error(raw: bytes, cuts: list[int]) -> None:
    whole = read_through_h1([raw], ollama_chunks("local"))
    assert read_through_h1(split(raw, cuts), ollama_chunks("local")) == whole


json_value = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=10,
)
ollama_like = st.dictionaries(
    st.sampled_from(["model", "message", "done", "done_reason", "eval_count", "error"]),
    json_value,
)


@FUZZ
@given(st.lists(ollama_like, min_size=1, max_size=5))
def test_odd_ndjson_objects_give_chunks_or_the_protocol_error(objects: list[Any]) -> None:
    raw = b"".join(orjson.dumps(o) + b"\n" for o in objects)
    # an upstream-reported error or a malformed line is mapped; anything else is a crash
    with contextlib.suppress(UpstreamError):
        read_through_h1([raw], ollama_chunks("local"))
