"""Repeated bad credentials from one client address are slowed down.

One pure-ASGI middleware watches every answer: a 401 (a bad API key or admin token, on any
endpoint) counts as a failure of the client's address (behind trusted proxies, the
forwarded one; IPv6 addresses by their /64, which one host usually owns whole). After
``free_failures`` failures an address is refused with a 429 and ``Retry-After`` for a
delay that doubles with each further failure, up to ``max_delay``; an address quiet for
``forget_after`` seconds starts afresh. A refused request does no key lookup and no body
read, so guessing stays slow and cheap to refuse.

Memory is bounded: at most ``max_addresses`` addresses are tracked, least recently failed
evicted first. The state is per process (each worker throttles on its own).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from ipaddress import IPv6Address, ip_address, ip_network

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hybridinference.config.schema import AuthThrottleConfig
from hybridinference.errors import RateLimited
from hybridinference.gateway.anthropic_errors import anthropic_error_response
from hybridinference.gateway.forwarded import Network, client_address
from hybridinference.gateway.responses import error_response
from hybridinference.observability.readings import Reading

logger = logging.getLogger(__name__)

ANTHROPIC_PATHS = ("/v1/messages",)


@dataclass(slots=True)
class _Entry:
    failures: int
    last_failure: float
    blocked_until: float


class AuthThrottle:
    """Failure counts per address, an LRU bounded by ``max_addresses``."""

    def __init__(self, config: AuthThrottleConfig, clock: Callable[[], float]) -> None:
        self._config = config
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self.failures_total = 0
        self.refused_total = 0

    def __len__(self) -> int:
        return len(self._entries)

    def _entry(self, address: str, now: float) -> _Entry | None:
        entry = self._entries.get(address)
        if entry is not None and now - entry.last_failure > self._config.forget_after:
            del self._entries[address]
            return None
        return entry

    def retry_after(self, address: str) -> float | None:
        """Seconds this address must wait before its credentials are checked again."""
        now = self._clock()
        entry = self._entry(address, now)
        if entry is None or entry.blocked_until <= now:
            return None
        return entry.blocked_until - now

    def failed(self, address: str) -> None:
        now = self._clock()
        self.failures_total += 1
        entry = self._entry(address, now)
        if entry is None:
            entry = _Entry(failures=0, last_failure=now, blocked_until=0.0)
            while len(self._entries) >= self._config.max_addresses:
                self._entries.popitem(last=False)
            self._entries[address] = entry
        else:
            self._entries.move_to_end(address)
        entry.failures += 1
        entry.last_failure = now
        over = entry.failures - self._config.free_failures
        if over > 0:
            delay = min(self._config.base_delay * 2 ** min(over - 1, 32), self._config.max_delay)
            entry.blocked_until = now + delay
            logger.warning(
                "%d failed authentications from %s: refused for %.0f s",
                entry.failures,
                address,
                delay,
            )

    def readings(self) -> Iterator[Reading]:
        yield Reading("auth_failures", self.failures_total)
        yield Reading("auth_throttled", self.refused_total)
        yield Reading("auth_throttle_addresses", len(self._entries))


def throttle_key(address: str) -> str:
    """The unit that is throttled: the address, or an IPv6 address's /64."""
    try:
        parsed = ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


MAX_REMEMBERED_ADDRESSES = 65_536


def _within(address: str, networks: Sequence[Network]) -> bool:
    if not networks:
        return False
    try:
        parsed = ip_address(address)
    except ValueError:
        return False
    return any(parsed in network for network in networks)


class AuthThrottleMiddleware:
    """Refuses throttled addresses (429 + Retry-After) and counts every 401 it sees."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        throttle: AuthThrottle,
        trusted_proxies: Sequence[Network],
        exempt: Sequence[Network] = (),
    ) -> None:
        self.app = app
        self._throttle = throttle
        self._trusted = trusted_proxies
        self._exempt = exempt
        #: address → its throttle key, or None when exempt: parsing an address costs more
        #: than the rest of this middleware, and clients come back (bounded, then cleared)
        self._keys: dict[str, str | None] = {}

    def _key(self, address: str) -> str | None:
        key = self._keys.get(address, "")
        if key == "":
            if len(self._keys) >= MAX_REMEMBERED_ADDRESSES:
                self._keys.clear()
            exempt = _within(address, self._exempt)
            key = self._keys[address] = None if exempt else throttle_key(address)
        return key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        address = client_address(scope, self._trusted)
        key = None if address is None else self._key(address)
        if key is None:
            await self.app(scope, receive, send)
            return
        wait = self._throttle.retry_after(key)
        if wait is not None:
            self._throttle.refused_total += 1
            await self._refuse(scope, wait)(scope, receive, send)
            return

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 401:
                self._throttle.failed(key)
            await send(message)

        await self.app(scope, receive, watch)

    @staticmethod
    def _refuse(scope: Scope, wait: float) -> ASGIApp:
        error = RateLimited(
            "Too many failed authentications from this address; retry later.",
            code="too_many_auth_failures",
            retry_after=max(1.0, wait),
        )
        if scope["path"].startswith(ANTHROPIC_PATHS):
            return anthropic_error_response(error, scope.get("hybridinference.request_id", ""))
        return error_response(error)
