"""Chat completions through the official SDK (strict validation): plain and streamed,
tool calls, usage, forwarded extras, unbuffered streaming, and the log row of each."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import GatewayFactory
from tests.e2e.helpers import HI, UPSTREAM_SECRET, config_with, sdk
from tests.fakes.openai_upstream import TOOL_CALLS, WORDS, FakeOpenAIUpstream
from tests.fakes.servers import RunningGateway

ANSWER = "".join(WORDS)
# the fake's usage: 7 prompt + 6 completion tokens; "ok" costs $1 / $2 per 1M tokens
USAGE = {"prompt_tokens": 7, "completion_tokens": 6, "total_tokens": 13}
COST = (7 * 1.0 + 6 * 2.0) / 1_000_000


def row_for(gateway: RunningGateway, request_id: str) -> dict[str, Any]:
    rows = gateway.wait_rows(1, "request_id = ?", (request_id,))
    assert len(rows) == 1, rows
    return rows[0]


def assert_logged_usage(row: dict[str, Any], stream: bool) -> None:
    assert row["status"] == 200
    assert row["error_type"] is None
    assert row["route"] == "fake/ok"
    assert row["model"] == "ok"
    assert row["stream"] == int(stream)
    assert {k: row[k] for k in USAGE} == USAGE
    assert row["cost"] == pytest.approx(COST)
    assert row["ttft_ms"] is not None and row["ttft_ms"] <= row["latency_ms"]
    attempts = json.loads(row["attempts"])
    assert [(a["route"], a["outcome"]) for a in attempts] == [("fake/ok", "ok")]


def test_plain_chat_answers_and_logs_tokens_and_cost(gateway: RunningGateway) -> None:
    raw = sdk(gateway).chat.completions.with_raw_response.create(
        model="ok", messages=HI, extra_headers={"X-Request-ID": "plain-1"}
    )
    reply = raw.parse()
    assert reply.choices[0].message.content == ANSWER
    assert reply.choices[0].finish_reason == "stop"
    assert reply.model == "ok"
    assert reply.usage is not None and reply.usage.model_dump(exclude_none=True) == USAGE
    assert raw.headers["x-request-id"] == "plain-1"
    assert raw.headers["x-hybridinference-route"] == "fake/ok"
    assert_logged_usage(row_for(gateway, "plain-1"), stream=False)


def test_stream_without_include_usage_has_no_usage_chunk_but_logs_tokens(
    gateway: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    chunks = list(
        sdk(gateway).chat.completions.create(
            model="ok", messages=HI, stream=True, extra_headers={"X-Request-ID": "s-nousage"}
        )
    )
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)  # the usage-only chunk was not passed on
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == ANSWER
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.model == "ok" for c in chunks)
    # the gateway asked the upstream for usage on its own behalf
    assert upstream.log.received[-1].body["stream_options"] == {"include_usage": True}
    assert_logged_usage(row_for(gateway, "s-nousage"), stream=True)


def test_stream_with_include_usage_ends_with_one_usage_chunk(gateway: RunningGateway) -> None:
    with sdk(gateway).chat.completions.with_streaming_response.create(
        model="ok",
        messages=HI,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers={"X-Request-ID": "s-usage"},
    ) as raw:
        assert raw.headers["content-type"].startswith("text/event-stream")
        assert raw.headers["cache-control"].startswith("no-cache")
        assert raw.headers["x-accel-buffering"] == "no"
        assert raw.headers["x-hybridinference-route"] == "fake/ok"
        assert raw.headers["x-request-id"] == "s-usage"
        chunks = list(raw.parse())
    with_usage = [c for c in chunks if c.usage is not None]
    assert with_usage == [chunks[-1]]
    assert chunks[-1].choices == []
    usage = chunks[-1].usage
    assert usage is not None and usage.model_dump(exclude_none=True) == USAGE
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    assert_logged_usage(row_for(gateway, "s-usage"), stream=True)


def test_streamed_and_plain_requests_log_equal_tokens_and_cost(gateway: RunningGateway) -> None:
    client = sdk(gateway)
    client.chat.completions.create(model="ok", messages=HI, extra_headers={"X-Request-ID": "eq-1"})
    list(
        client.chat.completions.create(
            model="ok", messages=HI, stream=True, extra_headers={"X-Request-ID": "eq-2"}
        )
    )
    plain, streamed = row_for(gateway, "eq-1"), row_for(gateway, "eq-2")
    keys = ("prompt_tokens", "completion_tokens", "total_tokens", "cost", "route")
    assert {k: plain[k] for k in keys} == {k: streamed[k] for k in keys}
    assert plain["cost"] > 0
    assert (plain["stream"], streamed["stream"]) == (0, 1)


def test_plain_chat_returns_two_parallel_tool_calls(gateway: RunningGateway) -> None:
    reply = sdk(gateway).chat.completions.create(
        model="tools",
        messages=HI,
        tools=[
            {"type": "function", "function": {"name": "get_weather", "parameters": {}}},
            {"type": "function", "function": {"name": "get_time", "parameters": {}}},
        ],
        parallel_tool_calls=True,
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    calls = choice.message.tool_calls or []
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [  # type: ignore[union-attr]
        (t["id"], t["function"]["name"], t["function"]["arguments"]) for t in TOOL_CALLS
    ]


def test_streamed_tool_call_argument_deltas_reassemble(gateway: RunningGateway) -> None:
    stream = sdk(gateway).chat.completions.create(model="tools", messages=HI, stream=True)
    calls: dict[int, dict[str, str]] = {}
    finish = None
    deltas = 0
    for chunk in stream:
        for choice in chunk.choices:
            finish = choice.finish_reason or finish
            for delta in choice.delta.tool_calls or []:
                deltas += 1
                call = calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
                call["id"] += delta.id or ""
                if delta.function is not None:
                    call["name"] += delta.function.name or ""
                    call["arguments"] += delta.function.arguments or ""
    assert finish == "tool_calls"
    assert deltas == 6  # head + two argument halves per call: passed through, not merged
    assert [calls[i] for i in sorted(calls)] == [
        {"id": t["id"], "name": t["function"]["name"], "arguments": t["function"]["arguments"]}
        for t in TOOL_CALLS
    ]
    assert [json.loads(calls[i]["arguments"]) for i in sorted(calls)] == [
        {"city": "Paris"},
        {"tz": "CET"},
    ]


EXTRAS: dict[str, Any] = {
    "top_k": 5,
    "min_p": 0.05,
    "repetition_penalty": 1.1,
    "chat_template_kwargs": {"enable_thinking": False, "nested": {"list": [1, "two", None]}},
    "guided_json": {"type": "object"},
}


@pytest.mark.parametrize("stream", [False, True])
def test_unknown_fields_reach_the_upstream_untouched(
    gateway: RunningGateway, upstream: FakeOpenAIUpstream, stream: bool
) -> None:
    client = sdk(gateway, api_key="client-key-must-not-be-forwarded")
    request_id = f"extras-{stream}"
    created = client.chat.completions.create(
        model="ok",
        messages=[{"role": "user", "content": "hi", "extra_message_field": "x"}],  # type: ignore[misc]
        temperature=0.5,
        stream=stream,
        extra_body=EXTRAS,
        extra_headers={"X-Request-ID": request_id},
    )
    if stream:
        list(created)  # type: ignore[arg-type]
    received = upstream.log.received[-1]
    assert received.path == "/v1/chat/completions"
    body = received.body
    for name, value in EXTRAS.items():
        assert body[name] == value
    assert body["messages"] == [{"role": "user", "content": "hi", "extra_message_field": "x"}]
    assert body["temperature"] == 0.5
    assert body["model"] == "ok"
    assert received.headers["Authorization"] == f"Bearer {UPSTREAM_SECRET}"
    assert "client-key-must-not-be-forwarded" not in json.dumps(received.headers)
    if stream:
        assert body["stream"] is True
        assert body["stream_options"] == {"include_usage": True}
    else:
        assert "stream_options" not in body


def test_stream_include_usage_false_still_asks_upstream_for_usage(
    gateway: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    chunks = list(
        sdk(gateway).chat.completions.create(
            model="ok",
            messages=HI,
            stream=True,
            stream_options={"include_usage": False},
            extra_headers={"X-Request-ID": "s-false"},
        )
    )
    assert all(c.usage is None for c in chunks)
    assert upstream.log.received[-1].body["stream_options"] == {"include_usage": True}
    assert row_for(gateway, "s-false")["total_tokens"] == 13


def test_stream_is_relayed_chunk_by_chunk_before_the_upstream_finishes(
    make_gateway: GatewayFactory, upstream_url: str, tmp_path: Path, upstream: FakeOpenAIUpstream
) -> None:
    model = "drip-150-unbuffered"
    gateway = make_gateway(config_with(upstream_url, tmp_path, model))
    seen: list[tuple[str, int, bool]] = []  # (content, words sent upstream, upstream done)
    for chunk in sdk(gateway).chat.completions.create(model=model, messages=HI, stream=True):
        done = any(m == model for m, _ in upstream.log.completed)
        content = chunk.choices[0].delta.content if chunk.choices else None
        seen.append((content or "", upstream.log.progress.get(model, 0), done))
    words = [content for content, _, _ in seen if content]
    assert words == list(WORDS)  # intact, in order, one event per upstream chunk
    first_word = next(i for i, (content, _, _) in enumerate(seen) if content)
    _, sent_then, done_then = seen[first_word]
    assert not done_then
    assert sent_then < len(WORDS)  # the first word reached us before the upstream's last
    progress = [sent for _, sent, _ in seen]
    assert progress == sorted(progress)
    assert any(m == model for m, _ in upstream.log.completed)


@pytest.mark.parametrize("kib", [200, 1024])
def test_a_huge_stream_event_is_relayed_whole(
    make_gateway: GatewayFactory, upstream_url: str, tmp_path: Path, kib: int
) -> None:
    # one SSE event far larger than a socket read: e.g. a whole tool call's arguments
    model = f"big-{kib}"
    gateway = make_gateway(config_with(upstream_url, tmp_path, model))
    chunks = list(sdk(gateway).chat.completions.create(model=model, messages=HI, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "x" * 1024 * kib + ANSWER


def test_demo_model_plain_and_streamed_agree(gateway: RunningGateway) -> None:
    client = sdk(gateway)
    messages = [{"role": "user", "content": "Tell me about routing."}]
    plain = client.chat.completions.create(model="demo", messages=messages)  # type: ignore[arg-type]
    again = client.chat.completions.create(model="demo", messages=messages)  # type: ignore[arg-type]
    assert plain.choices[0].message.content == again.choices[0].message.content  # deterministic
    chunks = list(
        client.chat.completions.create(model="demo", messages=messages, stream=True)  # type: ignore[arg-type]
    )
    assert all(c.usage is None for c in chunks)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == plain.choices[0].message.content
    with_usage = list(
        client.chat.completions.create(
            model="demo",
            messages=messages,  # type: ignore[arg-type]
            stream=True,
            stream_options={"include_usage": True},
            max_tokens=3,
        )
    )
    assert [c.choices[0].finish_reason for c in with_usage if c.choices][-1] == "length"
    usage = with_usage[-1].usage
    assert usage is not None and usage.completion_tokens == 3
    assert plain.usage is not None and plain.usage.completion_tokens == 8  # the config's cap


def test_parallel_streams_stay_separate_and_each_is_logged(
    make_gateway: GatewayFactory, upstream_url: str, tmp_path: Path
) -> None:
    model = "drip-20-parallel"
    gateway = make_gateway(config_with(upstream_url, tmp_path, model))
    client = sdk(gateway)

    def one(index: int) -> str:
        stream = client.chat.completions.create(
            model=model, messages=HI, stream=True, extra_headers={"X-Request-ID": f"par-{index}"}
        )
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    with ThreadPoolExecutor(max_workers=16) as pool:
        texts = list(pool.map(one, range(16)))
    assert texts == [ANSWER] * 16
    rows = gateway.wait_rows(16)
    assert sorted(r["request_id"] for r in rows) == sorted(f"par-{i}" for i in range(16))
    assert all(r["status"] == 200 and r["total_tokens"] == 13 for r in rows)


def test_first_chunk_reaches_the_client_while_the_upstream_is_still_blocked(
    make_gateway: GatewayFactory, upstream_url: str, tmp_path: Path, upstream: FakeOpenAIUpstream
) -> None:
    # No timing at all: the upstream sends its first word, then waits for the test to
    # release it. Only a relay that does not buffer can show us that word first.
    model = "gated-unbuffered"
    gateway = make_gateway(config_with(upstream_url, tmp_path, model))
    text = ""
    for chunk in sdk(gateway).chat.completions.create(model=model, messages=HI, stream=True):
        text += (chunk.choices[0].delta.content or "") if chunk.choices else ""
        if text == WORDS[0]:
            assert model not in upstream.log.released
            assert upstream.log.progress.get(model, 0) == 1  # the upstream sent one word
            upstream.log.released.add(model)
    assert text == ANSWER
    assert model in upstream.log.released
