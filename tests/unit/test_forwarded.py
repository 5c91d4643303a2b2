"""The client address: forwarded headers believed only from trusted proxies."""

from __future__ import annotations

from ipaddress import ip_network
from typing import Any

from hybridinference.gateway.forwarded import client_address

TRUSTED = (ip_network("10.0.0.0/8"), ip_network("127.0.0.1/32"), ip_network("fd00::/8"))


def scope(peer: str | None, **headers: str) -> dict[str, Any]:
    return {
        "client": (peer, 5555) if peer else None,
        "headers": [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()],
    }


def test_untrusted_peer_headers_ignored() -> None:
    assert client_address(scope("203.0.113.5", x_forwarded_for="1.2.3.4"), TRUSTED) == "203.0.113.5"
    assert client_address(scope("203.0.113.5", x_real_ip="1.2.3.4"), TRUSTED) == "203.0.113.5"


def test_no_trusted_proxies_configured_means_the_peer() -> None:
    assert client_address(scope("10.0.0.2", x_forwarded_for="1.2.3.4"), ()) == "10.0.0.2"


def test_rightmost_untrusted_hop_is_the_client() -> None:
    # a client spoofs the first entry; nginx (10.0.0.2) appends the real peer
    chain = "198.51.100.1, 192.0.2.44, 10.0.0.7"
    assert client_address(scope("10.0.0.2", x_forwarded_for=chain), TRUSTED) == "192.0.2.44"


def test_real_ip_when_no_forwarded_for() -> None:
    assert client_address(scope("127.0.0.1", x_real_ip="192.0.2.9"), TRUSTED) == "192.0.2.9"


def test_all_hops_trusted_takes_the_farthest() -> None:
    assert client_address(scope("10.0.0.2", x_forwarded_for="10.1.1.1, 10.2.2.2"), TRUSTED) == (
        "10.1.1.1"
    )


def test_garbage_and_ipv6() -> None:
    assert client_address(scope("10.0.0.2", x_forwarded_for="not-an-ip"), TRUSTED) == "10.0.0.2"
    assert client_address(scope("fd00::1", x_forwarded_for="2001:db8::7"), TRUSTED) == "2001:db8::7"
    assert client_address(scope(None), TRUSTED) is None


def test_cf_connecting_ip_only_through_trusted_hops() -> None:
    assert client_address(scope("10.0.0.2", cf_connecting_ip="192.0.2.5"), TRUSTED) == "192.0.2.5"
    assert client_address(scope("203.0.113.5", cf_connecting_ip="1.2.3.4"), TRUSTED) == (
        "203.0.113.5"
    )
    through = scope("10.0.0.2", x_forwarded_for="10.9.9.9", cf_connecting_ip="192.0.2.6")
    assert client_address(through, TRUSTED) == "192.0.2.6"
    bypass = scope("10.0.0.2", x_forwarded_for="192.0.2.7", cf_connecting_ip="192.0.2.8")
    assert client_address(bypass, TRUSTED) == "192.0.2.7"
