"""The fake Anthropic upstream is faithful: the official ``anthropic`` SDK, with strict
response validation, parses everything it sends and raises on what it refuses."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import pytest

from tests.fakes.anthropic_upstream import FINAL, SIGNATURE, FakeAnthropicUpstream
from tests.fakes.servers import run_aiohttp

TOOLS = [
    {"name": "get_weather", "input_schema": {"type": "object"}},
    {"name": "get_time", "input_schema": {"type": "object"}},
]


@pytest.fixture(scope="module")
def client() -> Iterator[anthropic.Anthropic]:
    fake = FakeAnthropicUpstream()
    running = run_aiohttp(fake.app)
    yield anthropic.Anthropic(
        base_url=running.url,
        api_key=fake.api_key,
        max_retries=0,
        _strict_response_validation=True,
    )
    running.stop()


def test_plain_and_streamed_text(client: anthropic.Anthropic) -> None:
    hi = [{"role": "user", "content": "hi"}]
    message = client.messages.create(model="ok", max_tokens=50, messages=hi)  # type: ignore[arg-type]
    assert message.content[0].type == "text"
    assert message.content[0].text == "Hello from the fake Anthropic upstream."
    assert message.stop_reason == "end_turn"
    with client.messages.stream(model="ok", max_tokens=50, messages=hi) as stream:  # type: ignore[arg-type]
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == message.content[0].text
    assert final.usage.output_tokens == message.usage.output_tokens
    counted = client.messages.count_tokens(model="ok", messages=hi)  # type: ignore[arg-type]
    assert counted.input_tokens > 0


def test_thinking_tool_loop_with_signature(client: anthropic.Anthropic) -> None:
    messages: list[dict[str, object]] = [{"role": "user", "content": "weather and time?"}]
    with client.messages.stream(
        model="thinking-tools",
        max_tokens=2048,
        messages=messages,
        tools=TOOLS,  # type: ignore[arg-type]
    ) as stream:
        first = stream.get_final_message()
    kinds = [block.type for block in first.content]
    assert kinds == ["thinking", "tool_use", "tool_use"]
    assert first.content[0].signature == SIGNATURE  # type: ignore[union-attr]
    assert first.content[1].input == {"city": "Paris"}  # type: ignore[union-attr]
    messages.append({"role": "assistant", "content": [b.model_dump() for b in first.content]})
    results = [
        {"type": "tool_result", "tool_use_id": b.id, "content": "ok"}  # type: ignore[union-attr]
        for b in first.content[1:]
    ]
    messages.append({"role": "user", "content": results})
    final = client.messages.create(
        model="thinking-tools",
        max_tokens=2048,
        messages=messages,
        tools=TOOLS,  # type: ignore[arg-type]
    )
    assert final.content[-1].text == FINAL  # type: ignore[union-attr]
    # dropping the signed thinking block is refused, as the real API does
    messages[1] = {"role": "assistant", "content": [b.model_dump() for b in first.content[1:]]}
    with pytest.raises(anthropic.BadRequestError, match="thinking"):
        client.messages.create(
            model="thinking-tools",
            max_tokens=2048,
            messages=messages,
            tools=TOOLS,  # type: ignore[arg-type]
        )


def test_refusals_and_errors(client: anthropic.Anthropic) -> None:
    hi = [{"role": "user", "content": "hi"}]
    with pytest.raises(anthropic.BadRequestError, match="temperature"):
        client.messages.create(
            model="ok", max_tokens=5, messages=hi, extra_body={"temperature": 1.5}
        )  # type: ignore[arg-type]
    with pytest.raises(anthropic.InternalServerError) as overloaded:
        client.messages.create(model="overloaded", max_tokens=5, messages=hi)  # type: ignore[arg-type]
    assert overloaded.value.status_code == 529
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model="ratelimit", max_tokens=5, messages=hi)  # type: ignore[arg-type]
    with (
        pytest.raises(anthropic.APIStatusError, match="Overloaded"),
        client.messages.stream(model="error-midstream", max_tokens=5, messages=hi) as stream,  # type: ignore[arg-type]
    ):
        list(stream)
    bad = anthropic.Anthropic(base_url=str(client.base_url), api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError):
        bad.messages.create(model="ok", max_tokens=5, messages=hi)  # type: ignore[arg-type]
