"""Repeated bad credentials from one address are slowed down: the throttle's arithmetic on
an injected clock (exponential delay, cap, forgetting, bounded memory, IPv6 /64 buckets),
then end to end: a 429 with Retry-After for the guessing address (even with a good key),
other addresses untouched, the Anthropic shape on /v1/messages, counted in /metrics."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from hybridinference.config.schema import AuthThrottleConfig
from hybridinference.gateway.auth_throttle import AuthThrottle, throttle_key
from tests.conftest import ADMIN_TOKEN, gateway_config
from tests.e2e.helpers import HI, assert_envelope, start_gateway
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.fakes.servers import RunningAiohttp, RunningGateway


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def throttle(**settings: Any) -> tuple[AuthThrottle, Clock]:
    clock = Clock()
    config = AuthThrottleConfig(
        **{"free_failures": 3, "base_delay": 2, "max_delay": 16, "forget_after": 100, **settings}
    )
    return AuthThrottle(config, clock), clock


def test_free_failures_then_a_doubling_delay_up_to_the_cap() -> None:
    guard, clock = throttle()
    for _ in range(3):
        guard.failed("203.0.113.5")
        assert guard.retry_after("203.0.113.5") is None
    delays = []
    for _ in range(6):
        guard.failed("203.0.113.5")
        delays.append(guard.retry_after("203.0.113.5"))
    assert delays == [2, 4, 8, 16, 16, 16]
    clock.now += 16
    assert guard.retry_after("203.0.113.5") is None  # the delay has passed
    guard.failed("203.0.113.5")
    assert guard.retry_after("203.0.113.5") == 16  # still counted: no fresh start


def test_a_quiet_address_starts_afresh() -> None:
    guard, clock = throttle()
    for _ in range(4):
        guard.failed("203.0.113.6")
    assert guard.retry_after("203.0.113.6") == 2
    clock.now += 101
    assert guard.retry_after("203.0.113.6") is None
    guard.failed("203.0.113.6")
    assert guard.retry_after("203.0.113.6") is None  # one failure of three free ones


def test_memory_is_bounded_least_recently_failed_first() -> None:
    guard, _ = throttle(max_addresses=100)
    for _ in range(4):
        guard.failed("198.51.100.1")
    for n in range(500):
        guard.failed(f"10.{n // 256}.{n % 256}.1")
        assert len(guard) <= 100
    assert len(guard) == 100
    assert guard.retry_after("198.51.100.1") is None  # evicted, not grown without bound
    assert guard.failures_total == 504


def test_ipv6_is_throttled_by_its_64_and_mapped_ipv4_as_ipv4() -> None:
    assert throttle_key("2001:db8:1:2:aaaa::1") == throttle_key("2001:db8:1:2:bbbb::9")
    assert throttle_key("2001:db8:1:2::1") != throttle_key("2001:db8:1:3::1")
    assert throttle_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert throttle_key("192.0.2.7") == "192.0.2.7"


@pytest.fixture(scope="module")
def gw(
    fake_openai: tuple[FakeOpenAIUpstream, RunningAiohttp], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    config = gateway_config(fake_openai[1].url + "/v1", tmp_path_factory.mktemp("throttle"))
    config["auth"] = {
        "required": True,
        # loopback is exempt by default; the test's clients are loopback addresses
        "throttle": {"free_failures": 3, "base_delay": 30, "exempt": []},
    }
    running = start_gateway(config)
    yield running
    running.stop()


def client_from(address: str) -> httpx.Client:
    """A client whose connections come from ``address`` (another loopback address is
    another client as far as the gateway can tell)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=10)


def chat(client: httpx.Client, gw: RunningGateway, key: str) -> httpx.Response:
    return client.post(
        gw.url + "/v1/chat/completions",
        json={"model": "ok", "messages": HI},
        headers={"Authorization": f"Bearer {key}"},
    )


def test_guessing_address_gets_429_with_retry_after_and_others_are_served(
    gw: RunningGateway,
) -> None:
    created = httpx.post(
        gw.url + "/admin/keys",
        json={"name": "good"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "X-Forwarded-For": "127.0.0.9"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    good = created.json()["key"]
    with client_from("127.0.0.2") as guesser, client_from("127.0.0.3") as bystander:
        for n in range(4):  # three free failures, the fourth starts the delay
            assert_envelope(chat(guesser, gw, f"hi-guess-{n}"), 401, "authentication_error")
        refused = chat(guesser, gw, good)  # even the right key waits now
        error = assert_envelope(refused, 429, "rate_limit_error")
        assert error["code"] == "too_many_auth_failures"
        assert 25 <= int(refused.headers["retry-after"]) <= 30
        admin = guesser.get(
            gw.url + "/admin/keys", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        assert_envelope(admin, 429, "rate_limit_error")
        messages = guesser.post(
            gw.url + "/v1/messages",
            json={"model": "ok", "max_tokens": 5, "messages": HI},
            headers={"x-api-key": good},
        )
        assert messages.status_code == 429
        assert messages.json()["type"] == "error"
        assert messages.json()["error"]["type"] == "rate_limit_error"
        assert chat(bystander, gw, good).status_code == 200
        assert chat(bystander, gw, "hi-one-typo").status_code == 401
        assert chat(bystander, gw, good).status_code == 200
    metrics = httpx.get(gw.url + "/metrics", timeout=10).text
    assert "hybridinference_auth_throttled_total 3.0" in metrics
    assert "hybridinference_auth_failures_total 5.0" in metrics


def test_forwarded_headers_from_an_untrusted_peer_do_not_dodge_the_throttle(
    gw: RunningGateway,
) -> None:
    with client_from("127.0.0.4") as guesser:
        for n in range(4):
            response = guesser.post(
                gw.url + "/v1/chat/completions",
                json={"model": "ok", "messages": HI},
                headers={"Authorization": f"Bearer hi-x{n}", "X-Forwarded-For": f"192.0.2.{n}"},
            )
            assert response.status_code == 401
        assert chat(guesser, gw, "hi-more").status_code == 429
