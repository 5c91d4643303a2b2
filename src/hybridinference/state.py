"""The one typed ``AppState``, built in ``app.lifespan``: everything a request may touch.

``config``, ``routing`` and ``flags`` are read from the runtime's current generation
(``runtime.ConfigRuntime``), which a hot reload or an override change swaps atomically:
read ``state.routing.manager`` once per request to stay on one generation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from hybridinference.config.flags import FlagTable
from hybridinference.config.schema import GatewayConfig
from hybridinference.gateway.auth import KeyCache
from hybridinference.gateway.limits import KeyLimiter
from hybridinference.observability.telemetry import Telemetry
from hybridinference.routing.build import Routing
from hybridinference.runtime import ConfigRuntime
from hybridinference.storage.base import Store
from hybridinference.storage.writer import LogWriter


@dataclass(frozen=True, slots=True)
class AppState:
    runtime: ConfigRuntime  # the current config generation (hot reload swaps it)
    keys: KeyCache
    store: Store
    writer: LogWriter
    admin_token: str | None
    clock: Callable[[], float]  # monotonic
    wall_clock: Callable[[], float]  # unix seconds
    started_at: float
    telemetry: Telemetry | None = None  # metrics and tracing; None when both are off
    limits: KeyLimiter | None = None  # per-key rate limits and budgets

    @property
    def config(self) -> GatewayConfig:
        return self.runtime.current.config

    @property
    def routing(self) -> Routing:
        return self.runtime.current.routing

    @property
    def flags(self) -> FlagTable:
        return self.runtime.current.flags
