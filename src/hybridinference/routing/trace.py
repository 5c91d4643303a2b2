"""One request's routing story: attempts, the route that served, time to first token."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from hybridinference.errors import GatewayError
from hybridinference.routing.routes import Route
from hybridinference.schemas.records import Attempt
from hybridinference.schemas.usage import Usage


@dataclass(slots=True)
class RequestTrace:
    request_id: str
    clock: Callable[[], float]  # monotonic seconds, for measuring
    started: float  # on ``clock``
    loop_time: Callable[[], float]  # the event loop's clock, which deadlines use
    deadline: float  # on ``loop_time``
    later: Callable[..., object]  # runs a callback on the loop's next turn (call_soon)
    attempts: list[Attempt] = field(default_factory=list)
    route: Route | None = None
    first_token_at: float | None = None
    usage: Usage | None = None

    def record_attempt(
        self,
        route: Route,
        error: GatewayError | None,
        started: float,
        *,
        outcome: str | None = None,
        status: int | None = None,
    ) -> None:
        """One attempt on one route; ``outcome``/``status`` name one that ended without
        an error of its own (a hedge leg that lost the race: "hedge_lost", 499)."""
        if outcome is None:
            outcome = "ok" if error is None else (error.code or error.error_type)
        if status is None:
            status = 200 if error is None else error.status_code
        latency_ms = round((self.clock() - started) * 1000, 3)
        offset_ms = round((started - self.started) * 1000, 3)  # hedge legs overlap: keep it
        self.attempts.append(Attempt(route.name, outcome, latency_ms, status, offset_ms))

    def expired(self) -> bool:
        return self.loop_time() >= self.deadline

    def served_by(self, route: Route) -> None:
        self.route = route

    def mark_first_token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = self.clock()

    def cost(self) -> float:
        if self.usage is None or self.route is None:
            return 0.0
        pricing = self.route.pricing
        return self.usage.cost(pricing.input, pricing.output)
