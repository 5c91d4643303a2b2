"""The fake Ollama upstream is faithful: the official ``ollama`` client parses all it
sends (chat, NDJSON streams, tool calls, thinking, embeddings, tags) and raises on what
it refuses."""

from __future__ import annotations

from collections.abc import Iterator

import ollama
import pytest

from tests.fakes.ollama_upstream import FINAL, THOUGHT, FakeOllamaUpstream
from tests.fakes.servers import run_aiohttp

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def client() -> Iterator[ollama.Client]:
    fake = FakeOllamaUpstream()
    running = run_aiohttp(fake.app)
    yield ollama.Client(host=running.url)
    running.stop()


def test_chat_plain_and_streamed(client: ollama.Client) -> None:
    reply = client.chat(model="thinking", messages=HI, stream=False)
    assert reply.message.content == "Hello from the fake Ollama upstream."
    assert reply.message.thinking == THOUGHT
    assert (reply.prompt_eval_count, reply.eval_count, reply.done_reason) == (9, 6, "stop")
    parts = list(client.chat(model="ok", messages=HI, stream=True))
    assert "".join(p.message.content or "" for p in parts) == reply.message.content
    assert parts[-1].done and not any(p.done for p in parts[:-1])


def test_tool_calls_and_results(client: ollama.Client) -> None:
    first = client.chat(model="tools", messages=HI, stream=False)
    calls = first.message.tool_calls or []
    assert [(c.function.name, dict(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"tz": "CET"}),
    ]
    history = [
        *HI,
        first.message,
        {"role": "tool", "content": "sunny", "tool_name": "get_weather"},
        {"role": "tool", "content": "14:00", "tool_name": "get_time"},
    ]
    final = client.chat(model="tools", messages=history, stream=False)
    assert final.message.content == FINAL


def test_embed_tags_and_errors(client: ollama.Client) -> None:
    embedded = client.embed(model="e", input=["abc", "hello"])
    assert [list(v) for v in embedded.embeddings] == [[3.0, 0.5, -1.0], [5.0, 0.5, -1.0]]
    assert [m.model for m in client.list().models] == ["ok:latest"]
    with pytest.raises(ollama.ResponseError) as missing:
        client.chat(model="missing", messages=HI, stream=False)
    assert missing.value.status_code == 404 and "not found" in missing.value.error
    with pytest.raises(ollama.ResponseError, match="encountered"):
        list(client.chat(model="error-midstream", messages=HI, stream=True))
