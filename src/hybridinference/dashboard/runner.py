"""Serving the dashboard beside the gateway from ``hybridinference serve``.

The dashboard runs in the serving command's own (parent) process, on its own event loop in
a daemon thread, so it binds its port exactly once however many gateway worker processes
``--workers`` starts; it reaches the gateway over HTTP like any other client.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping

import uvicorn

from hybridinference.config.schema import GatewayConfig
from hybridinference.dashboard.server import DashboardSettings, create_dashboard_app

LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}
START_TIMEOUT = 20.0


def gateway_url(config: GatewayConfig, host: str | None = None, port: int | None = None) -> str:
    """Where the dashboard reaches this gateway: ``dashboard.gateway_url`` when set, else
    the gateway's own bind address (a wildcard address becomes loopback)."""
    if config.dashboard.gateway_url:
        return config.dashboard.gateway_url.rstrip("/")
    host = host or config.server.host
    host = LOOPBACK.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{config.server.port if port is None else port}"


class DashboardThread:
    """A uvicorn server for the dashboard app on a thread of its own."""

    def __init__(self, server: uvicorn.Server) -> None:
        self._server = server
        self._thread = threading.Thread(
            target=lambda: asyncio.run(server.serve()), name="dashboard", daemon=True
        )

    def start(self) -> None:
        """Start and wait until it listens; raises ``RuntimeError`` if it cannot."""
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                config = self._server.config
                raise RuntimeError(
                    f"the dashboard could not listen on {config.host}:{config.port} "
                    "(set dashboard.port, or dashboard.enabled: false)"
                )
            time.sleep(0.02)

    @property
    def port(self) -> int:
        """The port it listens on (the configured one, or the one picked for port 0)."""
        sockets = self._server.servers[0].sockets if self._server.servers else ()
        return int(sockets[0].getsockname()[1]) if sockets else self._server.config.port

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)


def start_dashboard(
    config: GatewayConfig,
    env: Mapping[str, str],
    *,
    gateway_host: str | None = None,
    gateway_port: int | None = None,
    log_level: str = "info",
) -> DashboardThread | None:
    """Start the dashboard when ``dashboard.enabled``; None when it is turned off."""
    if not (config.dashboard.enabled and config.flags.dashboard):
        return None
    settings = DashboardSettings(
        gateway_url=gateway_url(config, gateway_host, gateway_port),
        session_hours=config.dashboard.session_hours,
        alerts_url=config.dashboard.alerts_url,
        alerts_token=env.get(config.dashboard.alerts_token_env) or None,
    )
    server = uvicorn.Server(
        uvicorn.Config(
            create_dashboard_app(settings),
            host=config.dashboard.host,
            port=config.dashboard.port,
            lifespan="on",
            access_log=False,
            server_header=False,
            log_level=log_level,
            log_config=None,  # keep the logging the serve command configured
            timeout_graceful_shutdown=5,
        )
    )
    runner = DashboardThread(server)
    runner.start()
    return runner
