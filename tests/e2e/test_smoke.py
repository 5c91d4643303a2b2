"""Smoke: the official SDK against the gateway against the fake upstream."""

from __future__ import annotations

from openai import OpenAI

from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.fakes.servers import RunningGateway


def client(gateway: RunningGateway) -> OpenAI:
    return OpenAI(
        base_url=gateway.url + "/v1",
        api_key="unused",
        max_retries=0,
        _strict_response_validation=True,
    )


def test_chat_plain(gateway: RunningGateway, upstream: FakeOpenAIUpstream) -> None:
    reply = client(gateway).chat.completions.create(
        model="ok", messages=[{"role": "user", "content": "hi"}], extra_body={"top_k": 5}
    )
    assert reply.choices[0].message.content == "Hello from the fake upstream."
    assert reply.model == "ok"
    assert upstream.log.received[-1].body["top_k"] == 5
    rows = gateway.wait_rows(1)
    assert rows[0]["total_tokens"] == 13
    assert rows[0]["route"] == "fake/ok"


def test_chat_stream(gateway: RunningGateway) -> None:
    stream = client(gateway).chat.completions.create(
        model="ok",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the fake upstream."
    assert chunks[-1].usage is not None and chunks[-1].usage.total_tokens == 13
