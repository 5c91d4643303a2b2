"""``Telemetry``: what one app records about its requests — metrics, traces, the in-flight
count — built from config, fed once per request from ``Exchange.finish``, and the pure-ASGI
middleware that scopes a request (request id for logs, server span, in-flight count)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hybridinference.background import cancel_and_wait
from hybridinference.config.schema import GatewayConfig
from hybridinference.observability.logging import REQUEST_ID, current_trace_id
from hybridinference.observability.metrics import Reading, RequestMetrics, model_labels
from hybridinference.observability.tracing import Tracing
from hybridinference.schemas.records import RequestRecord

logger = logging.getLogger(__name__)

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
TRACE_ID_KEY = "hybridinference.trace_id"
UNCOUNTED_PATHS = ("/metrics", "/health")
REFRESH_SECONDS = 1.0


@dataclass(slots=True)
class InFlight:
    count: int = 0

    def readings(self) -> Iterator[Reading]:
        yield Reading("in_flight_requests", self.count)


class Telemetry:
    def __init__(
        self,
        metrics: RequestMetrics | None,
        tracing: Tracing | None,
        *,
        metrics_token: str | None = None,
    ) -> None:
        self.metrics = metrics
        self.tracing = tracing
        self.metrics_token = metrics_token  # GET /metrics requires it when set
        self.in_flight = InFlight()
        self._refresher: asyncio.Task[None] | None = None
        if metrics is not None:
            metrics.add_source(self.in_flight.readings)

    @classmethod
    def from_config(cls, config: GatewayConfig, env: Mapping[str, str]) -> Telemetry:
        obs = config.observability
        metrics = None
        if obs.metrics:
            metrics = RequestMetrics(
                model_labels((m.name, m.aliases) for m in config.models),
                multiprocess_dir=env.get(MULTIPROCESS_ENV) or None,
                per_key_labels=obs.per_key_labels,
            )
        tracing = Tracing(obs.tracing) if obs.tracing.enabled else None
        token = env.get(obs.metrics_token_env) if obs.metrics_token_env else None
        return cls(metrics, tracing, metrics_token=token or None)

    def observe(self, record: RequestRecord) -> None:
        """Once per request, on the request's own context (its span is current)."""
        if self.metrics is not None:
            self.metrics.observe(record)
        if self.tracing is not None:
            self.tracing.record_attempts(record)

    def start(self, multiprocess: bool) -> None:
        if self.metrics is not None and multiprocess:
            self._refresher = asyncio.create_task(
                self.metrics.run_refresher(REFRESH_SECONDS), name="metrics-refresher"
            )

    async def aclose(self) -> None:
        await cancel_and_wait(self._refresher)
        if self.metrics is not None:
            self.metrics.close(os.getpid())
        if self.tracing is not None:
            await asyncio.to_thread(self.tracing.shutdown)


class ObservabilityMiddleware:
    """Inside ``RequestContextMiddleware`` (it needs the request id): sets the log
    context, opens the request span when tracing is on, counts requests in flight."""

    def __init__(self, app: ASGIApp, *, telemetry: Telemetry) -> None:
        self.app = app
        self._telemetry = telemetry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(UNCOUNTED_PATHS):
            await self.app(scope, receive, send)
            return
        id_token = REQUEST_ID.set(scope.get("hybridinference.request_id"))
        tracing = self._telemetry.tracing
        in_flight = self._telemetry.in_flight
        if tracing is None:
            in_flight.count += 1
            try:
                await self.app(scope, receive, send)
            finally:
                in_flight.count -= 1
                REQUEST_ID.reset(id_token)
            return
        try:
            await self._traced(scope, receive, send, tracing)
        finally:
            REQUEST_ID.reset(id_token)

    async def _traced(self, scope: Scope, receive: Receive, send: Send, tracing: Tracing) -> None:
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        span, token = tracing.start_request(scope["method"], scope["path"], headers)
        scope[TRACE_ID_KEY] = current_trace_id()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        in_flight = self._telemetry.in_flight
        in_flight.count += 1
        try:
            await self.app(scope, receive, send_status)
        finally:
            in_flight.count -= 1
            route = scope.get("route")
            tracing.end_request(span, token, status, scope["method"], getattr(route, "path", None))


def prepare_multiprocess_dir(workers: int, env: MutableMapping[str, str]) -> Callable[[], None]:
    """With several workers, give this run its own metrics directory (unless one is set)
    so that every worker's series are aggregated at scrape time; returns the cleanup."""
    if workers < 2 or env.get(MULTIPROCESS_ENV):
        return lambda: None
    path = tempfile.mkdtemp(prefix="hybridinference-metrics-")
    env[MULTIPROCESS_ENV] = path

    def cleanup() -> None:
        env.pop(MULTIPROCESS_ENV, None)
        shutil.rmtree(path, ignore_errors=True)

    return cleanup
