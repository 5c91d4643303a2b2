"""The fake Gemini upstream is faithful: the official ``google-genai`` client parses all
it sends (plain, ``alt=sse`` streams, function calls, thoughts, embeddings) and raises
on what it refuses."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from google import genai
from google.genai import errors, types

from tests.fakes.gemini_upstream import FINAL, SIGNATURE, THOUGHT, FakeGeminiUpstream
from tests.fakes.servers import run_aiohttp

TOOLS = [
    types.Tool(
        function_declarations=[
            types.FunctionDeclaration(name="get_weather"),
            types.FunctionDeclaration(name="get_time"),
        ]
    )
]


@pytest.fixture(scope="module")
def client() -> Iterator[genai.Client]:
    fake = FakeGeminiUpstream()
    running = run_aiohttp(fake.app)
    options = types.HttpOptions(
        base_url=running.url, retry_options=types.HttpRetryOptions(attempts=1)
    )
    yield genai.Client(api_key=fake.api_key, http_options=options)
    running.stop()


def test_plain_and_streamed(client: genai.Client) -> None:
    reply = client.models.generate_content(model="ok", contents="hi")
    assert reply.text == "Hello from the fake Gemini upstream."
    assert reply.usage_metadata is not None and reply.usage_metadata.total_token_count == 17
    pieces = list(client.models.generate_content_stream(model="ok", contents="hi"))
    assert "".join(p.text or "" for p in pieces) == reply.text
    assert pieces[-1].candidates[0].finish_reason == types.FinishReason.STOP  # type: ignore[index]


def test_function_calls_with_thought_signatures(client: genai.Client) -> None:
    config = types.GenerateContentConfig(
        tools=TOOLS, automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True)
    )
    first = client.models.generate_content(
        model="thinking-tools", contents="weather?", config=config
    )
    calls = first.function_calls or []
    assert [(c.name, c.args) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"tz": "CET"}),
    ]
    model_turn = first.candidates[0].content  # type: ignore[index]
    assert model_turn is not None and model_turn.parts is not None
    assert model_turn.parts[0].thought is True and model_turn.parts[0].text == THOUGHT
    assert model_turn.parts[1].thought_signature == base64.b64decode(SIGNATURE)
    results = types.Content(
        role="user",
        parts=[
            types.Part.from_function_response(name=c.name or "", response={"ok": True})
            for c in calls
        ],
    )
    history = [types.Content(role="user", parts=[types.Part(text="weather?")]), model_turn, results]
    final = client.models.generate_content(model="thinking-tools", contents=history, config=config)
    assert final.text == FINAL
    unsigned = types.Content(role="model", parts=[p for p in model_turn.parts if p.function_call])
    for part in unsigned.parts or ():
        part.thought_signature = None
    with pytest.raises(errors.ClientError, match="thought_signature"):
        client.models.generate_content(
            model="thinking-tools", contents=[history[0], unsigned, results], config=config
        )


def test_safety_block_embeddings_and_errors(client: genai.Client) -> None:
    blocked = client.models.generate_content(model="safety", contents="hi")
    assert blocked.prompt_feedback is not None
    assert blocked.prompt_feedback.block_reason == types.BlockedReason.SAFETY
    embedded = client.models.embed_content(model="embed", contents=["abc", "hello"])
    assert [e.values for e in embedded.embeddings or ()] == [
        [3.0, 0.5, -1.0, 0.25],
        [5.0, 0.5, -1.0, 0.25],
    ]
    with pytest.raises(errors.ClientError) as limited:
        client.models.generate_content(model="ratelimit", contents="hi")
    assert limited.value.code == 429
    with pytest.raises(errors.ServerError) as overloaded:
        client.models.generate_content(model="overloaded", contents="hi")
    assert overloaded.value.code == 503
