"""Exactly one request-log row per request, whatever happened to it: success, streamed or
not, every kind of failure, and clients that went away."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import openai
import pytest

from tests.conftest import GatewayFactory
from tests.e2e.helpers import HI, config_with, sdk
from tests.fakes.servers import RunningGateway


def test_one_row_per_request_whatever_the_outcome(
    make_gateway: GatewayFactory, upstream_url: str, tmp_path: Path
) -> None:
    gateway: RunningGateway = make_gateway(
        config_with(
            upstream_url, tmp_path, "status-500", "error-midstream", "hang-midstream-log", "hang"
        )
    )
    client = sdk(gateway)
    expected: dict[str, int] = {}

    def ident(name: str, status: int) -> dict[str, str]:
        expected[name] = status
        return {"X-Request-ID": name}

    client.chat.completions.create(model="ok", messages=HI, extra_headers=ident("r-ok", 200))
    list(
        client.chat.completions.create(
            model="ok", messages=HI, stream=True, extra_headers=ident("r-stream", 200)
        )
    )
    client.completions.create(model="ok", prompt="x", extra_headers=ident("r-cmpl", 200))
    client.embeddings.create(
        model="ok", input="x", encoding_format="float", extra_headers=ident("r-emb", 200)
    )
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="nope", messages=HI, extra_headers=ident("r-404", 404))
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(
            model="ok",
            messages=HI,
            temperature="x",
            extra_headers=ident("r-400", 400),  # type: ignore[arg-type]
        )
    response = httpx.post(
        gateway.url + "/v1/chat/completions", content=b"{", headers=ident("r-json", 400)
    )
    assert response.status_code == 400
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(
            model="status-500", messages=HI, extra_headers=ident("r-502", 502)
        )
    with pytest.raises(openai.APIError):
        list(
            client.chat.completions.create(
                model="error-midstream", messages=HI, stream=True, extra_headers=ident("r-mid", 502)
            )
        )
    stream = client.chat.completions.create(
        model="hang-midstream-log", messages=HI, stream=True, extra_headers=ident("r-dc", 499)
    )
    next(iter(stream))
    stream.close()
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            gateway.url + "/v1/chat/completions",
            json={"model": "hang", "messages": HI},
            headers=ident("r-dc-early", 499),
            timeout=httpx.Timeout(10, read=0.3),
        )

    rows = gateway.wait_rows(len(expected))
    assert {r["request_id"]: r["status"] for r in rows} == expected
    # a sentinel after everything: any second row for an earlier request would have been
    # queued before it, so the writer has seen every row once the sentinel's row is in
    client.chat.completions.create(model="ok", messages=HI, extra_headers=ident("r-last", 200))
    gateway.wait_rows(1, "request_id = ?", ("r-last",))
    assert gateway.state.writer.stats.written == len(expected)
    by_id = {r["request_id"]: r for r in gateway.rows()}
    assert by_id["r-stream"]["stream"] == 1
    assert (by_id["r-dc"]["cancelled"], by_id["r-dc-early"]["cancelled"]) == (1, 1)
    assert by_id["r-emb"]["endpoint"] == "embeddings"
    assert by_id["r-cmpl"]["endpoint"] == "completions"
    for row in by_id.values():
        assert json.loads(row["attempts"]) is not None
        assert row["latency_ms"] >= 0
