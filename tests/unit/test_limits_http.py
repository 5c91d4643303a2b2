"""Per-key limits through the HTTP surface (in-process backend): the 429 envelope and its
headers as the official SDK sees them, limit headers on answers, budgets that say "do not
retry", token reconciliation, and one log row per request, admitted or refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.conftest import ADMIN_TOKEN, GatewayFactory, gateway_config
from tests.e2e.helpers import HI, assert_envelope, config_with, sdk
from tests.fakes.servers import RunningGateway


def create_key(gateway: RunningGateway, **settings: Any) -> tuple[str, str]:
    response = httpx.post(
        gateway.url + "/admin/keys",
        json={"name": "limited", **settings},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], body["key"]


def chat(gateway: RunningGateway, key: str, **extra: Any) -> httpx.Response:
    return httpx.post(
        gateway.url + "/v1/chat/completions",
        json={"model": "ok", "messages": HI, **extra},
        headers={"Authorization": f"Bearer {key}"},
    )


@pytest.fixture
def authed(make_gateway: GatewayFactory, upstream_url: str, tmp_path: Path) -> RunningGateway:
    config = gateway_config(upstream_url, tmp_path, auth={"required": True})
    return make_gateway(config)


def test_requests_per_minute_refusal(authed: RunningGateway) -> None:
    key_id, key = create_key(authed, rpm_limit=3)
    answers = [chat(authed, key) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert answers[0].headers["x-ratelimit-limit-requests"] == "3"
    assert answers[0].headers["x-ratelimit-remaining-requests"] == "2"
    assert answers[2].headers["x-ratelimit-remaining-requests"] == "0"
    assert "x-ratelimit-limit-tokens" not in answers[0].headers
    refused = chat(authed, key)
    error = assert_envelope(refused, 429, "rate_limit_error")
    assert error["code"] == "rate_limit_exceeded"
    assert "requests per minute" in error["message"]
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    assert refused.headers["x-ratelimit-reset-requests"].endswith("s")
    assert "x-should-retry" not in refused.headers
    rows = authed.wait_rows(4, "key_id = ?", (key_id,))
    assert sorted(r["status"] for r in rows) == [200, 200, 200, 429]


def test_sdk_sees_a_rate_limit_error(authed: RunningGateway) -> None:
    _, key = create_key(authed, rpm_limit=1)
    client = sdk(authed, api_key=key)
    client.chat.completions.create(model="ok", messages=HI)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="ok", messages=HI)
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"]


def test_tokens_per_minute_reserve_then_reconcile(authed: RunningGateway) -> None:
    """The fake answers with 13 tokens; each request reserves its estimate plus
    max_tokens, then settles to 13."""
    key_id, key = create_key(authed, tpm_limit=60)
    first = chat(authed, key, max_tokens=6)
    assert first.status_code == 200
    assert first.headers["x-ratelimit-limit-tokens"] == "60"
    reserved = 60 - int(first.headers["x-ratelimit-remaining-tokens"])
    assert reserved >= 13  # the estimate errs high
    too_big = chat(authed, key, max_tokens=100)
    error = assert_envelope(too_big, 429, "rate_limit_error")
    assert "tokens per minute" in error["message"]
    assert too_big.headers["x-ratelimit-limit-tokens"] == "60"
    # Settled at 13 each: 60 // 13 = 4 requests fit in the minute.
    statuses = [chat(authed, key, max_tokens=6).status_code for _ in range(6)]
    assert statuses.count(200) == 3  # plus the first one: 4 x 13 = 52 <= 60
    rows = authed.wait_rows(8, "key_id = ?", (key_id,))
    assert len(rows) == 8


def test_budget_exhaustion_says_do_not_retry(authed: RunningGateway) -> None:
    """'ok' costs $1/M input and $2/M output: 7 x 1 + 6 x 2 = 19 micro-dollars."""
    _, key = create_key(authed, daily_budget=0.00005)  # 50 micro-dollars
    statuses = [chat(authed, key, max_tokens=6).status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]
    refused = chat(authed, key, max_tokens=6)
    error = assert_envelope(refused, 429, "insufficient_quota")
    assert error["code"] == "insufficient_quota"
    assert refused.headers["x-should-retry"] == "false"
    assert int(refused.headers["retry-after"]) >= 1
    with pytest.raises(openai.RateLimitError):
        sdk(authed, api_key=key).chat.completions.create(model="ok", messages=HI)


def test_concurrency_limit_counts_running_streams(
    make_gateway: GatewayFactory, upstream_url: str, tmp_path: Path
) -> None:
    config = config_with(upstream_url, tmp_path, "drip-100", auth={"required": True})
    authed = make_gateway(config)
    _, key = create_key(authed, max_concurrency=1)
    client = sdk(authed, api_key=key)
    stream = client.chat.completions.create(model="drip-100", messages=HI, stream=True)
    first = next(iter(stream))  # the stream is open and holds the slot
    assert first.choices
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="ok", messages=HI)
    assert "in flight" in caught.value.message
    list(stream)  # finishing it frees the slot
    reply = client.chat.completions.create(model="ok", messages=HI)
    assert reply.choices[0].message.content


def test_default_limits_apply_to_anonymous(
    make_gateway: GatewayFactory, upstream_url: str, tmp_path: Path
) -> None:
    config = gateway_config(upstream_url, tmp_path, limits={"default_key": {"rpm": 2}})
    gateway = make_gateway(config)
    client = sdk(gateway)
    for _ in range(2):
        client.chat.completions.create(model="ok", messages=HI)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="ok", messages=HI)


def test_no_limit_no_headers(authed: RunningGateway) -> None:
    _, key = create_key(authed)
    answer = chat(authed, key)
    assert answer.status_code == 200
    assert not any(h.startswith("x-ratelimit") for h in answer.headers)
    assert authed.state.limits is not None
    assert authed.state.limits.limiter.stats.admitted == 0  # never asked


def test_limiter_counters_on_metrics(authed: RunningGateway) -> None:
    _, key = create_key(authed, rpm_limit=1)
    assert chat(authed, key).status_code == 200
    assert chat(authed, key).status_code == 429
    text = httpx.get(authed.url + "/metrics").text
    samples = dict(
        line.rsplit(" ", 1)
        for line in text.splitlines()
        if line.startswith("hybridinference_limits")
    )
    assert float(samples["hybridinference_limits_admitted_total"]) == 1
    assert float(samples["hybridinference_limits_refused_total"]) == 1
    assert float(samples["hybridinference_limits_backend_up"]) == 1
    assert float(samples["hybridinference_limits_failed_open_total"]) == 0


def test_readiness_reports_the_limiter(authed: RunningGateway) -> None:
    ready = httpx.get(authed.url + "/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["limits"] == "ok (memory)"
