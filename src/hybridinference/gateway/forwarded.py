"""The client's address: the TCP peer, unless the peer is a trusted reverse proxy.

From a peer inside ``server.trusted_proxies`` the ``X-Forwarded-For`` chain is walked
from the right (the hops nearest to us), skipping trusted proxies; the first address that
is not a trusted proxy is the client. ``CF-Connecting-IP`` (set by Cloudflare) is used
when every forwarded hop is trusted (the CDN's ranges listed in ``trusted_proxies``) or
there is no ``X-Forwarded-For``; then ``X-Real-IP``. From any other peer all three
headers are ignored: a client cannot choose the address it is logged under. (The edge
must drop these headers from requests that did not come through the CDN: nginx's
``proxy_set_header`` does.)
"""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network, ip_address

from starlette.types import Scope

Network = IPv4Network | IPv6Network
FORWARDED_FOR = b"x-forwarded-for"
REAL_IP = b"x-real-ip"
CF_CONNECTING_IP = b"cf-connecting-ip"


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in networks)


def _valid(address: str) -> str | None:
    try:
        return str(ip_address(address))
    except ValueError:
        return None


def client_address(scope: Scope, trusted: Sequence[Network]) -> str | None:
    client = scope.get("client")
    peer: str | None = client[0] if client else None
    if peer is None or not trusted or not _trusted(peer, trusted):
        return peer
    forwarded: list[str] = []
    real_ip: str | None = None
    cdn_ip: str | None = None
    for name, value in scope["headers"]:
        if name == FORWARDED_FOR:
            forwarded.extend(part.strip() for part in value.decode("latin-1").split(","))
        elif name == REAL_IP:
            real_ip = value.decode("latin-1").strip()
        elif name == CF_CONNECTING_IP:
            cdn_ip = _valid(value.decode("latin-1").strip())
    for hop in reversed(forwarded):
        if not _trusted(hop, trusted):
            return _valid(hop) or peer
    if cdn_ip:  # came through trusted hops only: the CDN's own view of the client
        return cdn_ip
    if forwarded:  # every hop is a trusted proxy: the farthest one is the best we know
        return _valid(forwarded[0]) or peer
    if real_ip:
        return _valid(real_ip) or peer
    return peer
