"""The one typed ``AppState``, built in ``app.lifespan``: everything a request may touch."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hybridinference.config.schema import GatewayConfig
from hybridinference.gateway.auth import KeyCache
from hybridinference.gateway.limits import KeyLimiter
from hybridinference.observability.telemetry import Telemetry
from hybridinference.routing.build import Routing
from hybridinference.storage.base import Store
from hybridinference.storage.writer import LogWriter


@dataclass(frozen=True, slots=True)
class AppState:
    config: GatewayConfig
    routing: Routing
    keys: KeyCache
    store: Store
    writer: LogWriter
    admin_token: str | None
    clock: Callable[[], float]  # monotonic
    wall_clock: Callable[[], float]  # unix seconds
    started_at: float
    telemetry: Telemetry | None = None  # metrics and tracing; None when both are off
    limits: KeyLimiter | None = None  # per-key rate limits and budgets
