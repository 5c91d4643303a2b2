"""The adapter contract: one provider protocol, translated to and from OpenAI shapes.

Adapters never retry, pick routes, touch metrics or write logs; routing does that.
They raise only ``errors.UpstreamError`` subclasses.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import field
from enum import StrEnum
from typing import Any, Protocol

from hybridinference.readonly import readonly

JSONObject = dict[str, Any]


class Endpoint(StrEnum):
    CHAT = "chat"
    COMPLETIONS = "completions"
    EMBEDDINGS = "embeddings"


@readonly
class UpstreamCall:
    """What routing hands an adapter: an OpenAI-shaped body already aimed at the upstream
    model, and the deadlines that bound this attempt (seconds on ``clock``, the event
    loop's: routing passes the request's, read once per request)."""

    endpoint: Endpoint
    body: JSONObject
    request_id: str
    first_byte_timeout: float
    idle_timeout: float
    deadline: float
    clock: Callable[[], float] = field(default=lambda: asyncio.get_running_loop().time())

    def remaining(self, limit: float) -> float:
        """Seconds until the sooner of ``limit`` from now and the deadline."""
        return max(0.0, min(limit, self.deadline - self.clock()))


class Adapter(Protocol):
    kind: str

    async def complete(self, call: UpstreamCall) -> JSONObject:
        """One whole OpenAI-shaped response (chat.completion, text_completion or list)."""

    def stream(self, call: UpstreamCall) -> AsyncIterator[JSONObject]:
        """OpenAI-shaped chunks as they arrive. Closing the iterator closes the upstream
        connection. The first chunk arrives within ``first_byte_timeout``, later ones
        within ``idle_timeout`` of each other, all before ``deadline``."""

    async def probe(self) -> None:
        """A check that costs no tokens; returns when healthy, raises UpstreamError."""

    async def aclose(self) -> None: ...
