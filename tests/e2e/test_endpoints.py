"""The other OpenAI endpoints through the SDK (strict validation): legacy completions
(plain and streamed), embeddings (float and base64), the model list with its metadata,
and the health endpoints."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import GatewayFactory, gateway_config, route
from tests.e2e.helpers import sdk, start_gateway
from tests.fakes.openai_upstream import WORDS, FakeOpenAIUpstream
from tests.fakes.servers import RunningAiohttp, RunningGateway

ANSWER = "".join(WORDS)


@pytest.fixture(scope="module")
def gw(
    fake_openai: tuple[FakeOpenAIUpstream, RunningAiohttp], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    config = gateway_config(fake_openai[1].url + "/v1", tmp_path_factory.mktemp("endpoints"))
    config["models"][0] = {
        "name": "ok",
        "aliases": ["ok-alias"],
        "owned_by": "acme",
        "context_length": 32768,
        "max_output_tokens": 4096,
        "description": "the fake upstream",
        "routes": [
            route("fake", "ok", pricing={"input": 1.0, "output": 2.0}),
            route("fake", "ok-cheap", pricing={"input": 0.5, "output": 0.75}, weight=0),
        ],
    }
    running = start_gateway(config)
    yield running
    running.stop()


def row(gw: RunningGateway, request_id: str) -> dict[str, object]:
    rows = gw.wait_rows(1, "request_id = ?", (request_id,))
    assert len(rows) == 1
    return rows[0]


def test_completion(gw: RunningGateway, upstream: FakeOpenAIUpstream) -> None:
    raw = sdk(gw).completions.with_raw_response.create(
        model="ok",
        prompt="Say hello",
        max_tokens=8,
        extra_headers={"X-Request-ID": "cmpl-1"},
        extra_body={"top_k": 4, "guided_choice": ["a", "b"]},
    )
    sent = upstream.log.received[-1].body
    assert (sent["top_k"], sent["guided_choice"], sent["prompt"]) == (4, ["a", "b"], "Say hello")
    reply = raw.parse()
    assert reply.object == "text_completion"
    assert reply.model == "ok"
    assert reply.choices[0].text == ANSWER
    assert reply.choices[0].finish_reason == "stop"
    assert reply.usage is not None and reply.usage.total_tokens == 13
    assert raw.headers["x-hybridinference-route"] == "fake/ok"
    logged = row(gw, "cmpl-1")
    assert (logged["endpoint"], logged["status"], logged["total_tokens"]) == (
        "completions",
        200,
        13,
    )
    assert logged["cost"] == pytest.approx((7 * 1.0 + 6 * 2.0) / 1e6)


@pytest.mark.parametrize("include_usage", [False, True])
def test_completion_stream(
    gw: RunningGateway, upstream: FakeOpenAIUpstream, include_usage: bool
) -> None:
    request_id = f"cmpl-stream-{include_usage}"
    options = {"stream_options": {"include_usage": True}} if include_usage else {}
    # Not strict: the SDK types a streamed choice's finish_reason as never null, which every
    # real server (OpenAI's own included) sends on all but the last chunk.
    chunks = list(
        sdk(gw, _strict_response_validation=False).completions.create(
            model="ok",
            prompt="Say hello",
            stream=True,
            extra_headers={"X-Request-ID": request_id},
            **options,  # type: ignore[arg-type]
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == ANSWER
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-2:] == [None, "stop"]
    assert all(c.object == "text_completion" and c.id for c in chunks)
    assert all(c.model == "ok" for c in chunks)
    usage_chunks = [c for c in chunks if c.usage is not None]
    if include_usage:
        assert usage_chunks == [chunks[-1]]
    else:
        assert usage_chunks == []
    assert upstream.log.received[-1].body["stream_options"] == {"include_usage": True}
    logged = row(gw, request_id)
    assert (logged["endpoint"], logged["stream"], logged["total_tokens"]) == ("completions", 1, 13)


def test_embeddings_float(gw: RunningGateway, upstream: FakeOpenAIUpstream) -> None:
    result = sdk(gw).embeddings.create(
        model="ok",
        input=["one", "two"],
        encoding_format="float",
        extra_headers={"X-Request-ID": "emb-float"},
        extra_body={"truncate_prompt_tokens": 8},
    )
    assert upstream.log.received[-1].body["truncate_prompt_tokens"] == 8
    assert result.model == "ok"
    assert [d.embedding for d in result.data] == [[0.25, -0.5, 1.0], [0.5, -0.5, 1.0]]
    assert [d.index for d in result.data] == [0, 1]
    assert upstream.log.received[-1].body["encoding_format"] == "float"
    logged = row(gw, "emb-float")
    assert (logged["endpoint"], logged["prompt_tokens"], logged["total_tokens"]) == (
        "embeddings",
        6,
        6,
    )
    assert logged["cost"] == pytest.approx(6 * 1.0 / 1e6)


def test_embeddings_base64_is_passed_through_and_decoded_by_the_sdk(
    gw: RunningGateway, upstream: FakeOpenAIUpstream
) -> None:
    # Not strict: the SDK validates the base64 string against list[float] before decoding
    # it, so strict validation refuses base64 from any server (OpenAI's own included).
    client = sdk(gw, _strict_response_validation=False)
    # the SDK's default: it asks for base64 on its own and decodes the answer
    decoded = client.embeddings.create(model="ok", input="one")
    assert upstream.log.received[-1].body["encoding_format"] == "base64"
    assert decoded.data[0].embedding == [0.25, -0.5, 1.0]
    # asked for explicitly, base64 is handed back as the string the upstream sent
    explicit = client.embeddings.create(model="ok", input="one", encoding_format="base64")
    encoded = explicit.data[0].embedding
    assert isinstance(encoded, str)
    assert struct.unpack("<3f", base64.b64decode(encoded)) == (0.25, -0.5, 1.0)


def test_embeddings_on_the_demo_model(gw: RunningGateway) -> None:
    floats = sdk(gw).embeddings.create(model="demo", input="hello", encoding_format="float")
    decoded = sdk(gw, _strict_response_validation=False).embeddings.create(
        model="demo", input="hello"
    )  # the SDK's default: it asks for base64 and decodes it
    assert len(floats.data[0].embedding) == 16
    assert decoded.data[0].embedding == pytest.approx(floats.data[0].embedding)


def test_models_list(gw: RunningGateway) -> None:
    models = list(sdk(gw).models.list())
    assert [m.id for m in models] == ["ok", "tools", "demo"]
    assert all(m.object == "model" for m in models)
    ok = models[0].to_dict()
    assert ok["owned_by"] == "acme"
    assert ok["context_length"] == 32768
    # OpenRouter-style: US dollars per token, as strings; the cheapest route's price
    assert ok["pricing"] == {"prompt": "0.0000005", "completion": "0.00000075"}
    assert ok["aliases"] == ["ok-alias"]
    assert models[1].to_dict()["pricing"] == {"prompt": "0", "completion": "0"}
    assert models[2].owned_by == "hybridinference"


def test_models_retrieve(gw: RunningGateway) -> None:
    client = sdk(gw)
    assert client.models.retrieve("ok").owned_by == "acme"
    assert client.models.retrieve("ok-alias").id == "ok"


def test_alias_is_served_and_logged_under_the_name_asked(gw: RunningGateway) -> None:
    reply = sdk(gw).chat.completions.create(
        model="ok-alias",
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"X-Request-ID": "alias-1"},
    )
    assert reply.model == "ok-alias"
    assert row(gw, "alias-1")["route"] == "fake/ok"


def test_health(gw: RunningGateway) -> None:
    response = httpx.get(gw.url + "/health", timeout=10)
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.headers["x-request-id"]


def test_ready(gw: RunningGateway) -> None:
    response = httpx.get(gw.url + "/health/ready", timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["config"] == "ok"
    assert body["checks"]["log_store"] == "ok"


def test_not_ready_without_a_usable_route(
    make_gateway: GatewayFactory, upstream_url: str, tmp_path: Path
) -> None:
    config = gateway_config(upstream_url, tmp_path)
    config["providers"] = {
        "cloud": {
            "kind": "openai",
            "base_url": upstream_url,
            "api_key_env": "UNSET_CLOUD_KEY",
            "optional": True,
        }
    }
    config["models"] = [{"name": "m", "routes": [route("cloud", "ok")]}]
    gateway = make_gateway(config)
    assert httpx.get(gateway.url + "/health", timeout=10).status_code == 200  # alive
    response = httpx.get(gateway.url + "/health/ready", timeout=10)
    assert response.status_code == 503
    assert response.json()["status"] == "not ready"


def test_models_retrieve_unknown_is_404(gw: RunningGateway) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        sdk(gw).models.retrieve("no-such-model")
    assert caught.value.param == "model"
