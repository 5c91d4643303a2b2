"""How a leg is opened for each response mode, and what a served response leaves behind
(in-flight counts, quota used, output throughput).

- ``CompleteOpener``: one whole JSON response.
- ``StreamOpener``: reads the stream until its first *content* chunk (role-only
  preambles are held back, so a stream that stalls or fails before saying anything can
  still fail over or lose a hedge race), and hands back an ``OpenStream``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hybridinference.adapters.base import JSONObject, UpstreamCall
from hybridinference.errors import UpstreamProtocolError
from hybridinference.routing.quota import DAY
from hybridinference.routing.routes import Route

MAX_PREAMBLE = 4  # content-free chunks held back before the stream counts as started


@dataclass(frozen=True, slots=True)
class Clocks:
    monotonic: Callable[[], float]  # statistics, circuits, health
    wall: Callable[[], float]  # unix seconds, for daily quotas

    def day(self) -> int:
        return int(self.wall() // DAY)


def has_content(chunk: JSONObject) -> bool:
    """Anything beyond an empty assistant-role delta counts as the first token."""
    if chunk.get("usage"):
        return True
    choices = chunk.get("choices")
    if not isinstance(choices, list):
        return True
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        if choice.get("finish_reason") or choice.get("text"):
            return True
        delta = choice.get("delta")
        if isinstance(delta, dict) and any(value for key, value in delta.items() if key != "role"):
            return True
    return False


def account(route: Route, usage: Any, clocks: Clocks, seconds: float) -> None:
    """A served response's usage: the route's daily quota and its output throughput."""
    if type(usage) is not dict and not isinstance(usage, Mapping):  # dict: no ABC check
        return
    prompt = usage.get("prompt_tokens") or 0
    completion = usage.get("completion_tokens") or 0
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return
    if route.limits.has_quota:
        route.quota.add(clocks.day(), prompt + completion, route.price(prompt, completion))
    if completion > 1 and seconds > 0:
        route.stats.record_throughput(completion / seconds)


class CompleteOpener:
    def __init__(self, clocks: Clocks) -> None:
        self._clocks = clocks

    async def open(self, route: Route, call: UpstreamCall) -> JSONObject:
        started = self._clocks.monotonic()
        route.load.in_flight += 1
        try:
            result = await route.adapter.complete(call)
        finally:
            route.load.in_flight -= 1
        account(route, result.get("usage"), self._clocks, self._clocks.monotonic() - started)
        return result

    async def discard(self, result: JSONObject) -> None:
        del result


@dataclass(slots=True)
class OpenStream:
    """A stream whose first content has arrived: from here on there is no failover."""

    route: Route
    first: JSONObject
    rest: AsyncIterator[JSONObject]

    async def aclose(self) -> None:
        await _close(self.rest)


async def _close(iterator: AsyncIterator[JSONObject]) -> None:
    closer = getattr(iterator, "aclose", None)
    if closer is not None:
        await closer()


class ServedStream:
    """The rest of a served stream. Closing it (even unstarted) closes the upstream
    connection and ends the route's in-flight count exactly once; a stream that ends
    normally also accounts its usage."""

    def __init__(
        self,
        route: Route,
        held: list[JSONObject],
        iterator: AsyncIterator[JSONObject],
        clocks: Clocks,
    ) -> None:
        self._route = route
        self._held = held
        self._iterator = iterator
        self._clocks = clocks
        self._first_at = clocks.monotonic()
        self._usage: Any = None
        self._closed = False

    def __aiter__(self) -> ServedStream:
        return self

    async def __anext__(self) -> JSONObject:
        if self._held:
            return self._held.pop(0)
        if self._closed:
            raise StopAsyncIteration
        try:
            chunk = await anext(self._iterator)
        except StopAsyncIteration:
            elapsed = self._clocks.monotonic() - self._first_at
            account(self._route, self._usage, self._clocks, elapsed)
            await self.aclose()
            raise
        except BaseException:
            await self.aclose()
            raise
        if chunk.get("usage"):
            self._usage = chunk["usage"]
        return chunk

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._route.load.in_flight -= 1
            await _close(self._iterator)


class StreamOpener:
    def __init__(self, clocks: Clocks) -> None:
        self._clocks = clocks

    async def open(self, route: Route, call: UpstreamCall) -> OpenStream:
        route.load.in_flight += 1
        iterator = aiter(route.adapter.stream(call))
        held: list[JSONObject] = []
        try:
            while len(held) < MAX_PREAMBLE:
                chunk = await anext(iterator, None)
                if chunk is None:
                    break
                held.append(chunk)
                if has_content(chunk):
                    break
            if not held:
                raise UpstreamProtocolError(f"{route.name} sent an empty stream")
        except BaseException:
            route.load.in_flight -= 1
            await _close(iterator)
            raise
        rest = ServedStream(route, held[1:], iterator, self._clocks)
        return OpenStream(route, held[0], rest)

    async def discard(self, result: OpenStream) -> None:
        await result.aclose()
