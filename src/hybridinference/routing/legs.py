"""Running one request's attempts ("legs"): failover in order, hedging, and what every
leg's outcome teaches the route's statistics and circuit breaker.

``race`` starts the first candidate; a retryable failure starts the next one (within
the candidates the manager allowed and before the total deadline); a non-retryable one
ends the request. With hedging on, if the only running leg has produced no content by
its hedge delay (and the budget allows), a backup starts on the next candidate: the
first leg to produce content wins and every other leg is cancelled, which closes its
upstream connection. Nothing here has sent a byte to the client: the winner is handed
back, and from then on there is no failover.

Outcomes: success → a TTFT sample and a circuit success; an error that is the route's
fault (408/429/5xx/timeouts/refused) → a failure sample and a circuit failure; a client
error → neither (the half-open trial, if it was one, is released); a hedge loser → its
elapsed time as a (lower-bound) sample. Every leg is recorded on the request's trace.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from hybridinference.adapters.base import UpstreamCall
from hybridinference.config.routing import HedgingConfig, SLOConfig
from hybridinference.errors import (
    AllRoutesFailed,
    FailedAttempt,
    GatewayError,
    NoRouteAvailable,
)
from hybridinference.readonly import readonly
from hybridinference.routing.hedging import HedgeBudget, hedge_delay
from hybridinference.routing.routes import Route
from hybridinference.routing.trace import RequestTrace

R = TypeVar("R")
LOST = 499  # the status recorded for a leg the gateway itself cancelled


class Opener(Protocol[R]):
    async def open(self, route: Route, call: UpstreamCall) -> R:
        """Start the leg and return once it has content (or raise a GatewayError). On any
        exception, cancellation included, it must undo its own in-flight count."""

    async def discard(self, result: R) -> None:
        """Release a leg that succeeded but lost the race."""


@readonly
class Plan:
    routes: Sequence[Route]
    hedging: HedgingConfig | None
    slo: SLOConfig | None
    budget: HedgeBudget


@dataclass(slots=True)
class _Leg:
    route: Route
    started: float  # trace clock, for the attempt record
    began: float  # routing clock, for statistics
    loop_started: float
    hedge: bool


def settle_ok(route: Route, now: float, ttft: float) -> None:
    route.stats.record(now, ttft)
    route.circuit.success(now)


def settle_error(route: Route, now: float, error: GatewayError) -> None:
    if error.route_fault:
        route.stats.record_failure(now)
        route.circuit.failure(now)
    else:
        route.circuit.release()


class Race(Generic[R]):
    """One request's legs; built per request, dropped when it returns."""

    def __init__(
        self,
        plan: Plan,
        opener: Opener[R],
        make_call: Callable[[Route], UpstreamCall],
        trace: RequestTrace,
        clock: Callable[[], float],
    ) -> None:
        self._plan = plan
        self._opener = opener
        self._make_call = make_call
        self._trace = trace
        self._clock = clock
        self._next = 0
        self._pending: dict[asyncio.Future[R], _Leg] = {}
        self._failures: list[FailedAttempt] = []
        self._winner: tuple[Route, R] | None = None

    def _begin(self, hedge: bool) -> _Leg:
        route = self._plan.routes[self._next]
        self._next += 1
        now = self._clock()
        route.circuit.begin(now)
        loop_now = self._trace.loop_time()
        return _Leg(route, self._trace.clock(), now, loop_now, hedge)

    def _start(self, hedge: bool) -> None:
        leg = self._begin(hedge)
        task = asyncio.ensure_future(self._opener.open(leg.route, self._make_call(leg.route)))
        self._pending[task] = leg

    def _check_left(self) -> None:
        """Raise when no leg is running and none may start."""
        plan = self._plan
        if not self._failures and self._next >= len(plan.routes):
            raise NoRouteAvailable("No route is left to try.")
        if self._next >= len(plan.routes) or (self._failures and self._trace.expired()):
            raise AllRoutesFailed(self._failures)

    def _hedge_timeout(self) -> float | None:
        plan = self._plan
        if plan.hedging is None or self._next >= len(plan.routes) or len(self._pending) != 1:
            return None
        (leg,) = self._pending.values()
        if leg.hedge or self._trace.expired():
            return None
        backup = plan.routes[self._next]
        delay = hedge_delay(leg.route, backup, plan.hedging, plan.slo, self._clock())
        return max(0.0, leg.loop_started + delay - self._trace.loop_time())

    def run(self) -> Awaitable[tuple[Route, R]]:
        """The race's coroutine: legs in turn, or hedged when the plan allows it (handed
        back, not awaited here: one frame less on the request's await chain)."""
        plan = self._plan
        if plan.hedging is None or len(plan.routes) < 2:
            return self._in_turn()
        return self._hedged()

    async def _hedged(self) -> tuple[Route, R]:
        plan = self._plan
        plan.budget.earn()
        hedgeable = True
        try:
            while self._winner is None:
                if not self._pending:
                    self._check_left()
                    self._start(hedge=False)
                timeout = self._hedge_timeout() if hedgeable else None
                done, _ = await asyncio.wait(
                    self._pending, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    hedgeable = False  # one hedge per request at most
                    if plan.budget.spend():
                        self._start(hedge=True)
                    continue
                for task in done:
                    leg = self._pending.pop(task)
                    error = task.exception()
                    await self._settle(leg, error, None if error else task.result())
            return self._winner
        finally:
            await self._cancel_pending()

    async def _in_turn(self) -> tuple[Route, R]:
        """Without hedging one leg runs at a time, so it runs in the caller's task: no task,
        no wait set per attempt. A cancellation (the client left) cancels the leg in
        place and is recorded as that leg's outcome."""
        while self._winner is None:
            self._check_left()
            leg = self._begin(hedge=False)
            try:
                result = await self._opener.open(leg.route, self._make_call(leg.route))
            except asyncio.CancelledError:
                self._lost(leg, self._clock())
                raise
            except Exception as error:
                await self._settle(leg, error, None)
                continue
            self._won(leg, result)  # the only leg: nothing to discard, nothing to await
        return self._winner

    async def _settle(self, leg: _Leg, error: BaseException | None, result: R | None) -> None:
        now = self._clock()
        if error is None:
            assert result is not None
            if self._winner is not None:  # finished in the same instant: it lost anyway
                await self._opener.discard(result)
                self._lost(leg, now)
                return
            self._won(leg, result, now)
            return
        if not isinstance(error, GatewayError):
            leg.route.circuit.release()
            raise error
        settle_error(leg.route, now, error)
        self._trace.record_attempt(leg.route, error, leg.started)
        if not error.retryable:
            raise error
        self._failures.append(FailedAttempt(leg.route.name, error))

    def _won(self, leg: _Leg, result: R, now: float | None = None) -> None:
        now = self._clock() if now is None else now
        # the route's statistics and circuit take the success on the loop's next turn,
        # after the answer has gone out (they are not the client's to wait for)
        self._trace.later(settle_ok, leg.route, now, now - leg.began)
        self._trace.record_attempt(leg.route, None, leg.started)  # the log row needs it
        self._winner = (leg.route, result)
        if leg.hedge:
            self._plan.budget.backup_wins += 1

    def _lost(self, leg: _Leg, now: float) -> None:
        leg.route.circuit.release()
        if self._winner is not None:
            leg.route.stats.record(now, now - leg.began)  # at least this slow
        outcome = "hedge_lost" if self._winner is not None else "cancelled"
        self._trace.record_attempt(leg.route, None, leg.started, outcome=outcome, status=LOST)

    async def _cancel_pending(self) -> None:
        pending, self._pending = self._pending, {}
        if not pending:
            return
        for task in pending:
            task.cancel()
        await asyncio.wait(pending)
        now = self._clock()
        for task, leg in pending.items():
            if task.done() and not task.cancelled() and task.exception() is None:
                await self._opener.discard(task.result())
            self._lost(leg, now)
