"""The composition root: ``create_app(config, env)`` builds the FastAPI app and, in its
lifespan, the one ``AppState`` (store, routing, key cache, log writer)."""

from __future__ import annotations

import gc
import logging
import random
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from hybridinference import __version__
from hybridinference.config.schema import GatewayConfig
from hybridinference.gateway import include_routes
from hybridinference.gateway.auth import KeyCache, KeyHasher, resolve_secret
from hybridinference.gateway.auth_throttle import AuthThrottle, AuthThrottleMiddleware
from hybridinference.gateway.deps import STATE_KEY
from hybridinference.gateway.errors import install_error_handlers
from hybridinference.gateway.fastpath import GatewayApp
from hybridinference.gateway.limits import KeyLimiter, limits_readings
from hybridinference.gateway.metrics import budget_readings, routing_readings, writer_readings
from hybridinference.gateway.middleware import RequestContextMiddleware
from hybridinference.gateway.shared_routing import build_shared_routing
from hybridinference.limits.build import build_limiter
from hybridinference.observability.metrics import model_labels
from hybridinference.observability.telemetry import (
    MULTIPROCESS_ENV,
    ObservabilityMiddleware,
    Telemetry,
)
from hybridinference.routing.build import build_routing
from hybridinference.runtime import ConfigRuntime, Generation, first_generation
from hybridinference.state import AppState
from hybridinference.storage import data_dir
from hybridinference.storage.runtime import start_storage

logger = logging.getLogger(__name__)

#: endpoints served by the direct lane (see gateway/fastpath.py and docs/performance.md)
DIRECT_LANE = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/messages")
SWITCH_INTERVAL = 0.001  # seconds; see tune_interpreter
#: a young-generation collection after 10,000 net new objects instead of 700: with dozens
#: of requests in flight the default ran one every few requests (9.5 % of the CPU at
#: saturation); one now scans ~10,000 objects, about 0.4 ms
GC_THRESHOLDS = (10_000, 10, 10)


def secret_file(config: GatewayConfig) -> Path:
    """Where the fallback key-hashing secret lives: the storage data directory (beside
    the embedded database)."""
    return data_dir(config.storage) / "hybridinference.secret"


def key_hasher(config: GatewayConfig, env: Mapping[str, str]) -> KeyHasher:
    return KeyHasher(resolve_secret(env.get(config.auth.key_secret_env), secret_file(config)))


def create_app(
    config: GatewayConfig,
    env: Mapping[str, str],
    *,
    rng: random.Random | None = None,
    config_path: str | Path | None = None,
) -> FastAPI:
    """``config_path``: the file ``config`` came from, watched and reloaded (hot reload);
    None: the config is fixed (reload answers that there is no file)."""
    telemetry = Telemetry.from_config(config, env)
    rng = rng or random.Random()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        storage = await start_storage(config.storage)
        store = storage.store
        routing = build_routing(config, env, rng)
        keys = KeyCache(
            store,
            key_hasher(config, env),
            required=config.auth.required,
            refresh_seconds=config.auth.refresh_seconds,
            clock=time.monotonic,
        )
        await keys.reload()
        keys.start()
        writer = storage.writer
        limits = KeyLimiter(build_limiter(config.limits, env), config.limits, time.time, keys.spend)
        limits.start()
        shared = build_shared_routing(
            config.limits, env, routing.manager, time.monotonic, time.time
        )
        if shared is not None:
            shared.start()  # circuit and latency knowledge exchanged with other replicas
        runtime = ConfigRuntime(
            first_generation(config, routing, time.time()),
            path=Path(config_path) if config_path is not None else None,
            env=env,
            store=store,
            rng=rng,
            wall_clock=time.time,
            on_swap=_relabel(telemetry),
        )
        state = AppState(
            runtime=runtime,
            keys=keys,
            store=store,
            writer=writer,
            admin_token=env.get(config.auth.admin_token_env) or None,
            clock=time.perf_counter,
            wall_clock=time.time,
            started_at=time.time(),
            telemetry=telemetry,
            limits=limits,
        )
        if telemetry.metrics is not None:
            telemetry.metrics.add_source(writer_readings(state))
            telemetry.metrics.add_source(routing_readings(state))
            telemetry.metrics.add_source(budget_readings(state))
            telemetry.metrics.add_source(limits_readings(limits))
            telemetry.metrics.add_source(runtime.readings)
        telemetry.start(multiprocess=bool(env.get(MULTIPROCESS_ENV)))
        setattr(app.state, STATE_KEY, state)
        if routing.disabled_providers:
            logger.info(
                "providers disabled (key env var unset): %s", ", ".join(routing.disabled_providers)
            )
        routing.start()  # health probes and engine /metrics scrapes
        await _first_overrides(runtime)
        runtime.start()  # file watcher, SIGHUP, override polling
        tune_interpreter()
        try:
            yield
        finally:
            await runtime.aclose()
            await telemetry.aclose()
            await keys.aclose()
            await limits.aclose()  # settles what is queued
            if shared is not None:
                await shared.aclose()
            await storage.aclose()  # drains the log queue and journal, then closes the store
            await runtime.current.base.aclose()  # the routing of the last generation

    app = GatewayApp(
        title="HybridInference",
        version=__version__,
        description="OpenAI-compatible LLM inference gateway.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    install_error_handlers(app)
    include_routes(app)
    app.direct_lane(DIRECT_LANE)  # the hot endpoints skip FastAPI's per-request layers
    add_edge_middleware(app, config, telemetry)
    app.add_middleware(ObservabilityMiddleware, telemetry=telemetry)  # inside the next one
    app.add_middleware(RequestContextMiddleware)
    return app


def _relabel(telemetry: Telemetry) -> Callable[[Generation], None]:
    """After a swap: model labels for metrics from the new file's models."""

    def relabel(generation: Generation) -> None:
        if telemetry.metrics is not None:
            models = generation.config.models
            telemetry.metrics.set_models(model_labels((m.name, m.aliases) for m in models))

    return relabel


def tune_interpreter() -> None:
    """Interpreter settings for CPU per request and the latency tail (docs/performance.md):

    - everything built at start-up lives as long as the process: it is moved out of the
      garbage collector's generations (``gc.freeze``), so the full collections a
      long-running server still makes do not scan it again (unfrozen: 56 ms each);
    - young-generation collections are rarer (``GC_THRESHOLDS``);
    - the GIL switch interval goes from 5 ms to 1 ms: the event loop waits at most that
      long for the GIL when the request log's writer thread is turning rows into
      parameters, instead of up to 5 ms.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    sys.setswitchinterval(SWITCH_INTERVAL)


async def _first_overrides(runtime: ConfigRuntime) -> None:
    """Serve the first request with the stored overrides already applied."""
    try:
        await runtime.refresh_overrides()
    except Exception:  # the database may be away: the poller retries
        logger.warning("runtime overrides not read at startup", exc_info=True)


def add_edge_middleware(app: FastAPI, config: GatewayConfig, telemetry: Telemetry) -> None:
    """The bad-credential throttle (innermost of the pure-ASGI layers) and, only when
    origins are configured, CORS (off by default: no browser origin may call the API)."""
    if config.auth.throttle.enabled:
        throttle = AuthThrottle(config.auth.throttle, time.monotonic)
        if telemetry.metrics is not None:
            telemetry.metrics.add_source(throttle.readings)
        app.add_middleware(
            AuthThrottleMiddleware,
            throttle=throttle,
            trusted_proxies=config.server.trusted_proxies,
            exempt=config.auth.throttle.exempt,
        )
    cors = config.server.cors
    if cors.allow_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cors.allow_origins),
            allow_methods=list(cors.allow_methods),
            allow_headers=list(cors.allow_headers),
            allow_credentials=cors.allow_credentials,
            expose_headers=["x-request-id", "retry-after"],
            max_age=cors.max_age,
        )
