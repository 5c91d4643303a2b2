"""Provider account limits per route: sliding-minute RPM/TPM, and AIMD back-off when the
provider answers 429 (halve, pause for Retry-After, climb back one request at a time)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from hybridinference.config import parse_config
from hybridinference.errors import ConfigError, UpstreamRateLimited, UpstreamServerError
from hybridinference.limits.build import build_upstream_limits
from hybridinference.limits.estimate import TokenEstimator
from hybridinference.limits.upstream import AccountLimits, UpstreamLimits
from tests.conftest import GatewayFactory, gateway_config
from tests.e2e.helpers import HI
from tests.fakes.openai_upstream import FakeOpenAIUpstream
from tests.fakes.servers import RunningGateway


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def limits(clock: Clock, **routes: AccountLimits) -> UpstreamLimits:
    return UpstreamLimits(
        {name.replace("__", "/"): value for name, value in routes.items()},
        clock,
        TokenEstimator(chars_per_token=4, default_output_tokens=10),
    )


def test_configured_rpm_over_a_sliding_minute() -> None:
    clock = Clock()
    upstream = limits(clock, acct__m=AccountLimits(rpm=3))
    assert [upstream.admit("acct/m", 1) for _ in range(4)] == [True, True, True, False]
    assert not upstream.ready("acct/m")
    assert upstream.retry_in("acct/m") == pytest.approx(60)
    clock.now += 60.01
    assert upstream.ready("acct/m")


def test_configured_tpm() -> None:
    clock = Clock()
    upstream = limits(clock, acct__m=AccountLimits(tpm=100))
    assert upstream.admit("acct/m", 60)
    assert not upstream.admit("acct/m", 60)
    assert upstream.admit("acct/m", 40)


def test_unlisted_routes_are_unlimited_until_throttled() -> None:
    clock = Clock()
    upstream = limits(clock)
    for _ in range(40):
        assert upstream.admit("other/m", 5)
    upstream.release("other/m", UpstreamRateLimited("slow down", retry_after=7), 5)
    account = upstream.account("other/m")
    assert account.rpm == 20  # half of what it was serving
    assert not upstream.ready("other/m")
    assert upstream.retry_in("other/m") == pytest.approx(7)
    clock.now += 7
    assert not upstream.ready("other/m")  # the halved cap: 40 started this minute
    clock.now += 60
    assert upstream.ready("other/m")


def test_aimd_halves_then_climbs_back_to_the_configured_limit() -> None:
    clock = Clock()
    upstream = limits(clock, acct__m=AccountLimits(rpm=100))
    upstream.admit("acct/m", 1)
    upstream.release("acct/m", UpstreamRateLimited("429"), 1)
    account = upstream.account("acct/m")
    assert account.rpm == 50 and account.throttles == 1
    assert upstream.retry_in("acct/m") == pytest.approx(1.0)  # no Retry-After: one second
    upstream.release("acct/m", UpstreamRateLimited("429"), 1)
    assert account.rpm == 25
    for _ in range(10):
        upstream.release("acct/m", None, 1)
    assert account.rpm == 35  # additive increase: one per success
    for _ in range(200):
        upstream.release("acct/m", None, 1)
    assert account.rpm == 100  # never above the configured limit


def test_other_failures_do_not_back_off() -> None:
    clock = Clock()
    upstream = limits(clock, acct__m=AccountLimits(rpm=100))
    upstream.release("acct/m", UpstreamServerError("boom"), 1)
    assert upstream.account("acct/m").rpm == 100
    assert upstream.ready("acct/m")


@dataclass
class Call:
    body: dict[str, Any]


@dataclass
class FakeRoute:
    name: str


class ScriptedOpener:
    def __init__(self, error: Exception | None) -> None:
        self.error = error
        self.discarded: list[str] = []

    async def open(self, route: Any, call: Any) -> str:
        if self.error is not None:
            raise self.error
        return f"served by {route.name}"

    async def discard(self, result: str) -> None:
        self.discarded.append(result)


async def test_the_opener_wrapper_counts_attempts_and_learns_from_429() -> None:
    clock = Clock()
    upstream = limits(clock, acct__m=AccountLimits(rpm=10, tpm=1000))
    call = Call({"messages": [{"role": "user", "content": "x" * 40}], "max_tokens": 5})
    ok = upstream.wrap(ScriptedOpener(None))
    assert await ok.open(FakeRoute("acct/m"), call) == "served by acct/m"
    await ok.discard("x")
    state = upstream.describe()["acct/m"]
    assert state["last_minute"] == {"requests": 1, "tokens": 10 + 4 + 3 + 5}
    throttled = upstream.wrap(ScriptedOpener(UpstreamRateLimited("429", retry_after=3)))
    with pytest.raises(UpstreamRateLimited):
        await throttled.open(FakeRoute("acct/m"), call)
    state = upstream.describe()["acct/m"]
    assert state["throttles"] == 1
    assert state["effective_rpm"] == 5
    assert state["paused_for"] == pytest.approx(3)


def _two_route_config(upstream_url: str, tmp_path: Path, first: str, **limits: Any) -> Any:
    config = gateway_config(upstream_url, tmp_path, limits=limits)
    config["models"] = [
        {
            "name": "acct",
            "strategy": "weighted",
            "routes": [
                {"provider": "fake", "model": first, "weight": 1.0},
                {"provider": "demo", "model": "demo-1", "weight": 0.0},
            ],
        }
    ]
    config["health"] = {"probes": False}
    return config


def _served_by(gateway: RunningGateway) -> str:
    response = httpx.post(
        gateway.url + "/v1/chat/completions", json={"model": "acct", "messages": HI}
    )
    assert response.status_code == 200, response.text
    return response.headers["x-hybridinference-route"]


def test_routing_skips_a_route_whose_account_is_at_its_limit(
    make_gateway: GatewayFactory, upstream_url: str, tmp_path: Path
) -> None:
    config = _two_route_config(upstream_url, tmp_path, "ok", upstream={"fake/ok": {"rpm": 2}})
    gateway = make_gateway(config)
    served = [_served_by(gateway) for _ in range(5)]
    assert served == ["fake/ok", "fake/ok", "demo/demo-1", "demo/demo-1", "demo/demo-1"]


def test_a_provider_429_parks_the_route_and_routing_fails_over(
    make_gateway: GatewayFactory,
    upstream_url: str,
    upstream: FakeOpenAIUpstream,
    tmp_path: Path,
) -> None:
    name = f"ratelimit-{secrets.token_hex(3)}"
    gateway = make_gateway(_two_route_config(upstream_url, tmp_path, name))
    assert _served_by(gateway) == "demo/demo-1"  # fake said 429: failed over
    assert len(upstream.log.bodies(name)) == 1
    for _ in range(3):  # parked for its Retry-After (7 s): not even tried
        assert _served_by(gateway) == "demo/demo-1"
    assert len(upstream.log.bodies(name)) == 1
    accounts = gateway.state.routing.manager.accounts
    assert accounts is not None
    state = accounts.describe()[f"fake/{name}"]
    assert state["throttles"] == 1 and state["paused_for"] > 5


def test_an_unknown_route_in_upstream_limits_is_a_config_error(
    upstream_url: str, tmp_path: Path
) -> None:
    data = _two_route_config(upstream_url, tmp_path, "ok", upstream={"fake/typo": {"rpm": 5}})
    config = parse_config(data, {"FAKE_KEY": "x"}, "test-config")
    with pytest.raises(ConfigError, match=r"limits.upstream: unknown route 'fake/typo'.*fake/ok"):
        build_upstream_limits(config)


def test_the_window_holds_slices_not_one_entry_per_request() -> None:
    """Memory is bounded by the window, not the rate: 100,000 starts over 10 s leave at
    most one slice per 0.1 s, and the counts stay exact."""
    clock = Clock()
    upstream = limits(clock)
    for i in range(100_000):
        clock.now = 100.0 + i / 10_000
        assert upstream.admit("busy/m", 2)
    account = upstream.account("busy/m")
    assert len(account._starts) <= 101
    assert account.describe(clock.now)["last_minute"] == {"requests": 100_000, "tokens": 200_000}
    clock.now += 60.0
    assert account.describe(clock.now)["last_minute"] == {"requests": 0, "tokens": 0}
